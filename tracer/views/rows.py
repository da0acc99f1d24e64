"""Call-list rows (排查名单) and tracing KPIs (排查进度): pure functions of a person's facts,
follow-ups, their cases' report times and now (docs/rules.md, "Call list", "Tracing KPIs")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from tracer.events import format_time
from tracer.places import subdistricts
from tracer.rules import Level
from tracer.settings import StatusSettings
from tracer.views.facts import ANSWERS, HOUR_US, LEVELS, AlertFact, Facts, FollowupFact
from tracer.views.health import health, is_released, observation_end

CITY = "city"
_QUEUE_LEVELS = (Level.CLOSE, Level.SECONDARY)
_OUTCOME_COUNTS = ("quarantined", "released", "unreachable")  # KPIs counted by the latest follow-up
_REACHED_WITHIN = (2, 12, 24)  # hours
CALL_COLUMNS = ("person_id", "level", "case_ids", "first_alert", "last_exposure_end", "observation_until", "color",
                "followup", "answered", "due_by", "overdue")
"""The columns of a call list written out as a table (CSV, XLSX): a row's ``shown`` fields but its office."""


class Row(NamedTuple):
    """One resident on an office's call list, with the times kept as numbers for sorting and KPIs."""

    person_id: str
    office: str
    level: str
    first_alert: int
    answered: int | None
    due_by: int
    overdue: bool
    latest: FollowupFact | None
    shown: dict[str, Any]  # the row as written out


def known_at(fact: AlertFact, reported: Mapping[str, int]) -> int:
    """When an alert could first be worked: its exposure has ended and its case is reported."""
    report = reported.get(fact.case_id) if fact.source_kind == "case" else None
    return fact.exposure_end if report is None else max(fact.exposure_end, report)


def call_row(
    person_id: str,
    office: str,
    facts: Facts,
    followups: list[FollowupFact],
    reported: Mapping[str, int],
    now: int | None,
    status: StatusSettings,
    zone: Any,
    include_general: bool = False,
) -> Row | None:
    """The person's row on ``office``'s list, or None when they have no alert that puts them there."""
    levels = LEVELS if include_general else _QUEUE_LEVELS
    alerts = [fact for fact in facts.alerts.values() if fact.office == office and fact.level in levels]
    if not alerts:
        return None
    level = min((fact.level for fact in alerts), key=LEVELS.index)
    first = min(known_at(fact, reported) for fact in alerts)
    observed = [observation_end(fact, status) for fact in alerts if not is_released(fact, facts)]
    answered = next((f.at for f in followups if f.outcome in ANSWERS and f.at >= first), None)
    due_by = first + round(getattr(status.followup_hours, level) * HOUR_US)
    overdue = answered is None and now is not None and now >= due_by
    latest = max(followups) if followups else None
    place = subdistricts().get(office)

    def show(moment: int | None) -> str | None:
        return format_time(moment, zone) if moment is not None else None

    shown = {
        "person_id": person_id,
        "subdistrict": office,
        "subdistrict_name": place.name if place is not None else None,
        "level": level,
        "case_ids": sorted({fact.case_id for fact in alerts}),
        "first_alert": show(first),
        "last_exposure_end": show(max(fact.exposure_end for fact in alerts)),
        "observation_until": show(max(observed, default=None)),
        "color": health(facts, now, status, zone).color,
        "followup": latest.show(zone) if latest is not None else None,
        "answered": show(answered),
        "due_by": show(due_by),
        "overdue": overdue,
    }
    return Row(person_id, office, level, first, answered, due_by, overdue, latest, shown)


def next_call_first(rows: Iterable[Row]) -> list[Row]:
    """Overdue rows, then rows not yet due, each close contacts first and by due time; then answered
    rows by first alert."""
    def order(row: Row) -> tuple[int, int, int, str]:
        if row.answered is None:
            return (0 if row.overdue else 1, LEVELS.index(row.level), row.due_by, row.person_id)
        return (2, 0, row.first_alert, row.person_id)

    return sorted(rows, key=order)


def kpis(rows: Iterable[Row], now: int | None, zone: Any) -> dict[str, Any]:
    """The KPIs of every office and of the city, offices slowest first."""
    by_office: dict[str, list[Row]] = defaultdict(list)
    every: list[Row] = []
    for row in rows:
        by_office[row.office].append(row)
        every.append(row)
    offices = [_counts(office, office_rows) for office, office_rows in by_office.items()]
    offices.sort(key=_slowest_first)
    return {"at": format_time(now, zone) if now is not None else None, "city": _counts(CITY, every),
            "offices": offices}


def _counts(office: str, rows: list[Row]) -> dict[str, Any]:
    waits = sorted(row.answered - row.first_alert for row in rows if row.answered is not None)
    place = subdistricts().get(office)
    counts: dict[str, Any] = {"subdistrict": office, "name": place.name if place is not None else None,
                              "alerted": len(rows)}
    for hours in _REACHED_WITHIN:
        counts[f"reached_{hours}h"] = sum(wait <= hours * HOUR_US for wait in waits)
    median = waits[(len(waits) - 1) // 2] if waits else None  # the lower middle of an even count
    counts["median_hours_to_reach"] = round(median / HOUR_US, 3) if median is not None else None
    counts["overdue"] = sum(row.overdue for row in rows)
    latest = [row.latest.outcome for row in rows if row.latest is not None]
    for outcome in _OUTCOME_COUNTS:
        counts[outcome] = latest.count(outcome)
    return counts


def _slowest_first(counts: dict[str, Any]) -> tuple[Any, ...]:
    """Most overdue, then the smallest share reached within 24 h, then the longest median (none
    reached is the longest), then code."""
    share = counts["reached_24h"] / counts["alerted"]
    median = counts["median_hours_to_reach"]
    return (-counts["overdue"], share, -(median if median is not None else float("inf")), counts["subdistrict"])
