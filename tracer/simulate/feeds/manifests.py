"""manifests.csv: every flight's passengers and crew, one row per person (``tracer import manifest``).

A row carries the flight's scheduled departure and arrival (``08:30``, or with the date), not the
person's boarding: a manifest knows no more. Rides are taken as the engine keeps them: a corrected
ride (same trip id) as corrected. A person the simulator drew twice for one flight (two seats, or
crew and passenger) has two rows; the importer keeps the later, as an airline's later export would
be read, and the end-to-end test's reference does the same.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from tracer.simulate.air import Flight
from tracer.simulate.feeds import FeedFile, Feeds
from tracer.simulate.feeds.documents import document
from tracer.simulate.feeds.messy import BAD_NUMBER, P_MANGLED, Mangler, miscounted, stranger, tally, write_csv

FILE = "manifests.csv"
HEADER = ("flight", "date", "id_type", "id_number", "seat", "crew", "crew_rows", "departure", "arrival", "from", "to")
P_FULL_TIME = 0.1  # times written with their date
BROKEN_EVERY = 1000
CREW_FLAGS = ("Y", "1", "是", "crew")
PASSENGER_FLAGS = ("", "", "", "N", "0")


def write(feeds: Feeds) -> FeedFile:
    rng, mangle = feeds.rng, Mangler(feeds.rng)
    flights = {flight.number: flight for flight in feeds.schedule.flights}
    rides: dict[str, dict[str, Any]] = {}
    for trip in feeds.events("trip"):
        if trip["mode"] == "flight":
            rides.pop(trip["trip_id"], None)  # a correction takes the place of the ride it corrects
            rides[trip["trip_id"]] = trip
    rows: list[tuple[str, ...] | str] = []
    rejected: list[str] = []
    for number, trip in enumerate(rides.values()):
        flight = flights[trip["service"]]
        departs, arrives = _times(flight, trip["date"])
        kind, id_number = document(trip["person_id"])
        crew = trip.get("role") == "crew"
        seat = trip.get("seat") or ""
        if seat and rng.random() < P_MANGLED:
            seat = f"{seat[:-1]} {seat[-1].lower()}"
        row = (
            mangle.service(flight.number), mangle.date(trip["date"]), mangle.kind(kind), mangle.number(id_number),
            seat, rng.choice(CREW_FLAGS if crew else PASSENGER_FLAGS), trip.get("crew_rows") or "",
            _written(departs, rng.random()), _written(arrives, rng.random()), flight.airport, flight.destination,
        )
        rows.append(row)
        if number % BROKEN_EVERY == 0:
            rows.append(row)
            kind, other = stranger(number)
            day = trip["date"]
            good = (flight.number, day, kind, other, "12A", "", "")
            rows += [
                (flight.number, day, kind, miscounted(other), "12A", "", "", *row[7:]),
                (*good, "25:99", "10:00", "", ""),
                (*good, f"{day} 10:00", f"{day} 09:00", "", ""),
                (flight.number, day, kind, other, "", "maybe", "", *row[7:]),
                f"{flight.number},{day},{kind},{other}",
                "",
            ]
            rejected += ["repeats an earlier row", BAD_NUMBER, "departure is not a time of the calendar",
                         "the engine refuses it: alight_time is not after board_time",
                         "crew: expected yes or no (1/0, y/n, crew/passenger, 是/否)",
                         f"4 fields where the header has {len(HEADER)}"]
    count = write_csv(feeds.out / FILE, HEADER, rows)
    schedule = {f.number: {"departure": f"{f.departure // 60:02d}:{f.departure % 60:02d}", "minutes": f.minutes}
                for f in feeds.schedule.flights}
    return FeedFile("manifest", FILE, count, tally(rejected), {"flights": schedule})


def _times(flight: Flight, day: str) -> tuple[datetime, datetime]:
    """Scheduled departure and arrival, local time."""
    departs = datetime.combine(date.fromisoformat(day), datetime.min.time()) + timedelta(minutes=flight.departure)
    return departs, departs + timedelta(minutes=flight.minutes)


def _written(moment: datetime, draw: float) -> str:
    """``08:30`` (on the row's date, or the next day for an arrival after midnight), or with the date."""
    return f"{moment:%Y-%m-%d %H:%M}" if draw < P_FULL_TIME else f"{moment:%H:%M}"
