"""The supervisor's dashboard: every office's tracing KPIs, slowest first, and the city's progress
over time; each office links to its page, which a supervisor reads without acting."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from streams.console import chart
from streams.console.auth import require
from streams.console.context import blocking, console
from streams.console.pages import render
from streams.console.text import labels, language
from streams.console.users import SUPERVISOR

KPI_COLUMNS = ("alerted", "reached_2h", "reached_12h", "reached_24h", "median_hours_to_reach", "overdue",
               "quarantined", "released", "unreachable")


async def dashboard(request: Request) -> Response:
    require(request, SUPERVISOR)
    data = console(request).data
    kpis = await blocking(data.kpis)
    points = chart.progress(await blocking(data.every_row), kpis["at"])
    return render(request, "dashboard.html", kpis=kpis, columns=KPI_COLUMNS,
                  chart=chart.svg(points, labels(language(request))))
