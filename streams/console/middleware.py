"""What every response gets: security headers, and one access-log line that names no one.

The access log is the console's own (uvicorn's is off): method, route template (``/office/{code}``,
never the path itself), status and milliseconds; no query string, no client address, no body. An
exception is logged by its type and the code lines it passed through, never its message (which may
quote a value); uvicorn is never handed it, so its traceback (with the message) is not logged.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tracer.console.access")
_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                 b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # a URL may hold a person id (?person=)
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),  # pages hold residents' data: no copy left in a shared browser's cache
]


class Guarded:
    """The console's ASGI app as served: headers added, every request logged without its values."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in _HEADERS if h[0] not in names)]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # the response (500) is sent already; what failed is logged below
            log.error("%s %s failed with %s at:\n%s", scope["method"], _route(scope), type(exc).__name__,
                      "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__))))
        log.info("%s %s %d %.0f ms", scope["method"], _route(scope), status, (time.perf_counter() - started) * 1000)


def _route(scope: dict[str, Any]) -> str:
    """The route's template, or ``-`` for a path no route matched."""
    route = scope.get("route")
    return getattr(route, "path", "-")
