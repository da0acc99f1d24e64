"""``tracer import manifest``: airline passenger and crew manifests -> flight ``trip`` events.

A row is one person on one flight: the flight number and date, an identity document, the seat,
whether they are crew and which rows they served, and the flight's departure and arrival (the
actual times when the export has them, else the scheduled ones: the engine needs when people were
aboard, and a manifest knows no boarding time per passenger). Flight numbers and dates go through
the one normaliser the lookup uses (tracer/analysis/question.py): ``mu 5101`` and ``ＭＵ５１０１`` are
MU5101, ``2020/1/15`` is 2020-01-15.

The trip id is derived from the flight, date and person, so importing a manifest again, or a later
export that corrects a seat, replaces the ride instead of adding a second one (the engine keeps the
last ride with one id). A row that repeats an earlier one exactly is reported and not written again.
A blank seat is used (a general contact of everyone aboard, the rules' "row unknown") and noted.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, NamedTuple

import orjson
import polars as pl

from connectors.importers.base import Context, Events, Kind, Record
from connectors.importers.columnar import by_value, plain_documents
from connectors.importers.identity import KIND_NAMES, plain_form, read_kind
from connectors.importers.report import Rejected
from connectors.importers.times import LocalTimes
from tracer.analysis.question import read_date, read_seat, read_service
from tracer.errors import InputError, InvalidEvent
from tracer.events import parse_line

REQUIRED = ("flight", "date", "id_type", "id_number", "departure", "arrival")
OPTIONAL = ("seat", "crew", "crew_rows", "actual_departure", "actual_arrival", "from", "to")
FLIGHT_NUMBER = re.compile(r"[A-Z0-9]{2}[0-9]{1,4}[A-Z]?")  # MU5101, 9C8888: an airline code, digits
FLIGHT = ("flight", "date", "departure", "arrival", "actual_departure", "actual_arrival")  # a flight's columns
_YES = frozenset(("1", "y", "yes", "true", "crew", "是", "机组"))
_NO = frozenset(("", "0", "n", "no", "false", "passenger", "否", "旅客"))
_CREW = dict.fromkeys(_YES, True) | dict.fromkeys(_NO, False)
_CACHE = 1 << 16


class Flight(NamedTuple):
    service: str
    date: str
    json: str  # the fields its trips share, as JSON without the braces


class Manifest:
    def __init__(self, context: Context) -> None:
        self._ids = context.person_ids
        self._times = LocalTimes(context.settings.rules.zone)
        self._max_ride_us = int(context.settings.rules.max_ride_hours * 3_600_000_000)
        self._report = context.report
        self._flights: dict[tuple[str, ...], Flight] = {}  # the flight's columns as written -> the flight
        self._rows: dict[str, int] = {}  # trip id -> hash of its line, to tell a repeat from a correction
        self._framed: dict[str, int] = {}  # the same for the trips ``frame`` wrote, by ``_contents``

    def row(self, record: Record, line: int) -> Events:
        shared = self._flight(tuple(record[column] for column in FLIGHT))
        flight = orjson.loads("{" + shared.json + "}")
        person = self._ids.person_id(read_kind(record["id_type"]), record["id_number"])
        trip_id = _trip_id(shared.service, shared.date, person)
        trip: dict[str, Any] = {"type": "trip", "trip_id": trip_id, "person_id": person, **flight}
        if _crew(record["crew"]):
            trip["role"] = "crew"
            rows = unicodedata.normalize("NFKC", record["crew_rows"]).replace(" ", "")
            if rows:
                trip["crew_rows"] = rows
        else:
            if record["crew_rows"].strip():
                self._report.note("served rows given for a passenger: ignored")
            seat = _seat(record["seat"])
            if seat is None:
                self._report.note("no seat: a general contact of everyone aboard")
            else:
                trip["seat"] = seat
        for field, column in (("board_station", "from"), ("alight_station", "to")):
            place = unicodedata.normalize("NFKC", record[column]).strip().upper()
            if place:
                trip[field] = place
        line = orjson.dumps(trip).decode()
        content, framed = _content(line), self._framed.pop(trip_id, None)
        if framed is None:
            repeat, listed = self._rows.get(trip_id) == content, trip_id in self._rows
        else:  # ``frame`` wrote it, and remembered the hash of its line by ``_contents``
            repeat, listed = framed == _contents(pl.Series([line])).item(), True
        self._rows[trip_id] = content
        if repeat:
            raise Rejected("repeats an earlier row")
        if listed:
            self._report.note("person listed again on the flight: the later row wins")
        return [trip]

    def frame(self, rows: pl.DataFrame, others: list[Record]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The rows whose every value is in its plain form, of a readable flight, and whose person is
        on that flight in no other row of the chunk nor earlier, at once."""
        keys = rows.select(pl.concat_str(FLIGHT, separator="\x1f").alias("_key"))["_key"]
        heads, shared, index = [], [], {}  # per flight: the line up to the person's hash, the flight's fields
        for joined in keys.unique().to_list():
            try:
                fields = self._flight(tuple(joined.split("\x1f")))
            except Rejected:
                continue
            index[joined] = len(heads)
            heads.append('{"type":"trip","trip_id":"' + _trip_id(fields.service, fields.date, "pid:"))
            shared.append(fields.json)
        crew = pl.col("crew").str.to_lowercase().replace_strict(_CREW, default=None, return_dtype=pl.Boolean)
        seat, served = pl.col("_seat"), pl.col("crew_rows")
        found = rows.with_columns(
            keys.replace_strict(index, default=None, return_dtype=pl.UInt32).alias("_flight"),
            pl.col("seat").str.replace_all(" ", "", literal=True).str.to_uppercase().alias("_seat"),
            by_value(rows, "id_type", pl.col("id_type").str.to_lowercase().replace_strict(KIND_NAMES, default=None))
            .alias("_kind"),
            plain_form(rows, "id_number").alias("_number"),
            crew.alias("_crew"),
        )
        plain = (
            pl.col("_flight").is_not_null() & pl.col("_crew").is_not_null()
            & pl.when(pl.col("_crew")).then(served.str.contains(r"^(?:[0-9]{1,3}(?:-[0-9]{1,3})?)?$"))
            .otherwise(seat.str.contains(r"^[0-9]{1,3}[A-Z]$") & (served == "")).fill_null(False)
            & pl.col("from").str.contains(r"^[A-Z]{0,8}$") & pl.col("to").str.contains(r"^[A-Z]{0,8}$")
        )
        mask = found.select(plain.alias("_plain"))["_plain"] & plain_documents(found, "_kind", "_number")
        needed = ["line", "_flight", "_seat", "_kind", "_number", "_crew", "crew_rows", "from", "to"]
        candidates = found.select(needed).filter(mask)
        hexes = self._ids.column(candidates["_kind"], candidates["_number"]).str.slice(len("pid:"))
        flight = pl.col("_flight")
        head = pl.lit(pl.Series(heads, dtype=pl.String)).gather(flight)
        json = pl.concat_str(
            head, "_hex", pl.lit('","person_id":"pid:'), "_hex", pl.lit('",'),
            pl.lit(pl.Series(shared, dtype=pl.String)).gather(flight),
            pl.when(pl.col("_crew")).then(
                pl.when(served == "").then(pl.lit(',"role":"crew"'))
                .otherwise(pl.concat_str(pl.lit(',"role":"crew","crew_rows":"'), served, pl.lit('"')))
            ).otherwise(pl.concat_str(pl.lit(',"seat":"'), seat, pl.lit('"'))),
            pl.when(pl.col("from") == "").then(pl.lit("")).otherwise(
                pl.concat_str(pl.lit(',"board_station":"'), "from", pl.lit('"'))),
            pl.when(pl.col("to") == "").then(pl.lit("")).otherwise(
                pl.concat_str(pl.lit(',"alight_station":"'), "to", pl.lit('"'))),
            pl.lit("}"),
        )
        trip_id = pl.concat_str(head.str.slice(len('{"type":"trip","trip_id":"')), "_hex")
        candidates = candidates.select("line", hexes.alias("_hex"), *needed[1:]).select(
            "line", trip_id.alias("_trip"), json.alias("json")
        )
        trips = candidates["_trip"]
        listed = trips.to_list()
        again = self._again(trips, listed, rows.filter(~mask), others)
        if again is None:
            self._framed.update(zip(listed, _contents(candidates["json"]).to_list(), strict=True))
            return candidates.select("line", "json"), rows.filter(~mask)
        done = candidates.filter(~again)
        self._framed.update(zip(done["_trip"].to_list(), _contents(done["json"]).to_list(), strict=True))
        left = rows.filter(~mask | pl.col("line").is_in(candidates["line"].filter(again).implode()))
        return done.select("line", "json"), left

    def _again(self, trips: pl.Series, listed: list[str], left: pl.DataFrame, others: list[Record]) -> pl.Series | None:
        """Which of ``trips`` (the fast path's candidates; ``listed``, as a list) another row names
        too: in this chunk (among the candidates, the rows left to ``row`` and ``others``) or
        earlier; None: none."""
        elsewhere = {self._key(record) for record in [*left.to_dicts(), *others]}
        unique = set(listed)  # each intersection below goes over the smaller side
        again = (self._rows.keys() & unique) | (self._framed.keys() & unique) | (elsewhere & unique)
        if not again and len(unique) == len(listed):
            return None
        return trips.is_in(pl.Series([list(again)], dtype=pl.List(pl.String))) | trips.is_duplicated()

    def _key(self, record: Record) -> str | None:
        """The trip id of a row, if it names a person on a flight."""
        try:
            shared = self._flight(tuple(record[column] for column in FLIGHT))
            person = self._ids.person_id(read_kind(record["id_type"]), record["id_number"])
        except Rejected:
            return None
        return _trip_id(shared.service, shared.date, person)

    def end(self) -> None:
        """Nothing is held."""

    def _flight(self, values: tuple[str, ...]) -> Flight:
        """The fields every row of one flight shares; read once per flight."""
        found = self._flights.get(values)
        if found is None:
            found = self._read_flight(dict(zip(FLIGHT, values, strict=True)))
            if len(self._flights) >= _CACHE:
                self._flights.clear()
            self._flights[values] = found
        return found

    def _read_flight(self, record: Record) -> Flight:
        try:
            number = read_service(record["flight"], "flight")[1]
            day = read_date(record["date"])
        except InputError as exc:
            raise Rejected(str(exc)) from None
        if not FLIGHT_NUMBER.fullmatch(number):
            raise Rejected("flight: expected a flight number like MU5101 (an airline code and digits)")
        read = self._times.read
        departs = read(record["actual_departure"] or record["departure"], "departure", day)
        arrives = read(record["actual_arrival"] or record["arrival"], "arrival", day, after=departs)
        fields = {"mode": "flight", "service": number, "date": day, "board_time": departs, "alight_time": arrives}
        try:  # the engine's own checks of the shared fields, once per flight
            parse_line(orjson.dumps({"type": "trip", "person_id": "p", **fields}), self._max_ride_us)
        except InvalidEvent as exc:
            raise Rejected(f"the engine refuses it: {exc.reason}") from None
        return Flight(number, day, orjson.dumps(fields).decode()[1:-1])


def _content(line: str) -> int:
    """What ``row`` remembers of a trip's line, to tell a repeat from a correction: its hash, not
    the line, which would hold the whole manifest in memory."""
    return hash(line)


def _contents(lines: pl.Series) -> pl.Series:
    """What ``frame`` remembers of its lines, as ``_content`` but a column at a time (polars' hash:
    0.1 us a line, against 0.4 for ``hash`` of each as a Python string); ``row`` hashes its line
    the same way only when it names a trip ``frame`` wrote."""
    return lines.hash()


def _crew(text: str) -> bool:
    plain = unicodedata.normalize("NFKC", text).strip().lower()
    if plain in _YES:
        return True
    if plain in _NO:
        return False
    raise Rejected("crew: expected yes or no (1/0, y/n, crew/passenger, 是/否)")


def _seat(text: str) -> str | None:
    try:
        return read_seat(text)
    except InputError as exc:
        raise Rejected(str(exc)) from None


def _trip_id(service: str, day: str, person: str) -> str:
    """One ride per person, flight and date, whatever row or import it came from (``frame`` builds
    the same, from the id of ``pid:``)."""
    return f"manifest:{service}:{day}:{person[4:]}"


KIND = Kind(
    name="manifest",
    help="flight manifests (flight, date, ID type and number, seat, crew, departure, arrival) -> flight trips",
    what="a flight manifest",
    required=REQUIRED,
    optional=OPTIONAL,
    start=Manifest,
)
