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
from typing import Any, NamedTuple

import polars as pl

from connectors.importers.base import Context, Events, Kind, Record
from connectors.importers.columnar import by_number, by_value, plain_documents
from connectors.importers.gtfs import add_timetable_argument, timetable_of
from connectors.importers.identity import KIND_NAMES, plain_form, read_kind
from connectors.importers.report import Rejected
from connectors.importers.timetable import Run, Timetable
from tracer.analysis.question import read_carriage, read_date, read_service
from tracer.errors import InputError, InvalidEvent
from tracer.events import parse_line
from tracer.jsonl import json_record

REQUIRED = ("train", "date", "carriage", "board_station", "alight_station", "id_type", "id_number")
OPTIONAL = ("seat", "seat_type")
RIDE = ("train", "date", "board_station", "alight_station")  # the columns a ride's times come from
PLACE = ("carriage", "seat", "seat_type", "_class")
_SAMPLE_RIDE = ('"mode":"train","service":"G1","date":"2020-01-15","board_time":"2020-01-15T08:00:00+08:00",'
                '"alight_time":"2020-01-15T09:00:00+08:00"')
SEALED_CLASSES = ("G", "D", "C")  # high-speed classes: sealed carriages; the rest have open bays
PLACES = {"soft_sleeper": 4, "hard_sleeper": 6}  # berths per compartment (soft) or bay (hard)
SEAT_BAY = 6  # facing seats per bay on a train that is not sealed
BERTHS = {"seat": "seat", "二等座": "seat", "一等座": "seat", "商务座": "seat", "特等座": "seat", "硬座": "seat",
          "软座": "seat", "无座": "seat", "hard_sleeper": "hard_sleeper", "硬卧": "hard_sleeper",
          "soft_sleeper": "soft_sleeper", "软卧": "soft_sleeper", "动卧": "soft_sleeper", "高级软卧": "soft_sleeper"}
_BERTH_WORDS = re.compile(r"(?:号)?(?:上铺|中铺|下铺|上|中|下|铺|号)$")
_NUMBER = re.compile(r"0*([0-9]{1,3})")


class Part(NamedTuple):
    """Fields a ticket shares with others (its ride, or its place), and the same as JSON members
    (without braces), as the written line holds them: the fast path pastes them together."""

    fields: dict[str, Any]
    json: str


def _part(fields: dict[str, Any]) -> Part:
    return Part(fields, json_record(fields).decode()[1:-2])


class Tickets:
    """Ticket rows to trip events. A day's export repeats a few thousand (train, date, stations)
    and seat labels: each is read and timed once (cached), so a row costs its rider's id and its
    output line; ``frame`` does that a column at a time (connectors/importers/columnar.py)."""

    def __init__(self, context: Context) -> None:
        self.timetable, self._ids = timetable_of(context), context.person_ids
        self._max_ride_us = int(context.settings.rules.max_ride_hours * 3_600_000_000)
        self._ride = lru_cache(maxsize=1 << 16)(self._read_ride)
        self._place = lru_cache(maxsize=1 << 16)(self._read_place)
        self._valid = lru_cache(maxsize=1 << 16)(self._check)

    def row(self, row: Record, line: int) -> Events:
        """The trip event of one ticket row, or ``Rejected`` saying why there is none."""
        ride = self._ride(row["train"], row["date"], row["board_station"], row["alight_station"])
        if isinstance(ride, str):
            raise Rejected(ride)
        place = self._place(row["carriage"], row["seat"], row["seat_type"], ride.fields["service"][:1])
        if isinstance(place, str):
            raise Rejected(place)
        person = self._ids.person_id(read_kind(row["id_type"]), row["id_number"])
        trip_id = _trip_id(person, ride.json, place.json)
        return [{"type": "trip", "trip_id": trip_id, "person_id": person, **ride.fields, **place.fields}]

    def frame(self, rows: pl.DataFrame, others: list[Record]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The rows whose ride and place read (each distinct one once, and checked by the engine
        once) and whose document is plain, at once; ``row`` takes the rest. No ticket depends on
        another row, so ``others`` changes nothing. Rides and places are numbered per chunk, and a
        row holds their numbers: their JSON, and the seat's digest, are looked up by number."""
        rides: list[Part] = []
        numbers = {}
        for values in rows.select(RIDE).unique().iter_rows():
            ride = self._ride(*values)
            if isinstance(ride, Part) and self._valid(ride.json, ""):
                numbers["\x1f".join(values)] = len(rides)
                rides.append(ride)
        ride = pl.col("_ride")
        found = rows.with_columns(
            pl.concat_str(RIDE, separator="\x1f").replace_strict(numbers, default=None, return_dtype=pl.UInt32)
            .alias("_ride"),
            by_value(rows, "id_type", pl.col("id_type").str.to_lowercase().replace_strict(KIND_NAMES, default=None))
            .alias("_kind"),
            plain_form(rows, "id_number").alias("_number"),  # full-width digits too: 2 % of the rows
        ).with_columns(by_number([part.fields["service"][:1] for part in rides], ride).alias("_class"))
        places: list[str] = []
        numbers = {}
        for values in found.filter(ride.is_not_null()).select(PLACE).unique().iter_rows():
            place = self._place(*values)
            if isinstance(place, Part) and self._valid("", place.json):
                numbers["\x1f".join(values)] = len(places)
                places.append(place.json)
        key = pl.concat_str(PLACE, separator="\x1f")
        found = found.with_columns(key.replace_strict(numbers, default=None, return_dtype=pl.UInt32).alias("_place"))
        plain = (ride.is_not_null() & pl.col("_place").is_not_null()).alias("_plain")
        mask = found.select(plain).to_series() & plain_documents(found, "_kind", "_number")
        done = found.filter(mask)
        pids = self._ids.column(done["_kind"], done["_number"])
        place = pl.col("_place")
        seat = ride.cast(pl.UInt64) * len(places) + place  # one number per ride and place
        pairs = done.select(ride, place).unique().iter_rows()
        seats = {number * len(places) + at: _seat_id(rides[number].json, places[at]) for number, at in pairs}
        json = pl.concat_str(
            pl.lit('{"type":"trip","trip_id":"ticket:'), pl.col("_pid").str.slice(4), pl.lit(":"),
            seat.replace_strict(seats, return_dtype=pl.String), pl.lit('","person_id":"'), "_pid", pl.lit('",'),
            by_number([part.json for part in rides], ride),
            by_number(["," + part if part else "" for part in places], place),
            pl.lit("}"),
        )
        converted = done.select("line", pids.alias("_pid"), ride, place).select("line", json.alias("json"))
        return converted, rows.filter(~mask)

    def end(self) -> None:
        """Nothing is held."""

    def _check(self, ride: str, place: str) -> bool:
        """Whether the engine takes a ride (or a place, on a plain ride) as the fast path writes it."""
        ride = ride or _SAMPLE_RIDE
        line = f'{{"type":"trip","trip_id":"t","person_id":"p",{ride}{"," if place else ""}{place}}}'
        try:
            parse_line(line, self._max_ride_us)
        except InvalidEvent:
            return False
        return True

    def _read_ride(self, train: str, day: str, board: str, alight: str) -> Part | str:
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
        return _part(ride)

    @staticmethod
    def _read_place(carriage_text: str, seat_text: str, seat_type: str, train_class: str) -> Part | str:
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
        return _part({key: value for key, value in place.items() if value is not None})


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


def _trip_id(person: str, ride: str, place: str) -> str:
    """Stable over re-imports of the same ticket, so a re-import replaces rather than adds: the
    person and a digest of the ride and place (one per seat of a run, shared by the fast path)."""
    return f"ticket:{person[4:]}:{_seat_id(ride, place)}"


def _seat_id(ride: str, place: str) -> str:
    return hashlib.blake2b(f"{ride}\x1f{place}".encode(), digest_size=8).hexdigest()


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
