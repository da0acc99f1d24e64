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
from functools import lru_cache
from typing import Any

from connectors.importers.base import Context, Events, Kind, Record
from connectors.importers.gtfs import Run, Timetable, add_timetable_argument, timetable_of
from connectors.importers.identity import read_kind
from connectors.importers.report import Rejected
from tracer.analysis.question import read_carriage, read_date, read_service
from tracer.errors import InputError

REQUIRED = ("train", "date", "carriage", "board_station", "alight_station", "id_type", "id_number")
OPTIONAL = ("seat", "seat_type")
SEALED_CLASSES = ("G", "D", "C")  # high-speed classes: sealed carriages; the rest have open bays
PLACES = {"soft_sleeper": 4, "hard_sleeper": 6}  # berths per compartment (soft) or bay (hard)
SEAT_BAY = 6  # facing seats per bay on a train that is not sealed
BERTHS = {"seat": "seat", "二等座": "seat", "一等座": "seat", "商务座": "seat", "特等座": "seat", "硬座": "seat",
          "软座": "seat", "无座": "seat", "hard_sleeper": "hard_sleeper", "硬卧": "hard_sleeper",
          "soft_sleeper": "soft_sleeper", "软卧": "soft_sleeper", "动卧": "soft_sleeper", "高级软卧": "soft_sleeper"}
_BERTH_WORDS = re.compile(r"(?:号)?(?:上铺|中铺|下铺|上|中|下|铺|号)$")
_NUMBER = re.compile(r"0*([0-9]{1,3})")


class Tickets:
    """Ticket rows to trip events. A day's export repeats a few thousand (train, date, stations)
    and seat labels: each is read and timed once (cached), so a row costs its rider's id and its
    output line."""

    def __init__(self, context: Context) -> None:
        self.timetable, self._ids = timetable_of(context), context.person_ids
        self._ride = lru_cache(maxsize=1 << 16)(self._read_ride)
        self._place = lru_cache(maxsize=1 << 16)(self._read_place)

    def row(self, row: Record, line: int) -> Events:
        """The trip event of one ticket row, or ``Rejected`` saying why there is none."""
        ride = self._ride(row["train"], row["date"], row["board_station"], row["alight_station"])
        if isinstance(ride, str):
            raise Rejected(ride)
        place = self._place(row["carriage"], row["seat"], row["seat_type"], ride["service"][:1])
        if isinstance(place, str):
            raise Rejected(place)
        person = self._ids.person_id(read_kind(row["id_type"]), row["id_number"])
        trip_id = _trip_id(person, ride["service"], ride["date"], ride["board_station"], *place.values())
        return [{"type": "trip", "trip_id": trip_id, "person_id": person, **ride, **place}]

    def end(self) -> None:
        """Nothing is held."""

    def _read_ride(self, train: str, day: str, board: str, alight: str) -> dict[str, Any] | str:
        """The ride's fields that come from the timetable, or why there are none."""
        try:
            if not train.strip():
                raise Rejected("no train number")
            number = _read(read_service, train.strip(), "train")[1]
            if not day.strip():
                raise Rejected("no date")
            run, first, last = _run(self.timetable, number, _read(read_date, day, None), board, alight)
        except Rejected as problem:
            return str(problem)
        ride = {"mode": "train", "service": run.service, "date": run.date,
                "board_time": self.timetable.stamp(run.depart[first]),
                "alight_time": self.timetable.stamp(run.arrive[last]),
                "board_station": run.names[first], "alight_station": run.names[last]}
        if not number.startswith(SEALED_CLASSES):
            ride["sealed"] = False
        return ride

    @staticmethod
    def _read_place(carriage_text: str, seat_text: str, seat_type: str, train_class: str) -> dict[str, Any] | str:
        """carriage, seat, berth and compartment (those known), or why they cannot be read."""
        try:
            carriage = _read(read_carriage, carriage_text, None) if carriage_text.strip() else None
            seat = _seat(seat_text)
        except Rejected as problem:
            return str(problem)
        berth = BERTHS.get(seat_type.strip().lower() or "seat")
        if berth is None:
            return f"seat_type {seat_type[:40]!r} is not a known seat or berth class"
        sealed = train_class in SEALED_CLASSES
        place: dict[str, Any] = {"carriage": carriage, "seat": seat}
        if berth != "seat":
            place["berth"] = berth
        place["compartment"] = _unit(seat, PLACES.get(berth, 0 if sealed else SEAT_BAY))
        return {key: value for key, value in place.items() if value is not None}


def _run(timetable: Timetable, number: str, day: str, board_name: str, alight_name: str) -> tuple[Run, int, int]:
    """The run the ticket rode and the rider's positions on it."""
    board_key, alight_key = timetable.station(board_name), timetable.station(alight_name)
    for station, name in ((board_key, board_name), (alight_key, alight_name)):
        if station is None:
            raise Rejected(f"station {name.strip()[:40]!r} is not in the timetable")
    previous = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    runs = [run for run in (timetable.train(day, number), timetable.train(previous, number)) if run is not None]
    if not runs:
        raise Rejected(f"train {number} does not run on {day} (nor overnight from the day before)")
    stops = [(run, run.position(board_key)) for run in runs]  # type: ignore[arg-type]
    stops = [(run, board) for run, board in stops if board is not None]
    if not stops:
        raise Rejected(f"station {board_name.strip()[:40]!r} is not a stop of {number} on {day}")
    leaving = [(run, board) for run, board in stops if _local_day(run.depart[board], timetable) == day]
    chosen = leaving or [(run, board) for run, board in stops if run.date == day]
    if not chosen:
        raise Rejected(f"train {number} does not leave {board_name.strip()[:40]!r} on {day}")
    run, board = chosen[0]
    alight = run.position(alight_key)  # type: ignore[arg-type]
    if alight is None:
        raise Rejected(f"station {alight_name.strip()[:40]!r} is not a stop of {number} on {run.date}")
    if alight <= board:
        raise Rejected(f"alighting station {alight_name.strip()[:40]!r} is not after the boarding station")
    return run, board, alight


def _trip_id(*parts: object) -> str:
    """Stable over re-imports of the same ticket, so a re-import replaces rather than adds."""
    return "ticket:" + hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:20]


def _local_day(moment: int, timetable: Timetable) -> str:
    return timetable.stamp(moment)[:10]


def _seat(text: str) -> str | None:
    """``05F`` as it is, ``12号下铺`` -> ``12``; blank: None."""
    plain = re.sub(r"\s", "", unicodedata.normalize("NFKC", text)).upper()
    plain = _BERTH_WORDS.sub("", plain) or plain
    if len(plain) > 16 or not plain.isprintable():
        raise Rejected(f"seat {text[:40]!r} is not a seat or berth label")
    return plain or None


def _unit(seat: str | None, size: int) -> int | None:
    """Compartment or bay of a numbered place, ``size`` places each (0: none is kept)."""
    found = _NUMBER.fullmatch(seat) if seat and size else None
    return None if found is None or int(found[1]) == 0 else (int(found[1]) - 1) // size + 1


def _read(reader: Callable[..., Any], text: str, mode: str | None) -> Any:
    try:
        return reader(text, mode) if mode is not None else reader(text)
    except InputError as exc:
        raise Rejected(str(exc)) from None


KIND = Kind(
    name="tickets",
    help="rail tickets (train, date, carriage, seat, stations, ID) -> train trips timed by a GTFS --timetable",
    what="a rail ticket export",
    required=REQUIRED,
    optional=OPTIONAL,
    start=Tickets,
    arguments=add_timetable_argument,
)
