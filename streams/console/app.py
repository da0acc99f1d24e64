"""The console's ASGI app: its routes, sessions and error pages, the loop of live updates, and the
server that runs it.

    /                                    to the account's start page (or the login)
    /login, /logout                      login.py
    /office/{code}, .../rows, .../events, .../calllist.csv|xlsx, POST .../followups   office.py
    /dashboard                           dashboard.py (supervisor)
    /cases, /cases/{id}, /cases/{id}/picture   cases.py (epidemiologist)
    /status?person=ID                    staff.py (staff)
    /lookup                              public.py (anyone)
    /metrics, /healthz                   metrics.py (anyone: counts only)
    /static/                             the stylesheet and the script: served by tracer, no CDN
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from streams.console import cases, office
from streams.console.auth import SESSION_SECONDS, account, home, login_redirect
from streams.console.context import Console, Limits
from streams.console.dashboard import dashboard
from streams.console.data import ConsoleData, NotKept
from streams.console.live import Hub
from streams.console.login import login, logout
from streams.console.metrics import Metrics, healthz, metrics
from streams.console.middleware import Guarded
from streams.console.pages import render
from streams.console.public import lookup
from streams.console.staff import status
from streams.console.users import Users
from tracer.settings import Settings

SESSION_COOKIE = "tracer_session"


async def start(request: Request) -> Response:
    return RedirectResponse(home(account(request)), status_code=303)


ROUTES = [
    Route("/", start),
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/office/{code}", office.page),
    Route("/office/{code}/rows", office.rows),
    Route("/office/{code}/events", office.events),
    Route("/office/{code}/calllist.{form}", office.download),
    Route("/office/{code}/followups", office.act, methods=["POST"]),
    Route("/dashboard", dashboard),
    Route("/cases", cases.cases),
    Route("/cases/{case_id:path}/picture", cases.picture),
    Route("/cases/{case_id:path}", cases.case),
    Route("/status", status),
    Route("/lookup", lookup),
    Route("/metrics", metrics),
    Route("/healthz", healthz),
    Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
]


def create_app(data: ConsoleData, users: Users, settings: Settings, session_key: str,
               limits: Limits | None = None) -> Starlette:
    metrics_seen = Metrics()
    hub = Hub(data, metrics_seen)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    session = Middleware(SessionMiddleware, secret_key=session_key, session_cookie=SESSION_COOKIE,
                         max_age=SESSION_SECONDS, same_site="strict")
    app = Starlette(routes=ROUTES, middleware=[session], exception_handlers={HTTPException: _error, NotKept: _not_kept},
                    lifespan=lifespan)
    app.state.console = Console(data, users, settings, hub, metrics_seen, limits or Limits.defaults())
    return app


async def _error(request: Request, exc: Exception) -> Response:
    """401: a browser is sent to the login page; other refusals a page (browsers) or plain text."""
    assert isinstance(exc, HTTPException)
    browser = "text/html" in request.headers.get("accept", "")
    if exc.status_code == 401 and browser and request.method == "GET":
        return login_redirect(request)
    if browser:
        return render(request, "error.html", exc.status_code, code=exc.status_code, detail=exc.detail)
    return PlainTextResponse(exc.detail, status_code=exc.status_code)


async def _not_kept(request: Request, exc: Exception) -> Response:
    """A page this mode's data cannot draw: 503, saying what it needs."""
    return await _error(request, HTTPException(503, str(exc)))


class ConsoleServer(uvicorn.Server):
    """uvicorn serving ``app``: its access log off (``middleware.Guarded`` logs), its logging left to
    the command's; its event loop uvloop's and its HTTP parser httptools (a seventh less of the
    console's CPU beside a busy run: benchmarks/README.md, the console under load). SIGINT or
    SIGTERM ends the open event streams (uvicorn would wait for them) and stops the server, and the
    command then returns as after any stop (uvicorn raises the signal again once it has stopped,
    which would end the process before the state is closed)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        super().__init__(uvicorn.Config(Guarded(app), host=host, port=port, access_log=False, log_config=None,
                                        lifespan="on", timeout_graceful_shutdown=5, loop="uvloop", http="httptools"))
        self.hub: Hub = app.state.console.hub

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.hub.close()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C
        self.should_exit = True
