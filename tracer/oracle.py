"""Reference oracle: the close-contact rules of docs/rules.md, written a second time, plainly.

The engine is incremental, persistent and fast; this module is none of those on purpose. It folds
the whole input in memory and then loops over the riders of each service, so that every line can
be checked against docs/rules.md by reading it. It shares no code with the engine (only the
settings object), so when the two disagree one of them is wrong and a test says which input shows it.

Retention is ignored: inputs compared against the oracle span less than ``retention_days``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from tracer.settings import RuleSettings

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SUBDISTRICT = re.compile(r"[0-9]{9}")
_CREW_ROWS = re.compile(r"([0-9]+)(?:-([0-9]+))?")
_LEADING_INT = re.compile(r"[0-9]+")
_INTEGER = re.compile(r"-?[0-9]+")
_MODES = ("flight", "train", "metro")
_BERTHS = ("seat", "hard_sleeper", "soft_sleeper")
_STATUSES = ("confirmed", "asymptomatic", "suspected", "excluded")
_CLOSE, _GENERAL = "close", "general"


class Ride(NamedTuple):
    """One valid trip, with the fields the rules compare already normalised."""

    trip_id: str
    person_id: str
    mode: str
    service: str
    date: str
    board: int  # microseconds since the epoch
    alight: int
    carriage: str | None  # trimmed string, None when unknown
    seat: str | None  # as given
    row: int | None  # leading integer of the seat
    berth: str
    compartment: str | None  # trimmed string, None when unknown
    bay: int | None  # the compartment as an integer, when it is one
    sealed: bool
    crew: bool
    crew_rows: tuple[int, int] | None


class Case(NamedTuple):
    case_id: str
    person_id: str
    status: str
    onset: date
    isolated_at: int | None
    reported_at: int


def expected_alerts(events: Iterable[Any], rules: RuleSettings = RuleSettings()) -> dict[str, dict]:
    """The live alert set (alert_id -> alert) after the whole stream, per docs/rules.md."""
    registry: dict[str, str] = {}
    trips: dict[str, Ride] = {}
    cases: dict[str, Case] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "person":
            person = _person(event)
            if person is not None:
                registry[person[0]] = person[1]
        elif kind == "trip":
            ride = _ride(event, rules)
            if ride is not None:
                trips[ride.trip_id] = ride
        elif kind == "case":
            case = _case(event)
            if case is not None:
                cases[case.case_id] = case
    return _trace(registry, trips, cases, rules)


def write_truth(alerts: Mapping[str, dict], path: str | Path) -> None:
    """One alert per line, sorted by alert_id, so that equal alert sets give equal files."""
    with open(path, "wb") as out:
        for alert_id in sorted(alerts):
            out.write(orjson.dumps(alerts[alert_id]) + b"\n")


# Validation: a record the schema rejects is ignored, as the engine dead-letters it.


def _person(event: dict) -> tuple[str, str] | None:
    person_id, subdistrict = event.get("person_id"), event.get("subdistrict")
    if not _is_id(person_id) or not isinstance(subdistrict, str) or not _SUBDISTRICT.fullmatch(subdistrict):
        return None
    return person_id, subdistrict


def _ride(event: dict, rules: RuleSettings) -> Ride | None:
    person_id, mode, service = event.get("person_id"), event.get("mode"), event.get("service")
    if not _is_id(person_id) or mode not in _MODES or not isinstance(service, str) or not service:
        return None
    service_date = _date(event.get("date"))
    board, alight = _micros(event.get("board_time")), _micros(event.get("alight_time"))
    if service_date is None or board is None or alight is None:
        return None
    if alight <= board or alight - board > rules.max_ride_hours * 3_600_000_000:
        return None
    carriage, compartment = event.get("carriage"), event.get("compartment")
    seat, berth, sealed = event.get("seat"), event.get("berth"), event.get("sealed")
    role, crew_rows = event.get("role"), event.get("crew_rows")
    stations = (event.get("board_station"), event.get("alight_station"))
    if not (_is_label(carriage) and _is_label(compartment) and _optional_str(seat)):
        return None
    if berth not in (None, *_BERTHS) or sealed not in (None, True, False) or role not in (None, "passenger", "crew"):
        return None
    if not (_optional_str(crew_rows) and _optional_str(stations[0]) and _optional_str(stations[1])):
        return None
    rows = _crew_rows(crew_rows) if crew_rows is not None else None
    if crew_rows is not None and rows is None:
        return None
    trip_id = event.get("trip_id")
    if trip_id is None:
        trip_id = "h:" + hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    elif not isinstance(trip_id, str) or not trip_id:
        return None
    row = _LEADING_INT.match(seat.strip()) if seat is not None else None
    compartment_text = _trimmed(compartment)
    return Ride(
        trip_id=trip_id,
        person_id=person_id,
        mode=mode,
        service=service,
        date=service_date.isoformat(),
        board=board,
        alight=alight,
        carriage=_trimmed(carriage),
        seat=seat,
        row=int(row.group()) if row else None,
        berth=berth or "seat",
        compartment=compartment_text,
        bay=int(compartment_text) if compartment_text and _INTEGER.fullmatch(compartment_text) else None,
        sealed=sealed is not False,
        crew=role == "crew",
        crew_rows=rows,
    )


def _case(event: dict) -> Case | None:
    case_id, person_id, status = event.get("case_id"), event.get("person_id"), event.get("status")
    if not isinstance(case_id, str) or not case_id or not _is_id(person_id) or status not in _STATUSES:
        return None
    onset, reported_at = _date(event.get("onset")), _micros(event.get("reported_at"))
    isolated_text = event.get("isolated_at")
    isolated_at = _micros(isolated_text) if isolated_text is not None else None
    if onset is None or reported_at is None or (isolated_text is not None and isolated_at is None):
        return None
    return Case(case_id, person_id, status, onset, isolated_at, reported_at)


def _is_id(value: object) -> bool:
    """person_id: non-empty, at most 128 characters, no control characters."""
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        return False
    return not any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in value)


def _is_label(value: object) -> bool:
    """carriage and compartment: absent, a string or an integer (a JSON boolean is not one)."""
    return value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _optional_str(value: object) -> bool:
    return value is None or isinstance(value, str)


def _trimmed(value: str | int | None) -> str | None:
    """Carriages and compartments compare as trimmed strings; blank means unknown."""
    text = str(value).strip() if value is not None else ""
    return text or None


def _crew_rows(text: str) -> tuple[int, int] | None:
    match = _CREW_ROWS.fullmatch(text)
    if match is None:
        return None
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    return (first, last) if first <= last else None


def _date(value: object) -> date | None:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _micros(value: object) -> int | None:
    """ISO 8601 with an offset -> microseconds since the epoch; anything else -> None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.utcoffset() is None:
        return None
    return (moment - _EPOCH) // _MICROSECOND


# Tracing: every case ride against every rider of the same (mode, service, date).


def _trace(
    registry: dict[str, str], trips: dict[str, Ride], cases: dict[str, Case], rules: RuleSettings
) -> dict[str, dict]:
    by_person: dict[str, list[Ride]] = {}
    by_service: dict[tuple[str, str, str], list[Ride]] = {}
    for trip_id in sorted(trips):
        ride = trips[trip_id]
        by_person.setdefault(ride.person_id, []).append(ride)
        by_service.setdefault((ride.mode, ride.service, ride.date), []).append(ride)
    minimum = rules.min_overlap_seconds * 1_000_000
    alerts: dict[str, dict] = {}
    for case_id in sorted(cases):
        case = cases[case_id]
        if case.status == "excluded":
            continue
        start, end = _window(case, rules)
        best: dict[str, tuple[tuple, dict]] = {}
        for case_ride in by_person.get(case.person_id, []):
            for ride in by_service[(case_ride.mode, case_ride.service, case_ride.date)]:
                if ride.person_id == case.person_id:
                    continue
                exposure_start = max(case_ride.board, ride.board, start)
                exposure_end = min(case_ride.alight, ride.alight, end)
                if exposure_end - exposure_start <= minimum:
                    continue
                level, rule = _classify(case_ride, ride, rules)
                rank = (level != _CLOSE, exposure_start, -exposure_end, case_ride.trip_id, ride.trip_id)
                alert_id = _alert_id(case.case_id, ride.person_id, ride.mode, ride.service, ride.date)
                if alert_id not in best or rank < best[alert_id][0]:
                    alert = _alert(alert_id, level, rule, case, case_ride, ride, registry, rules)
                    alert["exposure_start"] = _format(exposure_start, rules)
                    alert["exposure_end"] = _format(exposure_end, rules)
                    alert["window_truncated"] = False
                    best[alert_id] = (rank, alert)
        alerts.update((alert_id, ranked[1]) for alert_id, ranked in best.items())
    return alerts


def _window(case: Case, rules: RuleSettings) -> tuple[float, float]:
    """[00:00 local of onset - lookback_days, isolated_at); an open window ends at infinity."""
    first_day = case.onset - timedelta(days=rules.lookback_days)
    start = (datetime.combine(first_day, time(0), tzinfo=rules.zone) - _EPOCH) // _MICROSECOND
    return start, case.isolated_at if case.isolated_at is not None else float("inf")


def _classify(case: Ride, contact: Ride, rules: RuleSettings) -> tuple[str, str]:
    if case.mode == "flight":
        return _flight(case, contact, rules.flight_row_span)
    if case.mode == "train":
        return _train(case, contact, rules.train_bay_span)
    if case.carriage is not None and case.carriage == contact.carriage:
        return _CLOSE, "metro.same_carriage"
    return _GENERAL, "metro.same_train"


def _flight(case: Ride, contact: Ride, span: int) -> tuple[str, str]:
    if not case.crew and not contact.crew:
        if case.row is not None and contact.row is not None and abs(case.row - contact.row) <= span:
            return _CLOSE, "flight.rows_within_span"
    elif not case.crew:
        if contact.crew_rows is None or (case.row is not None and _covers(contact.crew_rows, case.row)):
            return _CLOSE, "flight.crew_served_case_row"
    elif contact.crew:
        return _CLOSE, "flight.crew_together"
    elif case.crew_rows is None or (contact.row is not None and _covers(case.crew_rows, contact.row)):
        return _CLOSE, "flight.case_crew_served_row"
    return _GENERAL, "flight.same_flight"


def _covers(rows: tuple[int, int], row: int) -> bool:
    return rows[0] <= row <= rows[1]


def _train(case: Ride, contact: Ride, span: int) -> tuple[str, str]:
    """The rows of the two train tables, top to bottom; the first that matches decides."""
    same_carriage = case.carriage is not None and case.carriage == contact.carriage
    if case.berth == "soft_sleeper" and case.compartment is not None:
        if same_carriage and contact.compartment == case.compartment:
            return _CLOSE, "train.same_compartment"
    elif case.sealed or case.berth == "soft_sleeper":
        if same_carriage:
            return _CLOSE, "train.same_carriage"
    elif same_carriage and case.bay is not None and contact.bay is not None and abs(case.bay - contact.bay) <= span:
        return _CLOSE, "train.bay_within_span"
    if same_carriage and contact.crew:
        return _CLOSE, "train.crew_of_carriage"
    return _GENERAL, "train.same_train"


def _alert_id(case_id: str, contact_person_id: str, mode: str, service: str, service_date: str) -> str:
    key = "\x1f".join([case_id, contact_person_id, mode, service, service_date])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _alert(
    alert_id: str,
    level: str,
    rule: str,
    case: Case,
    case_ride: Ride,
    ride: Ride,
    registry: dict[str, str],
    rules: RuleSettings,
) -> dict[str, Any]:
    """The output keys of docs/schema.md, in their order, up to ``rule`` (the caller adds the rest)."""
    return {
        "v": 1,
        "alert_id": alert_id,
        "action": "add",
        "level": level,
        "case_id": case.case_id,
        "case_person_id": case.person_id,
        "contact_person_id": ride.person_id,
        "subdistrict": registry.get(ride.person_id),
        "mode": ride.mode,
        "service": ride.service,
        "date": ride.date,
        "case_carriage": case_ride.carriage,
        "case_seat": case_ride.seat,
        "contact_carriage": ride.carriage,
        "contact_seat": ride.seat,
        "rule": rule,
    }


def _format(micros: int, rules: RuleSettings) -> str:
    return (_EPOCH + micros * _MICROSECOND).astimezone(rules.zone).isoformat()
