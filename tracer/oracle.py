"""Reference oracle: the close-contact rules of docs/rules.md, written a second time, plainly.

The engine is incremental, persistent and fast; this module is none of those on purpose. It folds
the whole input in memory and then loops over the riders of each service, so that every line can
be checked against docs/rules.md by reading it. It shares no code with the engine (only the
settings object), so when the two disagree one of them is wrong and a test says which input shows it.

Direct contacts of cases, secondary contacts through their close contacts, and contacts of
published exposures are all computed the same way: a set of source rides (the case's, the close
contact's, the exposure's) against every other rider of the same service, within a time window.
Retention and event time are ignored: inputs compared against the oracle span less than
``retention_days``. A ride's service number and date written in another form are read as
``tracer run`` reads them by default (``[intake] rewrite_noncanonical``): rewritten, ``_canonical``.
The follow-up views (health status, call lists, KPIs) are written a second
time in tracer/oracle_views.py, on the stream folded here.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from tracer.settings import RuleSettings

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SUBDISTRICT = re.compile(r"[0-9]{9}")
_CREW_ROWS = re.compile(r"([0-9]+)(?:-([0-9]+))?")
_LEADING_INT = re.compile(r"[0-9]+")
_INTEGER = re.compile(r"-?[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_TRAIN_NO = re.compile(r"[GDCZTK][0-9]{1,4}")
_FLIGHT_NO = re.compile(r"[A-Z0-9]{2}[0-9]{1,4}[A-Z]?")  # the mode is given: any airline designator
_DATE_FORMS = (
    re.compile(r"(?P<y>[0-9]{4})(?P<s>[-/.])(?P<m>[0-9]{1,2})(?P=s)(?P<d>[0-9]{1,2})"),
    re.compile(r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})"),
    re.compile(r"(?P<y>[0-9]{4})\s*年\s*(?P<m>[0-9]{1,2})\s*月\s*(?P<d>[0-9]{1,2})\s*[日号]?"),
)
_MODES = ("flight", "train", "metro")
_BERTHS = ("seat", "hard_sleeper", "soft_sleeper")
_UNBOUNDED = 1 << 62  # an exposure without start or end: the riders' own rides bound it
_STATUSES = ("confirmed", "asymptomatic", "suspected", "discharged", "excluded")
_OUTCOMES = ("reached", "quarantined", "unreachable", "released")
_NOTE_CHARACTERS = 500
_CLOSE, _GENERAL, _SECONDARY = "close", "general", "secondary"
_DEFAULT_RULES = RuleSettings()  # frozen, so one shared default is safe


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
    seat: str | None  # trimmed; blank is None
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


class Exposure(NamedTuple):
    """A published case trip: its rides (one per listed carriage and seat) and its window."""

    exposure_id: str
    rides: tuple[Ride, ...]
    start: int
    end: int


class Origin(NamedTuple):
    """Whose contacts an alert describes: a case or an exposure (``kind``), and the close contact
    in between."""

    kind: str  # "case" or "exposure"
    case_id: str
    case_person_id: str | None
    via_person_id: str | None


class Followup(NamedTuple):
    """What a street office did about a person (docs/rules.md, "Follow-ups"); a ``quarantine``
    event is a ``quarantined`` follow-up without ``by`` or ``note``."""

    person_id: str
    outcome: str
    at: int
    by: str | None
    note: str | None


class Stream(NamedTuple):
    """The valid events of a stream, folded: the last of each key in stream order wins, and
    follow-ups are a set per person (identical ones are one)."""

    registry: dict[str, str]
    trips: dict[str, Ride]
    cases: dict[str, Case]
    followups: dict[str, set[Followup]]
    exposures: dict[str, Exposure]
    boards: list[int]  # the board time of every valid trip event, redeliveries too: event time counts them


def json_values(lines: Iterable[bytes]) -> Iterator[Any]:
    """The JSON value of each line; lines that are not JSON are skipped, as the engine dead-letters
    them (what the oracle functions take as ``events``)."""
    for line in lines:
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError:
            continue


def expected_alerts(events: Iterable[dict], rules: RuleSettings = _DEFAULT_RULES) -> dict[str, dict]:
    """The live alert set (alert_id -> alert) after the whole stream, per docs/rules.md.

    ``events`` are decoded JSON values in stream order; values that are not valid events (a JSON
    array, a trip without a person, ...) are skipped, as the engine sends them to the dead letters.
    """
    return live_alerts(read_stream(events, rules), rules)


def read_stream(events: Iterable[dict], rules: RuleSettings = _DEFAULT_RULES) -> Stream:
    """Fold the valid events of ``events`` (decoded JSON values, in stream order)."""
    stream = Stream({}, {}, {}, {}, {}, [])
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "person":
            person = _person(event)
            if person is not None:
                stream.registry[person[0]] = person[1]
        elif kind == "trip":
            ride = _ride(_canonical(event), rules)
            if ride is not None:
                stream.trips[ride.trip_id] = ride
                stream.boards.append(ride.board)
        elif kind == "case":
            case = _case(event)
            # An onset more than two weeks after the report is not a case the rules can trace.
            if case is not None and case.onset <= _local_date(case.reported_at, rules) + timedelta(days=14):
                stream.cases[case.case_id] = case
        elif kind in ("followup", "quarantine"):
            followup = _followup(event)
            if followup is not None:
                stream.followups.setdefault(followup.person_id, set()).add(followup)
        elif kind == "exposure":
            exposure = _exposure(_canonical(event), rules)
            if exposure is not None:
                stream.exposures[exposure.exposure_id] = exposure
    return stream


def live_alerts(stream: Stream, rules: RuleSettings = _DEFAULT_RULES) -> dict[str, dict]:
    """The live alert set of a folded stream. A close contact is isolated at the earliest of
    their quarantined follow-ups, whatever order they arrived in."""
    isolated = {
        person_id: min(followup.at for followup in followups if followup.outcome == "quarantined")
        for person_id, followups in stream.followups.items()
        if any(followup.outcome == "quarantined" for followup in followups)
    }
    return _Tracer(stream.registry, stream.trips, rules).trace(stream.cases, isolated, stream.exposures)


def write_truth(alerts: Mapping[str, dict], path: str | Path) -> None:
    """One alert per line, sorted by alert_id, so that equal alert sets give equal files."""
    with open(path, "wb") as out:
        for alert_id in sorted(alerts):
            out.write(orjson.dumps(alerts[alert_id]) + b"\n")


# Validation: a record the schema rejects is ignored, as the engine dead-letters it.


def _canonical(event: dict) -> dict:
    """A trip or exposure with its service number and date in the form feeds use (docs/rules.md,
    "Canonical forms"): full-width characters as ASCII, a flight or train number upper-cased without
    spaces, dashes or a trailing 次/航班 when what is left is one; a date in another common form as
    YYYY-MM-DD. Anything else is left as it is, for the checks below."""
    fixed = dict(event)
    mode, service, day = event.get("mode"), event.get("service"), event.get("date")
    if mode in ("flight", "train") and isinstance(service, str):
        text = unicodedata.normalize("NFKC", service).strip().upper()
        text = "".join(ch for ch in text if not ch.isspace() and ch not in _DASHES)
        for suffix in ("次列车", "次", "航班"):
            if text.endswith(suffix):
                text = text[: -len(suffix)]
                break
        if (_TRAIN_NO if mode == "train" else _FLIGHT_NO).fullmatch(text):
            fixed["service"] = text
    if isinstance(day, str) and not _DATE.fullmatch(day):
        text = unicodedata.normalize("NFKC", day).strip()
        for written in _DATE_FORMS:
            found = written.fullmatch(text)
            if found:
                year, month, number = (int(part) for part in found.group("y", "m", "d"))
                with contextlib.suppress(ValueError):  # no day of the calendar: refused below
                    fixed["date"] = date(year, month, number).isoformat()
                break
    return fixed


def _person(event: dict) -> tuple[str, str] | None:
    person_id, subdistrict = event.get("person_id"), event.get("subdistrict")
    if not _is_id(person_id) or not isinstance(subdistrict, str) or not _SUBDISTRICT.fullmatch(subdistrict):
        return None
    return person_id, subdistrict


def _ride(event: dict, rules: RuleSettings) -> Ride | None:
    person_id, mode, service = event.get("person_id"), event.get("mode"), event.get("service")
    if not _is_id(person_id) or mode not in _MODES or not isinstance(service, str) or not service:
        return None
    board, alight = parse_time(event.get("board_time")), parse_time(event.get("alight_time"))
    if _date(event.get("date")) is None or board is None or alight is None:
        return None
    if alight <= board or alight - board > rules.max_ride_hours * 3_600_000_000:
        return None
    carriage, compartment = event.get("carriage"), event.get("compartment")
    seat, berth, sealed = event.get("seat"), event.get("berth"), event.get("sealed")
    role, crew_rows = event.get("role"), event.get("crew_rows")
    stations = (event.get("board_station"), event.get("alight_station"))
    if not (_is_label(carriage) and _is_label(compartment) and _is_label(seat)):
        return None
    if berth not in (None, *_BERTHS) or not (sealed is None or isinstance(sealed, bool)):
        return None
    if role not in (None, "passenger", "crew"):
        return None
    if not (_optional_str(crew_rows) and _optional_str(stations[0]) and _optional_str(stations[1])):
        return None
    rows = _crew_rows(crew_rows) if crew_rows is not None else None
    if crew_rows is not None and rows is None:
        return None
    trip_id = event.get("trip_id")
    if trip_id is None:
        trip_id = "h:" + hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    elif not isinstance(trip_id, str) or not trip_id or trip_id.startswith("h:"):
        return None  # "h:" is reserved for derived ids (the engine accepts only its own derivation)
    compartment_text = _trimmed(compartment)
    return Ride(
        trip_id=trip_id,
        person_id=person_id,
        mode=mode,
        service=service,
        date=event["date"],
        board=board,
        alight=alight,
        carriage=_trimmed(carriage),
        seat=_trimmed(seat),
        row=_row(_trimmed(seat)),
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
    onset, reported_at = _date(event.get("onset")), parse_time(event.get("reported_at"))
    isolated_text = event.get("isolated_at")
    isolated_at = parse_time(isolated_text) if isolated_text is not None else None
    if onset is None or reported_at is None or (isolated_text is not None and isolated_at is None):
        return None
    return Case(case_id, person_id, status, onset, isolated_at, reported_at)


def _followup(event: dict) -> Followup | None:
    """A follow-up, or a quarantine event read as a quarantined one. ``by`` is an id like any
    other; ``note`` at most 500 characters and no control character, trimmed (blank: none)."""
    person_id, at = event.get("person_id"), parse_time(event.get("at"))
    if not _is_id(person_id) or at is None:
        return None
    if event["type"] == "quarantine":
        return Followup(person_id, "quarantined", at, None, None)
    outcome, by, note = event.get("outcome"), event.get("by"), event.get("note")
    if outcome not in _OUTCOMES or not (by is None or _is_id(by)):
        return None
    if note is not None and not (isinstance(note, str) and len(note) <= _NOTE_CHARACTERS and not _CONTROL.search(note)):
        return None
    return Followup(person_id, outcome, at, by, note.strip() or None if note is not None else None)


def _exposure(event: dict, rules: RuleSettings) -> Exposure | None:
    """A published case trip: absent times leave that side unbounded, absent lists an unknown place."""
    exposure_id, mode, service = event.get("exposure_id"), event.get("mode"), event.get("service")
    if not isinstance(exposure_id, str) or not exposure_id or mode not in _MODES:
        return None
    service_date, carriages, seats = _date(event.get("date")), event.get("carriages"), event.get("seats")
    if not isinstance(service, str) or not service or service_date is None:
        return None
    if not (_str_list(carriages) and _str_list(seats)):
        return None
    if not all(_optional_str(event.get(name)) for name in ("board_station", "alight_station", "source")):
        return None
    start_text, end_text = event.get("start"), event.get("end")
    start = parse_time(start_text) if start_text is not None else -_UNBOUNDED
    end = parse_time(end_text) if end_text is not None else _UNBOUNDED
    if start is None or end is None:
        return None
    carriages = [label for label in map(_trimmed, carriages or []) if label is not None]
    seats = [label for label in map(_trimmed, seats or []) if label is not None]
    places = [(carriage, seat) for carriage in carriages or [None] for seat in seats or [None]]
    rides = tuple(
        Ride(
            trip_id=f"{index:06d}",
            person_id="",
            mode=mode,
            service=service,
            date=event["date"],
            board=start,
            alight=end,
            carriage=carriage,
            seat=seat,
            row=_row(seat),
            berth="seat",
            compartment=None,
            bay=None,
            sealed=True,
            crew=False,
            crew_rows=None,
        )
        for index, (carriage, seat) in enumerate(places)
    )
    return Exposure(exposure_id, rides, start, end)


def _is_id(value: object) -> bool:
    """person_id: non-empty, at most 128 characters, no control characters."""
    return isinstance(value, str) and 0 < len(value) <= 128 and _CONTROL.search(value) is None


def _is_label(value: object) -> bool:
    """carriage and compartment: absent, a string or an integer (a JSON boolean is not one)."""
    return value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _optional_str(value: object) -> bool:
    return value is None or isinstance(value, str)


def _str_list(value: object) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(item, str) for item in value))


def _trimmed(value: str | int | None) -> str | None:
    """Carriages and compartments compare as trimmed strings; blank means unknown."""
    text = str(value).strip() if value is not None else ""
    return text or None


def _row(seat: str | None) -> int | None:
    """Flight row: the leading integer of the seat (``32C`` -> 32)."""
    match = _LEADING_INT.match(seat.strip()) if seat is not None else None
    return int(match.group()) if match else None


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


def parse_time(value: object) -> int | None:
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


# Tracing: source rides against every other rider of the same (mode, service, date).


class _Tracer:
    """The folded trips, indexed by person and by service, and the loops over them."""

    def __init__(self, registry: dict[str, str], trips: dict[str, Ride], rules: RuleSettings) -> None:
        self.registry, self.rules = registry, rules
        self.by_person: dict[str, list[Ride]] = {}
        self.by_service: dict[tuple[str, str, str], list[Ride]] = {}
        for trip_id in sorted(trips):
            ride = trips[trip_id]
            self.by_person.setdefault(ride.person_id, []).append(ride)
            self.by_service.setdefault((ride.mode, ride.service, ride.date), []).append(ride)

    def trace(
        self, cases: dict[str, Case], isolated: dict[str, int], exposures: dict[str, Exposure]
    ) -> dict[str, dict]:
        alerts: dict[str, dict] = {}
        isolation = round(self.rules.contact_isolation_hours * 3_600_000_000)
        for case_id in sorted(cases):
            case = cases[case_id]
            if case.status == "excluded":
                continue
            start, end = _window(case, self.rules)
            direct = self.meet(
                Origin("case", case_id, case.person_id, None), self.by_person.get(case.person_id, []), start, end
            )
            alerts.update((alert_id, ranked[1]) for alert_id, ranked in direct.items())
            if not self.rules.trace_secondary:
                continue
            for via, since in sorted(_close_since(direct).items()):
                until = isolated.get(via, case.reported_at + isolation)
                origin = Origin("case", case_id, case.person_id, via)
                secondary = self.meet(origin, self.by_person.get(via, []), since, until)
                alerts.update((alert_id, ranked[1]) for alert_id, ranked in secondary.items())
        for exposure_id in sorted(exposures):
            exposure = exposures[exposure_id]
            found = self.meet(Origin("exposure", exposure_id, None, None), exposure.rides, exposure.start, exposure.end)
            alerts.update((alert_id, ranked[1]) for alert_id, ranked in found.items())
        return alerts

    def meet(self, origin: Origin, sources: Iterable[Ride], start: float, end: float) -> dict[str, tuple[tuple, dict]]:
        """alert_id -> (rank, alert) of the best pair of each contact with one of ``sources``, within
        [start, end). Through a close contact (``via_person_id``) only close rules count, as secondary."""
        minimum = self.rules.min_overlap_seconds * 1_000_000
        best: dict[str, tuple[tuple, dict]] = {}
        for source in sources:
            for ride in self.by_service.get((source.mode, source.service, source.date), []):
                if ride.person_id in (origin.case_person_id, origin.via_person_id):
                    continue
                exposure_start = max(source.board, ride.board, start)
                exposure_end = min(source.alight, ride.alight, end)
                if exposure_end - exposure_start <= minimum:
                    continue
                level, rule = _classify(source, ride, self.rules)
                if origin.via_person_id is not None:
                    if level != _CLOSE:
                        continue
                    level = _SECONDARY
                shown = (source.carriage or "", source.seat or "", ride.carriage or "", ride.seat or "", rule)
                rank = (level == _GENERAL, exposure_start, -exposure_end, *shown, source.trip_id, ride.trip_id)
                alert_id = _alert_id(origin, ride)
                if alert_id not in best or rank < best[alert_id][0]:
                    exposure = (format_time(exposure_start, self.rules), format_time(exposure_end, self.rules))
                    best[alert_id] = (rank, self._alert(alert_id, level, rule, origin, source, ride, exposure))
        return best

    def _alert(
        self, alert_id: str, level: str, rule: str, origin: Origin, source: Ride, ride: Ride, exposure: tuple[str, str]
    ) -> dict[str, Any]:
        """The output keys of docs/schema.md, in their order."""
        return {
            "v": 1,
            "alert_id": alert_id,
            "action": "add",
            "level": level,
            "source_kind": origin.kind,
            "case_id": origin.case_id,
            "case_person_id": origin.case_person_id,
            "contact_person_id": ride.person_id,
            "via_person_id": origin.via_person_id,
            "subdistrict": self.registry.get(ride.person_id),
            "mode": ride.mode,
            "service": ride.service,
            "date": ride.date,
            "case_carriage": source.carriage,
            "case_seat": source.seat,
            "contact_carriage": ride.carriage,
            "contact_seat": ride.seat,
            "rule": rule,
            "exposure_start": exposure[0],
            "exposure_end": exposure[1],
            "window_truncated": False,
        }


def _close_since(direct: dict[str, tuple[tuple, dict]]) -> dict[str, int]:
    """Close contact -> start of their earliest close exposure to the case (their exposure period)."""
    since: dict[str, int] = {}
    for rank, alert in direct.values():
        if alert["level"] == _CLOSE:
            contact = alert["contact_person_id"]
            since[contact] = min(rank[1], since.get(contact, rank[1]))
    return since


def _window(case: Case, rules: RuleSettings) -> tuple[int, float]:
    """[00:00 local of onset - lookback_days, isolated_at); an open window ends at infinity."""
    start = _midnight(case.onset - timedelta(days=rules.lookback_days), rules)
    return start, case.isolated_at if case.isolated_at is not None else float("inf")


def _local_date(micros: int, rules: RuleSettings) -> date:
    return (_EPOCH + micros * _MICROSECOND).astimezone(rules.zone).date()


def _midnight(day: date, rules: RuleSettings) -> int:
    return (datetime.combine(day, time(0), tzinfo=rules.zone) - _EPOCH) // _MICROSECOND


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
    elif same_carriage and _near(case.bay, contact.bay, span):
        return _CLOSE, "train.bay_within_span"
    if same_carriage and contact.crew:
        return _CLOSE, "train.crew_of_carriage"
    return _GENERAL, "train.same_train"


def _near(bay: int | None, other: int | None, span: int) -> bool:
    """Bays within ``span`` of each other; an unknown or non-numeric bay is near nothing."""
    return bay is not None and other is not None and abs(bay - other) <= span


def _alert_id(origin: Origin, ride: Ride) -> str:
    """SHA-256 over source kind, case (or exposure), contact, mode, service and date (and the close
    contact, for secondary)."""
    parts = [origin.kind, origin.case_id, ride.person_id, ride.mode, ride.service, ride.date]
    if origin.via_person_id is not None:
        parts.append(origin.via_person_id)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def format_time(micros: float, rules: RuleSettings) -> str:
    """An instant as output writes it: ISO 8601 in the rules' zone, microseconds only when set."""
    return (_EPOCH + micros * _MICROSECOND).astimezone(rules.zone).isoformat()
