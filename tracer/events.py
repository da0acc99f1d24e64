"""Input events: decode one JSON Lines record into a typed event, or say why not.

Times become integer microseconds since the epoch, so that comparisons are exact and nothing
depends on the machine's zone. Every rejection raises ``InvalidEvent`` with a reason a person
can act on; the runners turn it into a dead letter.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import msgspec
import orjson

from graph.keys import service_day
from tracer import canonical
from tracer.errors import InvalidEvent

MODES = ("flight", "train", "metro")
BERTHS = ("seat", "hard_sleeper", "soft_sleeper")
ROLES = ("passenger", "crew")
STATUSES = ("confirmed", "asymptomatic", "suspected", "discharged", "excluded")
TRACED_STATUSES = frozenset(("confirmed", "asymptomatic", "suspected", "discharged"))
OUTCOMES = ("reached", "quarantined", "unreachable", "released")
QUARANTINED = "quarantined"
_MAX_NOTE = 500

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
MAX_ID = 128
_DERIVED = "h:"  # trip ids derived from content
_BAD_ID = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Numbers in outside values are ASCII digits: \d (and int()) also take any Unicode digit, so a
# fullwidth code would name a queue nobody reads. Every pattern here says [0-9], never \d (and
# re.ASCII where it has \s).
SUBDISTRICT_CODE = re.compile(r"[0-9]{9}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # date.fromisoformat alone also takes 20200120 forms
_YEARS = range(1970, 2100)  # wider than any real record; keeps date arithmetic far from overflow
_CREW_ROWS = re.compile(r"\s*([0-9]{1,3})\s*(?:-\s*([0-9]{1,3})\s*)?", re.ASCII)


class Person(NamedTuple):
    """Where a person lives. ``subdistrict`` None: no known home (a code not in the registry's
    list, tracer/registry.py); their alerts go to the ``unassigned`` queue. A NamedTuple, as
    ``Trip``: a city's registry is millions of them (0.5 us a person as a frozen dataclass)."""

    person_id: str
    subdistrict: str | None


class Trip(NamedTuple):
    """One ride of one person. ``board``/``alight`` are epoch microseconds.

    A NamedTuple rather than a dataclass: trips are the hot path (millions a day), a tuple is the
    cheapest immutable record to build, and orjson writes it as a JSON array as it is.
    """

    trip_id: str
    person_id: str
    mode: str
    service: str
    date: str
    board: int
    alight: int
    carriage: str | None = None
    seat: str | None = None
    berth: str = "seat"
    compartment: str | None = None
    sealed: bool = True
    role: str = "passenger"
    crew_rows: tuple[int, int] | None = None
    board_station: str | None = None
    alight_station: str | None = None

    @property
    def service_day(self) -> str:
        """The key of the service run: riders with equal ``service_day`` can meet."""
        return service_day(self.date, self.mode, self.service)

    def encode(self) -> bytes:
        """Compact storage form (a JSON array); ``decode_trip`` reverses it."""
        return _encode_trip(self)


def decode_trip(data: bytes) -> Trip:
    """The ``Trip`` that ``Trip.encode`` wrote: msgspec builds the tuple itself (0.7 against 1.4 us a
    trip with orjson and ``Trip(*row)``; a case's lookup decodes every rider of its service days).
    A value it would not take as typed (none that ``encode`` writes) goes the old way."""
    try:
        return _TRIP_DECODER.decode(data)
    except msgspec.ValidationError:
        row = orjson.loads(data)
        if row[13] is not None:
            row[13] = (row[13][0], row[13][1])
        return Trip(*row)


def decode_trips(values: list[bytes]) -> list[Trip]:
    """``decode_trip`` of each value, in one msgspec call for all (a service day's riders)."""
    try:
        return _TRIPS_DECODER.decode(b"[" + b",".join(values) + b"]")
    except msgspec.ValidationError:
        return [decode_trip(value) for value in values]


def encode_trips(trips: list[Trip]) -> list[bytes]:
    """``Trip.encode`` of each trip (a batch's), with no Python call per trip."""
    return [_encode_trip(trip) for trip in trips]


# msgspec writes a NamedTuple as the JSON array orjson writes of ``tuple(trip)``, byte for byte (the
# same compact form, raw UTF-8, the same escapes), at 0.4 against 1.2 us a trip.
_encode_trip = msgspec.json.Encoder().encode
_TRIP_DECODER = msgspec.json.Decoder(Trip)
_TRIPS_DECODER = msgspec.json.Decoder(list[Trip])


@dataclass(frozen=True, slots=True)
class Case:
    case_id: str
    person_id: str
    status: str
    onset: str
    isolated_at: int | None
    reported_at: int

    @property
    def traced(self) -> bool:
        return self.status in TRACED_STATUSES


@dataclass(frozen=True, slots=True)
class Followup:
    """What a street office did about a person (docs/rules.md, "Follow-ups"). A ``quarantined``
    one also says when the person was isolated, which ends their secondary-exposure period; the
    old ``quarantine`` event is read as one."""

    person_id: str
    outcome: str
    at: int
    by: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Exposure:
    """A published case trip without a person id, traced like a case ride.

    ``start``/``end`` bound the exposure (None: the whole service day); ``carriages`` and
    ``seats`` say where the case was (None: unknown, so every rider is at least a general contact).
    """

    exposure_id: str
    mode: str
    service: str
    date: str
    start: int | None
    end: int | None
    carriages: tuple[str, ...] | None
    seats: tuple[str, ...] | None
    board_station: str | None
    alight_station: str | None
    source: str | None


Event = Person | Trip | Case | Followup | Exposure


def parse_line(raw: bytes | str, max_ride_us: int) -> Event:
    """Decode and validate one line. Raises ``InvalidEvent``."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"broken JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidEvent(f"not a JSON object but {type(obj).__name__}")
    kind = obj.get("type")
    if kind == "trip":
        return _trip(obj, max_ride_us)
    if kind == "case":
        return _case(obj)
    if kind == "person":
        return Person(_id(obj, "person_id"), _subdistrict(obj))
    if kind == "followup":
        return _followup(obj)
    if kind == "quarantine":
        return Followup(_id(obj, "person_id"), QUARANTINED, _time(obj, "at"))
    if kind == "exposure":
        return _exposure(obj)
    if kind is None:
        raise InvalidEvent("missing field 'type'")
    raise InvalidEvent(f"unknown type {_show(kind)} (expected trip, case, person, followup, quarantine or exposure)")


def trip_service_day(obj: dict[str, Any]) -> str | None:
    """The service day a trip line's event would key (``Trip.service_day``) once the intake has
    brought its service and date to their canonical forms (tracer/canonical.py), read from its
    decoded JSON object, or None when those fields are not valid: how ``tracer run --workers`` routes
    a trip without the cost of parsing all of it (``mu 5101`` goes where ``MU5101`` does)."""
    mode = obj.get("mode")
    if mode not in MODES:
        return None
    try:
        service, day = _id(obj, "service"), obj.get("date")
        if type(day) is str and day not in _VALID_DATES and not _DATE.fullmatch(day):
            day = canonical.date(day)
        return service_day(_date({"date": day}, "date"), mode, _canonical_service(service, mode))
    except InvalidEvent:
        return None


_CANONICAL_SERVICES: dict[tuple[str, str], str] = {}  # (service, mode) -> its canonical form: feeds repeat a few


def _canonical_service(service: str, mode: str) -> str:
    found = _CANONICAL_SERVICES.get((service, mode))
    if found is None:
        found = canonical.service(service, mode)
        if len(_CANONICAL_SERVICES) < 100_000:
            _CANONICAL_SERVICES[(service, mode)] = found
    return found


def _trip(obj: dict[str, Any], max_ride_us: int) -> Trip:
    get = obj.get  # the hot path of the whole tool: one trip per line, millions a day
    mode = get("mode")
    if mode not in MODES:
        raise InvalidEvent(_missing("mode") if mode is None else f"unknown mode {_show(mode)}")
    board = _time(obj, "board_time")
    alight = _time(obj, "alight_time")
    if alight <= board:
        raise InvalidEvent("alight_time is not after board_time")
    if alight - board > max_ride_us:
        raise InvalidEvent(f"ride of {(alight - board) / 3.6e9:.1f} h is longer than max_ride_hours")
    berth = get("berth") or "seat"
    if berth not in BERTHS:
        raise InvalidEvent(f"unknown berth {_show(berth)}")
    role = get("role") or "passenger"
    if role not in ROLES:
        raise InvalidEvent(f"unknown role {_show(role)}")
    sealed = get("sealed")
    if sealed is None:
        sealed = True
    elif sealed is not True and sealed is not False:
        raise InvalidEvent("sealed must be true or false")
    fields = (
        _id(obj, "person_id"),
        mode,
        _id(obj, "service"),
        _date(obj, "date"),
        board,
        alight,
        _label(obj, "carriage"),
        _label(obj, "seat"),
        berth,
        _label(obj, "compartment"),
        sealed,
        role,
        _crew_rows(get("crew_rows")),
        _label(obj, "board_station"),
        _label(obj, "alight_station"),
    )
    if get("trip_id") is None:  # exact duplicates of an id-less trip collapse onto one id
        return Trip(_derived_id(fields), *fields)
    trip_id = _id(obj, "trip_id")
    if trip_id.startswith(_DERIVED) and trip_id != _derived_id(fields):
        raise InvalidEvent("a trip_id starting with 'h:' must be the id derived from the trip's content")
    return Trip(trip_id, *fields)


def _derived_id(fields: tuple[Any, ...]) -> str:
    """The id of an id-less trip. The prefix is reserved: a given id that has it must be this one
    (as in the copies Kafka partitions exchange), else a feed could name, and so replace, another
    person's id-less ride."""
    return _DERIVED + hashlib.sha256(orjson.dumps(fields)).hexdigest()[:20]


def _case(obj: dict[str, Any]) -> Case:
    status = obj.get("status")
    if status not in STATUSES:
        raise InvalidEvent(_missing("status") if status is None else f"unknown status {_show(status)}")
    isolated = None if obj.get("isolated_at") is None else _time(obj, "isolated_at")
    return Case(
        _id(obj, "case_id"),
        _id(obj, "person_id"),
        status,
        _date(obj, "onset"),
        isolated,
        _time(obj, "reported_at"),
    )


def _followup(obj: dict[str, Any]) -> Followup:
    outcome = obj.get("outcome")
    if outcome not in OUTCOMES:
        unknown = f"unknown outcome {_show(outcome)} (expected {', '.join(OUTCOMES)})"
        raise InvalidEvent(_missing("outcome") if outcome is None else unknown)
    by = None if obj.get("by") is None else _id(obj, "by")
    note = obj.get("note")
    if note is not None:
        if not isinstance(note, str) or len(note) > _MAX_NOTE or _BAD_ID.search(note):
            raise InvalidEvent(f"note must be text of at most {_MAX_NOTE} characters without control characters")
        note = note.strip() or None
    return Followup(_id(obj, "person_id"), outcome, _time(obj, "at"), by, note)


def _exposure(obj: dict[str, Any]) -> Exposure:
    mode = obj.get("mode")
    if mode not in MODES:
        raise InvalidEvent(_missing("mode") if mode is None else f"unknown mode {_show(mode)}")
    start = None if obj.get("start") is None else _time(obj, "start")
    end = None if obj.get("end") is None else _time(obj, "end")
    if start is not None and end is not None and end <= start:
        raise InvalidEvent("end is not after start")
    source = obj.get("source")
    return Exposure(
        _id(obj, "exposure_id"),
        mode,
        _id(obj, "service"),
        _date(obj, "date"),
        start,
        end,
        _labels(obj, "carriages"),
        _labels(obj, "seats"),
        _label(obj, "board_station"),
        _label(obj, "alight_station"),
        source if isinstance(source, str) else None,
    )


def _labels(obj: dict[str, Any], name: str) -> tuple[str, ...] | None:
    value = obj.get(name)
    if value is None or value == []:
        return None
    if not isinstance(value, list) or len(value) > 64:
        raise InvalidEvent(f"{name} must be a list of at most 64 labels")
    labels = tuple(_label({name: item}, name) for item in value)
    return tuple(label for label in labels if label is not None) or None


def _missing(name: str) -> str:
    return f"missing field '{name}'"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _id(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if type(value) is str and 0 < len(value) <= MAX_ID and value.isprintable() and not value.isspace():
        return value  # the common case, in C; the checks below say what is wrong otherwise
    if value is None:
        raise InvalidEvent(_missing(name))
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(f"{name} must be a non-empty string")
    if len(value) > MAX_ID or _BAD_ID.search(value):
        raise InvalidEvent(f"{name} is longer than {MAX_ID} characters or holds control characters")
    return value


def _label(obj: dict[str, Any], name: str) -> str | None:
    """Optional free-text field (carriage, seat, station): trimmed string or None."""
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is int:
        return str(value)
    if type(value) is str and len(value) <= MAX_ID and value.isprintable():
        return value.strip() or None
    if not isinstance(value, str) or len(value) > MAX_ID or _BAD_ID.search(value):
        raise InvalidEvent(f"{name} must be a short string or an integer")
    return value.strip() or None


_VALID_CODES: set[str] = set()  # a city has a few hundred: validate each once


def _subdistrict(obj: dict[str, Any]) -> str:
    value = obj.get("subdistrict")
    if type(value) is str and value in _VALID_CODES:
        return value
    if value is None:
        raise InvalidEvent(_missing("subdistrict"))
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not SUBDISTRICT_CODE.fullmatch(value):
        raise InvalidEvent("subdistrict must be a 9-digit code (ASCII digits)")
    if len(_VALID_CODES) < 100_000:  # bounded: hostile input may send a new code on every line
        _VALID_CODES.add(value)
    return value


_VALID_DATES: set[str] = set()  # feeds repeat a few dates: validate each once


def _date(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if type(value) is str and value in _VALID_DATES:
        return value  # type: ignore[return-value]
    if value is None:
        raise InvalidEvent(_missing(name))
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise InvalidEvent(f"{name} must be a date YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(f"{name} is not a valid date: {_show(value)}") from None
    if day.year not in _YEARS:
        raise InvalidEvent(f"{name} is outside the years {_YEARS.start}-{_YEARS.stop - 1}: {value}")
    if len(_VALID_DATES) < 100_000:
        _VALID_DATES.add(value)
    return value


# Feeds repeat the same time strings (schedules, minute clocks): parsing each distinct string once
# halves the cost of a trip. Bounded: cleared when full. Only valid strings are kept.
_TIME_CACHE: dict[str, int] = {}
MAX_TIME = 40  # characters of a time string: longer ones are refused unread
_TIME_CACHE_SIZE = 1 << 16


def _time(obj: dict[str, Any], name: str) -> int:
    value = obj.get(name)
    cached = _TIME_CACHE.get(value) if type(value) is str else None
    if cached is not None:
        return cached
    if value is None:
        raise InvalidEvent(_missing(name))
    if not isinstance(value, str) or len(value) > MAX_TIME:
        raise InvalidEvent(f"{name} must be an ISO 8601 time string")
    return repeated_time(value, name)


def repeated_time(value: str, name: str = "time") -> int:
    """``parse_time`` through the cache of times already seen: feeds repeat their schedules' times,
    alerts their rides'."""
    cached = _TIME_CACHE.get(value)
    if cached is not None:
        return cached
    if len(_TIME_CACHE) >= _TIME_CACHE_SIZE:
        _TIME_CACHE.clear()
    _TIME_CACHE[value] = micros = parse_time(value, name)
    return micros


def parse_time(value: str, name: str = "time") -> int:
    """ISO 8601 with an offset -> epoch microseconds. Raises ``InvalidEvent``."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(f"{name} is not an ISO 8601 time: {_show(value)}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidEvent(f"{name} has no UTC offset: {_show(value)}")
    if moment.year not in _YEARS:
        raise InvalidEvent(f"{name} is outside the years {_YEARS.start}-{_YEARS.stop - 1}: {_show(value)}")
    return (moment - _EPOCH) // _US


def _crew_rows(value: Any) -> tuple[int, int] | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    match = _CREW_ROWS.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidEvent(f"crew_rows must look like '25-40': {_show(value)}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if high < low:
        raise InvalidEvent(f"crew_rows range is reversed: {_show(value)}")
    return (low, high)


_FORMATTED: dict[tuple[int, Any], str] = {}  # alerts repeat their case rides' times: format each once


def format_time(micros: int, zone: Any) -> str:
    """Epoch microseconds as ISO 8601 in ``zone`` (exact, no float rounding)."""
    text = _FORMATTED.get((micros, zone))
    if text is None:
        if len(_FORMATTED) >= _TIME_CACHE_SIZE:
            _FORMATTED.clear()
        text = _FORMATTED[(micros, zone)] = (_EPOCH + timedelta(microseconds=micros)).astimezone(zone).isoformat()
    return text


@lru_cache(maxsize=4096)  # feeds repeat a few service dates; every trip's date is checked
def local_midnight(day: str, zone: Any) -> int:
    """Epoch microseconds of 00:00 local time on ``day`` (YYYY-MM-DD) in ``zone``."""
    start = datetime.fromisoformat(day).replace(tzinfo=zone)
    return (start - _EPOCH) // _US


def next_midnight(moment: int, zone: Any) -> int:
    """Epoch microseconds of the first 00:00 local time after ``moment``: when its day ends."""
    today = date.fromisoformat(format_time(moment, zone)[:10])
    return local_midnight((today + timedelta(days=1)).isoformat(), zone)
