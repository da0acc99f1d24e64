"""``/metrics`` (Prometheus text format) and ``/healthz``: what the console has seen and done.

Counters only count; rates (alert changes per second) are Prometheus's ``rate()`` over them.
Nothing here names a person, a case or an office.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse

from streams.console.context import console
from streams.console.data import Changes

HEALTHY_WITHIN = 5.0  # seconds since the last look at the state that worked


@dataclass
class Metrics:
    alert_changes: int = 0
    status_changes: int = 0
    followups_appended: int = 0
    followups_repeated: int = 0  # refused as identical to one appended before
    lag_seconds: float = 0.0

    def saw(self, changes: Changes) -> None:
        self.alert_changes += changes.alert_changes
        self.status_changes += changes.status_changes
        self.lag_seconds = changes.lag_seconds

    def text(self, sse_clients: int) -> str:
        lines = []
        for name, kind, value, about in (
            ("alert_changes_total", "counter", self.alert_changes, "alert changes (contacts.jsonl lines) seen"),
            ("status_changes_total", "counter", self.status_changes, "health status changes seen"),
            ("followups_appended_total", "counter", self.followups_appended, "follow-ups written into the stream"),
            ("followups_repeated_total", "counter", self.followups_repeated,
             "follow-ups refused as identical to one written before"),
            ("sse_clients", "gauge", sse_clients, "pages listening for live updates"),
            ("state_lag_seconds", "gauge", round(self.lag_seconds, 3),
             "how long the outputs have held lines the state read does not"),
        ):
            lines += [f"# HELP tracer_console_{name} {about}", f"# TYPE tracer_console_{name} {kind}",
                      f"tracer_console_{name} {value}"]
        return "\n".join(lines) + "\n"


async def metrics(request: Request) -> PlainTextResponse:
    found = console(request)
    return PlainTextResponse(found.metrics.text(found.hub.clients), media_type="text/plain; version=0.0.4")


async def healthz(request: Request) -> JSONResponse:
    found = console(request)
    age = found.hub.since_last_look()
    healthy = age is not None and age < HEALTHY_WITHIN
    return JSONResponse({"status": "ok" if healthy else "failing", "lag_seconds": round(found.metrics.lag_seconds, 3)},
                        status_code=200 if healthy else 503)
