"""Rail tickets (a 12306-like export) -> train rides timed by the GTFS timetable.

A ticket names the train, the date, the carriage, the seat or berth, and the stations the rider
boarded and left at, but no times. The times come from the timetable: the rider is aboard from the
train's departure at their boarding station to its arrival at their alighting station, so two
riders of one carriage meet only where their journeys overlap (docs/rules.md, "Time").

The ticket's date is the day the rider boarded (as 12306 prints it): a rider boarding an overnight
train after midnight holds a ticket dated the day after the train's service date, so the run is
the one of that date or of the day before that leaves the boarding station on the ticket's date
(else, for an export dated by service date, the run of the ticket's date).

Seats and berths (docs/import.md, "Rail tickets"): ``seat_type`` (二等座, 硬座, 硬卧, 软卧, ... or
``seat`` / ``hard_sleeper`` / ``soft_sleeper``; blank: a seat) gives the berth. A sleeper's berth
number gives its compartment (soft: 4 berths each) or bay (hard: 6); on a train that is not sealed
(classes other than G, D and C) a numbered seat gives its bay of ``SEAT_BAY`` facing seats. A
blank seat is a rider whose carriage is known and seat is not: the carriage still decides.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from connectors.importers.gtfs import Run, Timetable
from connectors.importers.taps import Problem
from tracer.analysis.question import read_carriage, read_date, read_service
from tracer.errors import InputError
from tracer.events import format_time

REQUIRED = ("train", "date", "carriage", "seat", "board_station", "alight_station", "id_type", "id_number")
SEALED_CLASSES = ("G", "D", "C")  # high-speed classes: sealed carriages; the rest have open bays
PLACES = {"soft_sleeper": 4, "hard_sleeper": 6}  # berths per compartment (soft) or bay (hard)
SEAT_BAY = 6  # facing seats per bay on a train that is not sealed
BERTHS = {"seat": "seat", "二等座": "seat", "一等座": "seat", "商务座": "seat", "特等座": "seat", "硬座": "seat",
          "软座": "seat", "无座": "seat", "hard_sleeper": "hard_sleeper", "硬卧": "hard_sleeper",
          "soft_sleeper": "soft_sleeper", "软卧": "soft_sleeper", "动卧": "soft_sleeper", "高级软卧": "soft_sleeper"}
_BERTH_WORDS = re.compile(r"(?:号)?(?:上铺|中铺|下铺|上|中|下|铺|号)$")
_NUMBER = re.compile(r"0*([0-9]{1,3})")


def ticket_trip(row: dict[str, str], timetable: Timetable, person_id: Callable[[str, str], str]) -> dict[str, Any]:
    """The trip event of one ticket row, or ``Problem`` saying why there is none."""
    number = _read(read_service, row["train"].strip(), "train")[1] if row["train"].strip() else None
    if number is None:
        raise Problem("no train number")
    day = _read(read_date, row["date"], None) if row["date"].strip() else None
    if day is None:
        raise Problem("no date")
    run, board, alight = _run(timetable, number, day, row["board_station"], row["alight_station"])
    carriage = _read(read_carriage, row["carriage"], None) if row["carriage"].strip() else None
    berth = BERTHS.get((row.get("seat_type") or "seat").strip().lower())
    if berth is None:
        raise Problem(f"seat_type {row['seat_type'][:40]!r} is not a known seat or berth class")
    seat = _seat(row["seat"])
    sealed = number.startswith(SEALED_CLASSES)
    person = person_id(row["id_type"].strip(), row["id_number"].strip())
    record: dict[str, Any] = {
        "type": "trip",
        "trip_id": _trip_id(person, run.service, run.date, board, carriage, seat),
        "person_id": person,
        "mode": "train",
        "service": run.service,
        "date": run.date,
        "board_time": format_time(run.depart[board] * 1_000_000, timetable.zone),
        "alight_time": format_time(run.arrive[alight] * 1_000_000, timetable.zone),
        "carriage": carriage,
        "seat": seat,
        "board_station": run.names[board],
        "alight_station": run.names[alight],
    }
    if berth != "seat":
        record["berth"] = berth
    unit = _unit(seat, PLACES.get(berth, SEAT_BAY if not sealed else 0))
    if unit is not None:
        record["compartment"] = unit
    if not sealed:
        record["sealed"] = False
    return {key: value for key, value in record.items() if value is not None}


def _run(timetable: Timetable, number: str, day: str, board_name: str, alight_name: str) -> tuple[Run, int, int]:
    """The run the ticket rode and the rider's positions on it."""
    board_key, alight_key = timetable.station(board_name), timetable.station(alight_name)
    for station, name in ((board_key, board_name), (alight_key, alight_name)):
        if station is None:
            raise Problem(f"station {name.strip()[:40]!r} is not in the timetable")
    previous = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    runs = [run for run in (timetable.train(day, number), timetable.train(previous, number)) if run is not None]
    if not runs:
        raise Problem(f"train {number} does not run on {day} (nor overnight from the day before)")
    stops = [(run, run.position(board_key)) for run in runs]  # type: ignore[arg-type]
    stops = [(run, board) for run, board in stops if board is not None]
    if not stops:
        raise Problem(f"station {board_name.strip()[:40]!r} is not a stop of {number} on {day}")
    leaving = [(run, board) for run, board in stops if _local_day(run.depart[board], timetable) == day]
    run, board = (leaving or [(run, board) for run, board in stops if run.date == day] or stops)[0]
    alight = run.position(alight_key)  # type: ignore[arg-type]
    if alight is None:
        raise Problem(f"station {alight_name.strip()[:40]!r} is not a stop of {number} on {run.date}")
    if alight <= board:
        raise Problem(f"alighting station {alight_name.strip()[:40]!r} is not after the boarding station")
    return run, board, alight


def _trip_id(*parts: object) -> str:
    """Stable over re-imports of the same ticket, so a re-import replaces rather than adds."""
    return "ticket:" + hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:20]


def _local_day(moment: int, timetable: Timetable) -> str:
    return format_time(moment * 1_000_000, timetable.zone)[:10]


def _seat(text: str) -> str | None:
    """``05F`` as it is, ``12号下铺`` -> ``12``; blank: None."""
    plain = re.sub(r"\s", "", unicodedata.normalize("NFKC", text)).upper()
    plain = _BERTH_WORDS.sub("", plain) or plain
    if len(plain) > 16 or not plain.isprintable():
        raise Problem(f"seat {text[:40]!r} is not a seat or berth label")
    return plain or None


def _unit(seat: str | None, size: int) -> int | None:
    """Compartment or bay of a numbered place, ``size`` places each (0: none is kept)."""
    found = _NUMBER.fullmatch(seat) if seat and size else None
    return None if found is None or int(found[1]) == 0 else (int(found[1]) - 1) // size + 1


def _read(reader: Callable[..., Any], text: str, mode: str | None) -> Any:
    try:
        return reader(text, mode) if mode is not None else reader(text)
    except InputError as exc:
        raise Problem(str(exc)) from None
