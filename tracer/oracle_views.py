"""Reference oracle for the follow-up views of docs/rules.md: health status, call lists, KPIs.

Written a second time from the rules text, plainly and from scratch on every call: the live
alerts come from the alert oracle (tracer/oracle.py), and everything else is a loop over them,
the follow-ups and the cases. It shares no code with the engine or its views, so when the two
disagree one of them is wrong. Retention is ignored, as the alert oracle ignores it.

"now" is the stream's event time (the ``event_time_quorum``-th latest board time of the valid
trips) unless given. A stream without event time has no now: every reason still counts (none
can have passed) and nothing is overdue.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from tracer.oracle import Followup, Stream, format_time, live_alerts, parse_time, read_stream
from tracer.places import subdistricts
from tracer.settings import RuleSettings, Settings, StatusSettings

_HOUR = 3_600_000_000
_DAY = 24 * _HOUR
_LEVELS = ("close", "secondary", "general")  # highest first
_CALLED = ("close", "secondary")  # the call list without --include-general, and the KPIs
_COLOURS = ("green", "yellow", "red")  # worst last
_TRACED = ("confirmed", "asymptomatic", "suspected")  # a case of these is red
_ANSWERS = ("reached", "quarantined", "released")
_COUNTED = ("quarantined", "released", "unreachable")  # KPIs by the latest follow-up's outcome
_REACHED_WITHIN = (2, 12, 24)  # hours: the KPIs reached_2h, reached_12h, reached_24h
UNASSIGNED = "unassigned"


class OracleViews(NamedTuple):
    now: int | None  # epoch microseconds; None: the stream has no event time
    status: dict[str, dict]  # person_id -> status, for every person who is not green
    calllists: dict[str, list[dict]]  # office -> rows of close and secondary contacts, next call first
    calllists_general: dict[str, list[dict]]  # the same with general contacts (--include-general)
    kpis: dict[str, Any]


def expected_views(events: Iterable[dict], settings: Settings, now: int | None = None) -> OracleViews:
    """Health status, call lists and KPIs after the whole stream, at ``now`` (default: event time),
    by the ``[status]`` numbers of ``settings``."""
    rules = settings.rules
    numbers = settings.status
    stream = read_stream(events, rules)
    if now is None:
        now = event_time(stream.boards, rules)
    alerts = _alerts(stream, rules)
    statuses = {}
    for person_id in sorted({case.person_id for case in stream.cases.values()} | set(alerts)):
        found = _status(person_id, stream, alerts.get(person_id, []), numbers, now, rules)
        if found["color"] != "green":
            statuses[person_id] = found
    calls = _Calls(stream.followups, statuses, numbers, now, rules)
    rows = calls.lists(alerts, _CALLED)
    return OracleViews(
        now=now,
        status=statuses,
        calllists=_shown(rows),
        calllists_general=_shown(calls.lists(alerts, _LEVELS)),
        kpis=_kpis(rows, now, rules),
    )


def event_time(boards: list[int], rules: RuleSettings) -> int | None:
    """The ``event_time_quorum``-th latest board time; None before that many trips."""
    if len(boards) < rules.event_time_quorum:
        return None
    return heapq.nlargest(rules.event_time_quorum, boards)[-1]


class _Alert(NamedTuple):
    """What the views read of one live alert."""

    subdistrict: str | None
    level: str
    source_kind: str
    case_id: str
    exposure_end: int
    known: int  # when it could first be worked: the later of exposure end and the case's report
    released: bool  # a released follow-up at or after the exposure end


def _alerts(stream: Stream, rules: RuleSettings) -> dict[str, list[_Alert]]:
    """person_id -> their live alerts."""
    found: dict[str, list[_Alert]] = {}
    for alert in live_alerts(stream, rules).values():
        person_id, end = alert["contact_person_id"], parse_time(alert["exposure_end"])
        assert end is not None
        known = max(end, stream.cases[alert["case_id"]].reported_at) if alert["source_kind"] == "case" else end
        releases = [f.at for f in stream.followups.get(person_id, ()) if f.outcome == "released"]
        found.setdefault(person_id, []).append(
            _Alert(
                subdistrict=alert["subdistrict"],
                level=alert["level"],
                source_kind=alert["source_kind"],
                case_id=alert["case_id"],
                exposure_end=end,
                known=known,
                released=any(end <= at for at in releases),
            )
        )
    return found


# Health status


def _status(
    person_id: str, stream: Stream, alerts: list[_Alert], numbers: StatusSettings, now: int | None, rules: RuleSettings
) -> dict:
    """``{"person_id", "color", "reasons", "until"}``: the worst colour among the reasons, and when
    it turns back by itself: the latest ``until`` of that colour, never while a case is among them."""
    reasons: list[tuple[str, int | None, dict]] = []  # (colour, until, reason), in the documented order
    for case_id in sorted(stream.cases):
        case = stream.cases[case_id]
        if case.person_id == person_id and case.status in _TRACED:
            reasons.append(("red", None, {"kind": "case", "case_id": case_id, "status": case.status}))
    latest_end: dict[tuple[int, str, str], int] = {}  # (level, source kind, id) -> latest exposure end
    for alert in alerts:
        if not alert.released:
            key = (_LEVELS.index(alert.level), alert.source_kind, alert.case_id)
            latest_end[key] = max(alert.exposure_end, latest_end.get(key, alert.exposure_end))
    for (rank, source_kind, case_id), end in sorted(latest_end.items()):
        level = _LEVELS[rank]
        colour, until = getattr(numbers, f"{level}_color"), end + getattr(numbers, f"{level}_days") * _DAY
        if colour == "green" or (now is not None and now >= until):
            continue
        reason = {"kind": "contact", "level": level, "source_kind": source_kind, "case_id": case_id}
        reason |= {"exposure_end": format_time(end, rules), "until": format_time(until, rules)}
        reasons.append((colour, until, reason))
    colour = max((found for found, _, _ in reasons), key=_COLOURS.index, default="green")
    of_colour = [until for found, until, _ in reasons if found == colour]
    ends = [until for until in of_colour if until is not None]
    turns_back = max(ends) if ends and len(ends) == len(of_colour) else None  # a case never turns back
    return {
        "person_id": person_id,
        "color": colour,
        "reasons": [reason for _, _, reason in reasons],
        "until": None if turns_back is None else format_time(turns_back, rules),
    }


# Call lists


class _Row(NamedTuple):
    """One call-list row as shown, and what sorting it and the KPIs read of it."""

    office: str
    rank: tuple
    first_alert: int
    answered: int | None
    overdue: bool
    outcome: str | None  # of the latest follow-up
    shown: dict


@dataclass(frozen=True, slots=True)
class _Calls:
    """What every call-list row reads besides its own alerts."""

    followups: dict[str, set[Followup]]
    statuses: dict[str, dict]
    numbers: StatusSettings
    now: int | None
    rules: RuleSettings

    def lists(self, alerts: dict[str, list[_Alert]], levels: tuple[str, ...]) -> dict[str, list[_Row]]:
        """office -> the rows of the residents with a live alert of one of ``levels``, sorted:
        overdue rows by due_by, unanswered ones by due_by, then answered ones by first_alert."""
        offices: dict[str, list[_Row]] = {}
        for person_id in sorted(alerts):
            listed = [alert for alert in alerts[person_id] if alert.level in levels]
            if listed:
                row = self.row(person_id, listed)
                offices.setdefault(row.office, []).append(row)
        return {office: sorted(rows, key=lambda row: row.rank) for office, rows in sorted(offices.items())}

    def row(self, person_id: str, alerts: list[_Alert]) -> _Row:
        subdistrict = alerts[0].subdistrict  # every alert of a person carries their one home
        level = min((alert.level for alert in alerts), key=_LEVELS.index)
        first_alert = min(alert.known for alert in alerts)
        observed = [self.days(alert.level) + alert.exposure_end for alert in alerts if not alert.released]
        followups = self.followups.get(person_id, set())
        latest = max(followups, key=_latest_key, default=None)
        answered = min((f.at for f in followups if f.outcome in _ANSWERS and f.at >= first_alert), default=None)
        due_by = first_alert + round(getattr(self.numbers.followup_hours, level) * _HOUR)
        overdue = answered is None and self.now is not None and self.now >= due_by
        shown = {
            "person_id": person_id,
            "subdistrict": subdistrict or UNASSIGNED,
            "subdistrict_name": _name(subdistrict),
            "level": level,
            "case_ids": sorted({alert.case_id for alert in alerts}),
            "first_alert": self.time(first_alert),
            "last_exposure_end": self.time(max(alert.exposure_end for alert in alerts)),
            "observation_until": self.time(max(observed)) if observed else None,
            "color": self.statuses[person_id]["color"] if person_id in self.statuses else "green",
            "followup": None if latest is None else self.followup(latest),
            "answered": None if answered is None else self.time(answered),
            "due_by": self.time(due_by),
            "overdue": overdue,
        }
        # The next call first: overdue, then not yet due, each close contacts first and by due time;
        # then the answered, by first alert.
        if answered is None:
            rank = (0 if overdue else 1, _LEVELS.index(level), due_by, person_id)
        else:
            rank = (2, 0, first_alert, person_id)
        outcome = None if latest is None else latest.outcome
        return _Row(subdistrict or UNASSIGNED, rank, first_alert, answered, overdue, outcome, shown)

    def days(self, level: str) -> int:
        """The observation period of a level, in microseconds."""
        return getattr(self.numbers, f"{level}_days") * _DAY

    def followup(self, followup: Followup) -> dict:
        return {"outcome": followup.outcome, "at": self.time(followup.at), "by": followup.by, "note": followup.note}

    def time(self, moment: int) -> str:
        return format_time(moment, self.rules)


def _latest_key(followup: Followup) -> tuple:
    """The latest follow-up has the greatest ``at``; ties: outcome, by, note as text, absent first."""
    by, note = followup.by, followup.note
    return (followup.at, followup.outcome, by is not None, by or "", note is not None, note or "")


def _name(subdistrict: str | None) -> str | None:
    place = subdistricts().get(subdistrict) if subdistrict is not None else None
    return None if place is None else place.name


def _shown(offices: dict[str, list[_Row]]) -> dict[str, list[dict]]:
    return {office: [row.shown for row in rows] for office, rows in offices.items()}


# KPIs


def _kpis(offices: dict[str, list[_Row]], now: int | None, rules: RuleSettings) -> dict[str, Any]:
    """The city over every row, then each office, slowest first: most overdue, smallest share
    reached within 24 h, longest median (none answered is the longest), then code."""
    found = [_kpi(office, _name(office), rows) for office, rows in offices.items()]

    def slowest_first(kpi: dict) -> tuple:
        median = kpi["median_hours_to_reach"]
        share = kpi["reached_24h"] / kpi["alerted"]
        return (-kpi["overdue"], share, median is not None, -(median or 0.0), kpi["subdistrict"])

    return {
        "at": None if now is None else format_time(now, rules),
        "city": _kpi("city", None, [row for rows in offices.values() for row in rows]),
        "offices": sorted(found, key=slowest_first),
    }


def _kpi(subdistrict: str, name: str | None, rows: list[_Row]) -> dict[str, Any]:
    waits = sorted(row.answered - row.first_alert for row in rows if row.answered is not None)
    outcomes = [row.outcome for row in rows]
    kpi: dict[str, Any] = {"subdistrict": subdistrict, "name": name, "alerted": len(rows)}
    for hours in _REACHED_WITHIN:
        kpi[f"reached_{hours}h"] = sum(wait <= hours * _HOUR for wait in waits)
    kpi["median_hours_to_reach"] = round(waits[(len(waits) - 1) // 2] / _HOUR, 3) if waits else None
    kpi["overdue"] = sum(row.overdue for row in rows)
    for outcome in _COUNTED:
        kpi[outcome] = outcomes.count(outcome)
    return kpi
