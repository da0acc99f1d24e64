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

import hashlib
import re
import unicodedata
from typing import Any

from connectors.importers.base import Context, Events, Kind, Record
from connectors.importers.identity import read_kind
from connectors.importers.report import Rejected
from connectors.importers.times import LocalTimes
from tracer.analysis.question import read_date, read_seat, read_service
from tracer.errors import InputError

REQUIRED = ("flight", "date", "id_type", "id_number", "departure", "arrival")
OPTIONAL = ("seat", "crew", "crew_rows", "actual_departure", "actual_arrival", "from", "to")
FLIGHT_NUMBER = re.compile(r"[A-Z0-9]{2}[0-9]{1,4}[A-Z]?")  # MU5101, 9C8888: an airline code, digits
_YES = frozenset(("1", "y", "yes", "true", "crew", "是", "机组"))
_NO = frozenset(("", "0", "n", "no", "false", "passenger", "否", "旅客"))
_CACHE = 1 << 16


class Manifest:
    def __init__(self, context: Context) -> None:
        self._ids = context.person_ids
        self._times = LocalTimes(context.settings.rules.zone)
        self._report = context.report
        self._flights: dict[tuple[str, str, str, str, str, str], dict[str, Any]] = {}
        self._rows: dict[str, tuple[Any, ...]] = {}  # trip id -> the row's content as written

    def row(self, record: Record, line: int) -> Events:
        trip = dict(self._flight(record))
        person = self._ids.person_id(read_kind(record["id_type"]), record["id_number"])
        crew = _crew(record["crew"])
        seat = _seat(record["seat"]) if not crew else None
        if crew:
            trip["role"] = "crew"
            rows = unicodedata.normalize("NFKC", record["crew_rows"]).replace(" ", "")
            if rows:
                trip["crew_rows"] = rows
        else:
            if record["crew_rows"].strip():
                self._report.note("served rows given for a passenger: ignored")
            if seat is None:
                self._report.note("no seat: a general contact of everyone aboard")
            else:
                trip["seat"] = seat
        trip_id = _trip_id(trip["service"], trip["date"], person)
        content = (trip.get("role"), seat, trip.get("crew_rows"), trip["board_time"], trip["alight_time"])
        if self._rows.get(trip_id) == content:
            raise Rejected("repeats an earlier row")
        if trip_id in self._rows:
            self._report.note("person listed again on the flight: the later row wins")
        self._rows[trip_id] = content
        trip["trip_id"], trip["person_id"] = trip_id, person
        return [trip]

    def end(self) -> None:
        """Nothing is held."""

    def _flight(self, record: Record) -> dict[str, Any]:
        """The fields every row of one flight shares, read once per flight."""
        key = (record["flight"], record["date"], record["departure"], record["arrival"],
               record["actual_departure"], record["actual_arrival"])
        found = self._flights.get(key)
        if found is None:
            found = self._read_flight(record)
            if len(self._flights) >= _CACHE:
                self._flights.clear()
            self._flights[key] = found
        found = dict(found)
        for field, column in (("board_station", "from"), ("alight_station", "to")):
            place = unicodedata.normalize("NFKC", record[column]).strip().upper()
            if place:
                found[field] = place
        return found

    def _read_flight(self, record: Record) -> dict[str, Any]:
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
        return {"type": "trip", "mode": "flight", "service": number, "date": day,
                "board_time": departs, "alight_time": arrives}


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
    """One ride per person, flight and date, whatever row or import it came from."""
    return "manifest:" + hashlib.blake2b(f"{service}\x1f{day}\x1f{person}".encode(), digest_size=10).hexdigest()


KIND = Kind(
    name="manifest",
    help="flight manifests (flight, date, ID type and number, seat, crew, departure, arrival) -> flight trips",
    what="a flight manifest",
    required=REQUIRED,
    optional=OPTIONAL,
    start=Manifest,
)
