"""The fast lane for plain input lines: trips and registry entries written the way feeds write them.

``parse_line`` (tracer/events.py) is the definition of what a line means; it builds a dict per line
(orjson) and checks each field in Python. Almost every line of a city's day is a trip or a person
in the one shape the feeds write: ASCII, no escapes, known fields of the expected JSON types, times
and dates already seen. ``plain_events`` decodes such lines into typed msgspec structs, makes the
few checks left, and returns the events ``parse_line`` returns (benchmarks/README.md, "Plain
lines", has the figures). Anything else, however slightly off, gives None, and the caller
(``Intake.decode_many``) parses that line the one full way (``Intake.decode``), which gives the
rejection, its reason, and any rewriting a line needs. So the fast lane only ever accepts: it never rejects, warns, or
rewrites, and tests/test_plainlines.py holds it to ``parse_line`` on random and mutated lines.

Why each guard (every one sends the line to the full parser):
- ASCII without backslash or DEL: every string is then printable as it stands (no escape to
  decode, no surrogate, no invalid UTF-8, which msgspec and orjson judge differently).
- ``forbid_unknown_fields``: msgspec skips unknown fields without checking their numbers (``1e999``),
  which orjson refuses; with every field typed, nothing is skipped.
- integers beyond 64 bits: orjson reads them as floats (a label refuses a float), msgspec as ints.
- a date is taken only from the cache ``parse_line`` fills with dates it validated, so the first
  line with a new date goes the full way and the lines after it come here; a time is read as the
  full parser reads it, through the same cache.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Annotated

import msgspec

from tracer.errors import InvalidEvent
from tracer.events import (
    _DERIVED,
    _TIME_CACHE,
    _VALID_DATES,
    BERTHS,
    MAX_ID,
    MAX_TIME,
    MODES,
    ROLES,
    Event,
    Person,
    Trip,
    _derived_id,
    repeated_time,
)

_ID = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID)]  # and not blank: checked below
_INT64 = msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)  # orjson reads integers beyond as floats, msgspec not
_LABEL = Annotated[str, msgspec.Meta(max_length=MAX_ID)] | Annotated[int, _INT64]


class _TripLine(msgspec.Struct, tag_field="type", tag="trip", forbid_unknown_fields=True):
    """Every field a plain trip line may hold, each with the one JSON type it is written with (others:
    not plain). The tag: a line whose ``type`` is another, or given twice otherwise, is not plain."""

    person_id: _ID | None = None
    trip_id: _ID | None = None
    mode: str | None = None
    service: _ID | None = None
    date: str | None = None
    board_time: str | None = None
    alight_time: str | None = None
    carriage: _LABEL | None = None
    seat: _LABEL | None = None
    berth: str | None = None
    compartment: _LABEL | None = None
    sealed: bool | None = None
    role: str | None = None
    crew_rows: None = None  # crew rows are rare: the full parser reads them
    board_station: _LABEL | None = None
    alight_station: _LABEL | None = None


class _PersonLine(msgspec.Struct, tag_field="type", tag="person", forbid_unknown_fields=True):
    person_id: _ID | None = None
    subdistrict: str | None = None


_decode = msgspec.json.Decoder(_TripLine | _PersonLine).decode
_NOT_PLAIN = (msgspec.DecodeError, msgspec.ValidationError)
_NEW = tuple.__new__  # a Person or Trip without its generated __new__ in Python: a day is millions of them


def plain_events(lines: Sequence[bytes], max_ride_us: int, codes: Container[str]) -> list[Event | None]:
    """The event ``parse_line(data, max_ride_us)`` returns for each plain trip line, and for each
    plain person line whose home is one of ``codes`` (the subdistrict list: no warning to give);
    None for every other line (the full parser then decides). Never raises."""
    joined = b"\n".join(lines)  # checked at once: 0.01 against 0.9 us a line checked alone
    if joined.isascii() and b"\\" not in joined and b"\x7f" not in joined:
        return [_event(data, max_ride_us, codes) for data in lines]
    return [_event(data, max_ride_us, codes) if _safe(data) else None for data in lines]


def _safe(data: bytes) -> bool:
    return data.isascii() and b"\\" not in data and b"\x7f" not in data


def _event(data: bytes, max_ride_us: int, codes: Container[str]) -> Event | None:
    try:
        line = _decode(data)
    except _NOT_PLAIN:
        return None
    person = line.person_id
    if person is None or person.isspace():
        return None
    if type(line) is _TripLine:
        return _trip(line, person, max_ride_us)
    home = line.subdistrict  # type: ignore[union-attr]
    return _NEW(Person, (person, home)) if home in codes else None  # listed codes are all well-formed


def _trip(line: _TripLine, person: str, max_ride_us: int) -> Trip | None:
    """The trip of a decoded line, or None where ``events._trip`` would refuse it or does more."""
    mode, service, day = line.mode, line.service, line.date
    board = _TIME_CACHE.get(line.board_time) or _new_time(line.board_time)  # type: ignore[arg-type]
    alight = _TIME_CACHE.get(line.alight_time) or _new_time(line.alight_time)  # type: ignore[arg-type]
    if board is None or alight is None or mode not in MODES or day not in _VALID_DATES:
        return None
    if not 0 < alight - board <= max_ride_us or service is None or service.isspace():
        return None
    berth, role = line.berth or "seat", line.role or "passenger"
    if berth not in BERTHS or role not in ROLES:
        return None
    trip_id = line.trip_id
    if trip_id is not None and (trip_id.isspace() or trip_id.startswith(_DERIVED)):
        return None  # a derived id is checked against the content by the full parser
    carriage, seat, compartment = line.carriage, line.seat, line.compartment
    board_station, alight_station = line.board_station, line.alight_station
    row = (  # a label given is most often absent: no call then
        trip_id,
        person,
        mode,
        service,
        day,
        board,
        alight,
        None if carriage is None else _label(carriage),
        None if seat is None else _label(seat),
        berth,
        None if compartment is None else _label(compartment),
        line.sealed is not False,
        role,
        None,
        None if board_station is None else _label(board_station),
        None if alight_station is None else _label(alight_station),
    )
    if trip_id is None:
        fields = row[1:]
        return _NEW(Trip, (_derived_id(fields), *fields))
    return _NEW(Trip, row)


def _new_time(value: str | None) -> int | None:
    """A time not in the cache, read as ``events._time`` reads it (which caches it), or None where it
    refuses it. A day's first rides are mostly new times (a clock minute each): 12 % of the ingest
    benchmark's trips went the full way for them."""
    if value is None or len(value) > MAX_TIME:
        return None
    try:
        return repeated_time(value)
    except InvalidEvent:
        return None


def _label(value: str | int) -> str | None:
    """A label given, as ``events._label`` reads it: trimmed text, an integer as text, or nothing."""
    return str(value) if type(value) is int else value.strip() or None  # type: ignore[union-attr]
