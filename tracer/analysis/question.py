"""The same-trip lookup's question (同程排查), read the way people type it.

The public types ``mu 5101``, ``ＭＵ５１０１``, ``2020/1/15`` or ``2020年1月15日``; the store keys
hold ``MU5101`` and ``2020-01-15``. Read literally, such a question finds no ride and answers "no
known case": a false all-clear. So every value is brought to the form feeds use (docs/rules.md,
"Same-trip lookup"), and a value that cannot be read is an ``InputError`` that names the field and
what was expected, never an empty answer. Metro run ids are known to no rider: the metro is asked
by line and boarding time (``line`` and ``boarded``), and the lookup finds the runs that fit.

Pure functions: the command line and the console read a question through ``read_question``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tracer import canonical
from tracer.canonical import NotCanonical
from tracer.errors import InputError, InvalidEvent
from tracer.events import MODES
from tracer.events import _date as _engine_date
from tracer.events import _id as _engine_id
from tracer.events import _label as _engine_label

# Patterns run on NFKC text (``canonical.plain``); [0-9], never \d (tracer/events.py). Dates,
# service numbers and stations are read by tracer/canonical.py, as every other reader reads them.
_CARRIAGE = re.compile(r"第?\s*([0-9]{1,3})\s*号?\s*(?:车厢|车)?")  # 5, 05, 5车, 第5车厢
_CLOCK = re.compile(r"([0-9]{1,2})\s*(?::|点|时)\s*([0-9]{2})?\s*分?|([0-9]{2})([0-9]{2})")  # 8:05, 8点05, 0805
_UNTIL = re.compile(r"\s*(?:-|~|–|—|至|到|TO)\s*", re.IGNORECASE)
_MODES = {"flight": "flight", "plane": "flight", "航班": "flight", "飞机": "flight", "train": "train",
          "rail": "train", "火车": "train", "列车": "train", "高铁": "train", "metro": "metro",
          "subway": "metro", "地铁": "metro"}


@dataclass(frozen=True, slots=True)
class Question:
    """One lookup question in the form the store keeps. Either ``service`` (a flight or train
    number, or a metro run id as stored) or, for the metro, ``line`` (``L2``) with ``boarded``:
    the window of minutes of the day in which the asker boarded, ``alighted`` and ``station`` (where
    they boarded, ``canonical.station``'s form) when given."""

    date: str
    mode: str
    service: str | None = None
    carriage: str | None = None
    seat: str | None = None
    line: str | None = None
    boarded: tuple[int, int] | None = None
    alighted: int | None = None
    station: str | None = None


def read_question(
    date: str,
    service: str | None = None,
    mode: str | None = None,
    carriage: str | None = None,
    seat: str | None = None,
    line: str | None = None,
    board_time: str | None = None,
    alight_time: str | None = None,
    station: str | None = None,
) -> Question:
    """The question in the store's form, or InputError naming the field and what it expected."""
    day = read_date(date)
    asked_mode = read_mode(mode) if mode is not None else None
    place = {"carriage": read_carriage(carriage), "seat": read_seat(seat)}
    if line is not None or board_time is not None or alight_time is not None or station is not None:
        if service is not None or asked_mode not in (None, "metro"):
            raise InputError("line: a metro line is asked with a line and a board time, not with a service or mode")
        if line is None or board_time is None:
            raise InputError("line: the metro is asked by line and board time together (e.g. line 2, 08:00-08:20)")
        boarded = read_window(board_time)
        alighted = read_clock(alight_time, "alight time") if alight_time is not None else None
        if alighted is not None and alighted < boarded[0]:
            raise InputError(f"alight time: {_show(alight_time)} is before the board time {_show(board_time)}")
        boarding = read_station(station) if station is not None else None
        return Question(day, "metro", line=read_line(line), boarded=boarded, alighted=alighted, station=boarding,
                        **place)
    if service is None:
        raise InputError("service: expected a flight or train number (e.g. MU5101, G1234), or a metro line and time")
    found_mode, number = read_service(service, asked_mode)
    return Question(day, found_mode, number, **place)


def read_date(text: str) -> str:
    """``2020-01-15`` from the common ways of writing it (``canonical.date``)."""
    try:
        iso = canonical.date(text)
    except NotCanonical as exc:
        raise InputError(exc.reason) from None
    return _engine(_engine_date, "date", iso)


def read_mode(text: str) -> str:
    mode = _MODES.get(_plain(text).lower())
    if mode is None:
        raise InputError(f"mode: expected one of {', '.join(MODES)}, got {_show(text)}")
    return mode


def read_service(text: str, mode: str | None) -> tuple[str, str]:
    """``(mode, service)``: a flight or train number upper-cased without spaces or dashes (no such
    number has either), its mode inferred when not given; a metro run id only trimmed, as stored."""
    if mode == "metro":
        return mode, _engine(_engine_id, "service", _plain(text))
    number = canonical.service_number(text)
    if mode is None:
        mode = canonical.mode_of(number)
        if mode is None:
            raise InputError(
                f"service: {_show(text)} is neither a flight number (an airline's two letters, or a letter and a "
                "digit, and digits, e.g. MU5101, 9C8851) nor a train number (G, D, C, Z, T or K and digits, e.g. "
                "G1234): give the mode (flight, train), or ask the metro by line and board time"
            )
    return mode, _engine(_engine_id, "service", number)


def read_line(text: str) -> str:
    """A metro line as run ids begin (``L2``): from ``2``, ``L2``, ``Line 2``, ``2号线``, ``地铁二号线``."""
    line = canonical.line_name(text)
    if line is None:
        raise InputError(f"line: expected a metro line like 2, L2 or 2号线, got {_show(text)}")
    return line


def read_station(text: str) -> str:
    """A boarding station in ``canonical.station``'s form (``人民广场站`` -> ``人民广场``)."""
    name = canonical.station(text)
    if not name or not name.isprintable() or len(name) > 64:
        raise InputError(f"station: expected a station name like 人民广场, got {_show(text)}")
    return name


def read_carriage(text: str | None) -> str | None:
    """A carriage number without its padding or words (``05``, ``5车``, ``第5车厢`` -> ``5``); any
    other label trimmed, as the engine keeps it."""
    if text is None:
        return None
    plain = _plain(text)
    found = _CARRIAGE.fullmatch(plain)
    return str(int(found[1])) if found else _engine(_engine_label, "carriage", plain)


def read_seat(text: str | None) -> str | None:
    """A seat upper-cased without spaces (``12 c`` -> ``12C``)."""
    return None if text is None else _engine(_engine_label, "seat", re.sub(r"\s", "", _plain(text)).upper())


def read_window(text: str) -> tuple[int, int]:
    """``(first, last)`` minute of the day of a board time (``08:05``: both the same) or a window
    (``08:00-08:20``, ``8点到8点20``)."""
    parts = _UNTIL.split(_plain(text).strip(), maxsplit=1)
    first = read_clock(parts[0], "board time")
    last = read_clock(parts[1], "board time") if len(parts) == 2 else first
    if last < first:
        raise InputError(f"board time: the window {_show(text)} ends before it starts")
    return first, last


def read_clock(text: str, field: str) -> int:
    """Minute of the day of ``08:05``, ``8:05``, ``0805``, ``8点05分``, ``8点``."""
    found = _CLOCK.fullmatch(_plain(text))
    if found:
        hours, minutes = (found[1], found[2] or "0") if found[1] is not None else (found[3], found[4])
        if int(hours) < 24 and int(minutes) < 60:
            return int(hours) * 60 + int(minutes)
    raise InputError(f"{field}: expected a time of day like 08:05, got {_show(text)}")


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


_plain, _show = canonical.plain, canonical.show


def _engine(validator: Callable[[dict[str, Any], str], Any], field: str, value: str) -> Any:
    """``value`` through the engine's validator of a ride's field, as a feed's would be (a label
    may come back None: blank)."""
    try:
        return validator({field: value}, field)
    except InvalidEvent as exc:
        raise InputError(exc.reason) from None


