"""What every page reaches through its request: the console's parts, made once by ``app.create_app``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from streams.console.data import ConsoleData
from streams.console.ratelimit import RateLimit
from streams.console.users import Users
from tracer.settings import Settings

if TYPE_CHECKING:
    from streams.console.live import Hub
    from streams.console.metrics import Metrics

T = TypeVar("T")


@dataclass
class Limits:
    """The rate limits (docs/console.md, "Security"): failed logins per account and per address,
    public lookups per address."""

    login_names: RateLimit
    login_addresses: RateLimit
    lookups: RateLimit

    @classmethod
    def defaults(cls) -> Limits:
        return cls(RateLimit(5, 900), RateLimit(20, 900), RateLimit(30, 60))


@dataclass
class Console:
    data: ConsoleData
    users: Users
    settings: Settings
    hub: Hub
    metrics: Metrics
    limits: Limits


def console(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


async def blocking(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` off the event loop: a state read, a password hash."""
    return await run_in_threadpool(call, *args)


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "-"
