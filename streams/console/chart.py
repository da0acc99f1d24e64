"""The city's tracing progress over time, drawn by the server as inline SVG (no script, no library).

From today's call-list rows, at every ``STEP_HOURS`` from the first alert to now: the residents
alerted by then, those reached within 24 h of their alert by then, and those overdue then (due,
and not reached by then). These are what the KPIs would have said at each time given the
follow-ups as they happened; an alert retracted since counts at no time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Any, NamedTuple

STEP_HOURS = 6
MAX_POINTS = 120  # 30 days at 6 h; a longer outbreak takes wider steps
_WIDTH, _HEIGHT, _LEFT, _RIGHT, _BOTTOM, _TOP = 760, 260, 48, 40, 40, 16  # _RIGHT: half a date tick
_SERIES = (("alerted", "chart_alerted", "#1f77b4"), ("reached", "chart_reached", "#2ca02c"),
           ("overdue", "chart_overdue", "#d62728"))
_DAY = timedelta(hours=24)


class Point(NamedTuple):
    at: datetime
    alerted: int
    reached: int
    overdue: int


def progress(rows: list[dict[str, Any]], now: str | None) -> list[Point]:
    """The series, one point a step from the first alert's step to now (none without rows or now)."""
    if not rows or now is None:
        return []
    times = [(_time(row["first_alert"]), _time(row["answered"]), _time(row["due_by"])) for row in rows]
    end = datetime.fromisoformat(now)
    start = min(first for first, _, _ in times).replace(minute=0, second=0, microsecond=0)
    step = timedelta(hours=STEP_HOURS)
    while (end - start) / step >= MAX_POINTS:
        step *= 2
    points, at = [], start
    while at <= end:
        points.append(Point(
            at,
            sum(first <= at for first, _, _ in times),
            sum(answered is not None and answered <= at and answered - first <= _DAY for first, answered, _ in times),
            sum(due <= at and (answered is None or answered > at) for _, answered, due in times),
        ))
        at += step
    return points


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None  # type: ignore[return-value]


def svg(points: list[Point], labels: dict[str, str]) -> str:
    """The series as an SVG line chart with a legend and a few dated ticks."""
    if not points:
        return ""
    inner_w, inner_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _BOTTOM - _TOP
    top = max(max(point.alerted for point in points), 1)

    def x(index: int) -> float:
        return _LEFT + inner_w * index / max(len(points) - 1, 1)

    def y(value: int) -> float:
        return _TOP + inner_h * (1 - value / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" class="chart" role="img" '
             f'aria-label="{escape(labels["chart"])}">',
             f'<line x1="{_LEFT}" y1="{y(0):.1f}" x2="{_WIDTH - _RIGHT}" y2="{y(0):.1f}" stroke="#888"/>',
             f'<text x="{_LEFT - 6}" y="{y(top) + 4:.1f}" text-anchor="end">{top}</text>',
             f'<text x="{_LEFT - 6}" y="{y(0) + 4:.1f}" text-anchor="end">0</text>']
    for name, label, colour in _SERIES:
        line = " ".join(f"{x(i):.1f},{y(getattr(point, name)):.1f}" for i, point in enumerate(points))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{line}">'
                     f"<title>{escape(labels[label])}</title></polyline>")
    ticks = max(len(points) // 6, 1)
    for index in range(0, len(points), ticks):
        parts.append(f'<text x="{x(index):.1f}" y="{_HEIGHT - _BOTTOM + 16}" text-anchor="middle">'
                     f'{points[index].at.strftime("%m-%d %H:%M")}</text>')
    for row, (_, label, colour) in enumerate(_SERIES):
        left = _LEFT + 180 * row
        parts.append(f'<rect x="{left}" y="{_HEIGHT - 14}" width="12" height="4" fill="{colour}"/>'
                     f'<text x="{left + 16}" y="{_HEIGHT - 8}">{escape(labels[label])}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
