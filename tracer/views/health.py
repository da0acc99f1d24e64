"""Health status (随申码): a person's colour, its reasons and when it turns back by itself, as a
pure function of their facts, their follow-ups and now (docs/rules.md, "Health status")."""

from __future__ import annotations

from typing import Any, NamedTuple

from tracer.events import TRACED_STATUSES, format_time
from tracer.settings import COLORS, StatusSettings
from tracer.views.facts import DAY_US, LEVELS, AlertFact, Facts

GREEN = COLORS[0]
RED_STATUSES = TRACED_STATUSES - {"discharged"}  # a live case person: confirmed, asymptomatic, suspected
_RANK = {color: rank for rank, color in enumerate(COLORS)}
_CASE_REASON, _CONTACT_REASON = "case", "contact"


class Health(NamedTuple):
    color: str
    reasons: list[dict[str, Any]]  # as emitted, times formatted
    until: int | None  # when the colour turns back by itself (None: not by itself)
    next_change: int | None  # the earliest ``until`` of any reason: when the status changes next


def color_of(level: str, status: StatusSettings) -> str:
    return getattr(status, f"{level}_color")  # type: ignore[no-any-return]


def observation_end(fact: AlertFact, status: StatusSettings) -> int:
    """When an alert's observation ends: its exposure end + the days of its level."""
    return fact.exposure_end + getattr(status, f"{fact.level}_days") * DAY_US


def is_released(fact: AlertFact, facts: Facts) -> bool:
    """Whether a release has ended this alert's observation: the latest release ends every exposure
    that ended by then (docs/rules.md)."""
    return facts.released is not None and fact.exposure_end <= facts.released


def health(facts: Facts, now: int | None, status: StatusSettings, zone: Any) -> Health:
    """The person's status at ``now`` (None: the stream has no event time yet, so nothing has expired)."""
    reasons: list[tuple[tuple[Any, ...], str, int | None, dict[str, Any]]] = []  # (order, colour, until, reason)
    for case_id, case_status in sorted(facts.cases.items()):
        if case_status in RED_STATUSES:
            reasons.append(((0, case_id), COLORS[-1], None, {"kind": _CASE_REASON, "case_id": case_id,
                                                               "status": case_status}))
    latest: dict[tuple[str, str, str], AlertFact] = {}
    for fact in facts.alerts.values():
        if is_released(fact, facts):
            continue
        key = (fact.level, fact.source_kind, fact.case_id)
        if key not in latest or fact.exposure_end > latest[key].exposure_end:
            latest[key] = fact
    for (level, source_kind, case_id), fact in latest.items():
        color, until = color_of(level, status), observation_end(fact, status)
        if color == GREEN or (now is not None and now >= until):
            continue
        order = (1, LEVELS.index(level), source_kind, case_id)
        reasons.append((order, color, until, {
            "kind": _CONTACT_REASON, "level": level, "source_kind": source_kind, "case_id": case_id,
            "exposure_end": format_time(fact.exposure_end, zone), "until": format_time(until, zone)}))
    if not reasons:
        return Health(GREEN, [], None, None)
    reasons.sort(key=lambda reason: reason[0])
    worst = max((reason[1] for reason in reasons), key=_RANK.__getitem__)
    ends = [reason[2] for reason in reasons if reason[1] == worst]
    until = None if None in ends else max(end for end in ends if end is not None)
    upcoming = [reason[2] for reason in reasons if reason[2] is not None]
    return Health(worst, [reason[3] for reason in reasons], until, min(upcoming) if upcoming else None)


def status_record(person_id: str, found: Health, at: int | None, zone: Any) -> dict[str, Any]:
    """The record emitted for a status change (status.jsonl, the ``status`` topic)."""
    return {
        "person_id": person_id,
        "color": found.color,
        "reasons": found.reasons,
        "until": format_time(found.until, zone) if found.until is not None else None,
        "at": format_time(at, zone) if at is not None else None,
    }
