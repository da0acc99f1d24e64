"""The simulated city's rail and metro as the outside world publishes them: a GTFS timetable, a
12306-like ticket export, metro gate taps and carriage-code scans, written from the same rides the
event stream carries, so each importer is tested end to end against the simulator's own truth.

What the simulator decides here, and the importers must not be told (docs/import.md):
- a metro rider taps in ``TAP_WALK_SECONDS`` plus a wait of up to ``MAX_WAIT_SECONDS`` before the
  run leaves their station, and taps out ``TAP_WALK_SECONDS`` after it arrives at their station;
- a carriage code is scanned as the doors close at the boarding station;
- a train set runs one metro run after another on its line, ``TURNAROUND_MINUTES`` apart at least;
- a ticket is dated the day its rider boarded, with the seat or berth as 12306 prints it.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from tracer.simulate.clock import hhmm
from tracer.simulate.feeds import FeedFile, Feeds
from tracer.simulate.feeds.documents import document
from tracer.simulate.feeds.messy import BAD_NUMBER, Mangler, miscounted, stranger, tally, write_csv
from tracer.simulate.schedule import Schedule

TIMETABLE, TICKETS, TAPS, CODES = "gtfs.zip", "tickets.csv", "taps.csv", "carriage-codes.csv"
HOLDERS = "card-holders.csv"  # the cards with a known holder (holders.py), for --card-holders
TAP_WALK_SECONDS = 60  # gate to platform and back: the importers' default walk_seconds
MAX_WAIT_SECONDS = 240  # on the platform, before the run the rider took
TURNAROUND_MINUTES = 10  # a train set's rest between two runs
BROKEN_EVERY = 1000  # rows between two rows of each broken kind
ZONE = "Asia/Shanghai"
CHINESE = {"Shanghai Hongqiao": "上海虹桥", "Shanghai": "上海", "Shanghai South": "上海南", "Suzhou": "苏州",
           "Nanjing": "南京", "Nanjing South": "南京南", "Hangzhou East": "杭州东", "Beijing South": "北京南"}
SEAT_TYPES = {("seat", True): "二等座", ("seat", False): "硬座", ("hard_sleeper", False): "硬卧",
              ("soft_sleeper", True): "动卧", ("soft_sleeper", False): "软卧"}
TICKET_HEADER = ("train", "date", "carriage", "seat", "seat_type", "board_station", "alight_station", "id_type",
                 "id_number")
_SHANGHAI = timezone(timedelta(hours=8))  # the simulator's clock (tracer/simulate/clock.py)


def card(person: str) -> str:
    """The transport card of a simulated person (``SPTC0000000012``): one each, never a document."""
    return f"SPTC{person[0]}{int(person[1:]):09d}"


def rides(feeds: Feeds, mode: str) -> list[dict[str, Any]]:
    """The rides of ``mode`` as the engine keeps them: a correction (same trip id) in place of the
    ride it corrects, an id-less ride delivered twice once."""
    found: dict[Any, dict[str, Any]] = {}
    for trip in feeds.events("trip"):
        if trip["mode"] == mode:
            key = trip.get("trip_id") or orjson.dumps(trip)
            found.pop(key, None)
            found[key] = trip
    return list(found.values())


def write_timetable(feeds: Feeds) -> FeedFile:
    """The metro lines and the trains as a GTFS zip, every day of the clock the same."""
    first, last = feeds.clock.dates[0], feeds.clock.dates[-1]
    tables: dict[str, list[list[Any]]] = {
        "agency.txt": [["agency_id", "agency_name", "agency_url", "agency_timezone"],
                       ["sim", "tracer simulated city", "https://example.org/", ZONE]],
        "calendar.txt": [["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                          "sunday", "start_date", "end_date"],
                         ["daily", *[1] * 7, first.replace("-", ""), last.replace("-", "")]],
        "stops.txt": [["stop_id", "stop_name"]],
        "routes.txt": [["route_id", "route_short_name", "route_long_name", "route_type"]],
        "trips.txt": [["route_id", "service_id", "trip_id", "trip_short_name", "direction_id"]],
        "stop_times.txt": [["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"]],
        "translations.txt": [["table_name", "field_name", "language", "translation", "record_id"]],
    }
    stops: dict[str, str] = {}
    for table in feeds.schedule.metro:
        line = table.line
        tables["routes.txt"].append([line.name, line.name[1:], f"Line {line.name[1:]}", 1])
        for departure, direction in table.runs:
            trip = f"{line.name}-{hhmm(departure)}"
            tables["trips.txt"].append([line.name, "daily", trip, "", direction])
            for sequence, name in enumerate(table.names[direction]):
                stops.setdefault(name, name)
                moment = _gtfs_time(departure * 60 + sequence * line.interval)
                tables["stop_times.txt"].append([trip, moment, moment, name, sequence + 1])
    for train in feeds.schedule.trains:
        tables["routes.txt"].append([train.number, train.number, "", 2])
        tables["trips.txt"].append([train.number, "daily", train.number, train.number, 0])
        for sequence, (name, minutes) in enumerate(train.route):
            stop = name.replace(" ", "_").replace("'", "")
            stops.setdefault(stop, name)
            moment = _gtfs_time((train.departure + minutes) * 60)
            tables["stop_times.txt"].append([train.number, moment, moment, stop, sequence + 1])
    for stop, name in sorted(stops.items()):
        tables["stops.txt"].append([stop, name])
        if name in CHINESE:
            tables["translations.txt"].append(["stops", "stop_name", "zh", CHINESE[name], stop])
    with zipfile.ZipFile(feeds.out / TIMETABLE, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, rows in tables.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # same bytes every time
            archive.writestr(info, _csv(rows), zipfile.ZIP_DEFLATED)
    return FeedFile("timetable", TIMETABLE, len(tables["stop_times.txt"]) - 1)


def _gtfs_time(seconds: int) -> str:
    """GTFS time of a second of the service day: hours pass 24 after midnight."""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _csv(rows: list[list[Any]]) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue()


def write_tickets(feeds: Feeds) -> FeedFile:
    """One 12306-like row per train passenger ride (crew hold no ticket), dated the day the rider
    boarded, the seat or berth as 12306 prints it; and a few rows broken on purpose."""
    mangle = Mangler(feeds.rng)
    rows: list[tuple[str, ...] | str] = []
    rejected: list[str] = []
    for number, trip in enumerate(ride for ride in rides(feeds, "train") if ride.get("role") != "crew"):
        berth, sealed, seat = trip.get("berth", "seat"), trip.get("sealed", True), trip.get("seat")
        label = "" if seat is None else seat if berth == "seat" else f"{seat}号{'上中下'[int(seat) % 3]}铺"
        kind, id_number = document(trip["person_id"])
        row = (mangle.service(trip["service"]), mangle.date(trip["board_time"][:10]), f"{int(trip['carriage']):02d}车",
               label, SEAT_TYPES[(berth, sealed)], _station(trip["board_station"]), _station(trip["alight_station"]),
               mangle.kind(kind), mangle.number(id_number))
        rows.append(row)
        if number % BROKEN_EVERY == 0:
            kind, other = stranger(number)
            rows += [
                (*row[:6], "火星站", kind, other),
                ("G9999", *row[1:7], kind, other),
                (*row[:7], kind, miscounted(other)),
            ]
            rejected += ["station '火星站' is not in the timetable",
                         f"train G9999 does not run on {trip['board_time'][:10]} (nor overnight from the day before)",
                         BAD_NUMBER]
            if trip["date"] == trip["board_time"][:10] == trip["alight_time"][:10]:  # leaves both stations that day
                rows.append((*row[:5], row[6], row[5], kind, other))
                rejected.append(f"alighting station {row[5]!r} is not after the boarding station")
    return FeedFile("tickets", TICKETS, write_csv(feeds.out / TICKETS, TICKET_HEADER, rows), tally(rejected),
                    {"timetable": TIMETABLE})


def _station(name: str) -> str:
    """As a ticket prints it: the Chinese name with 站 where the simulator knows it."""
    return CHINESE[name] + "站" if name in CHINESE else name


def write_taps(feeds: Feeds) -> FeedFile:
    """A tap-in and a tap-out per metro ride, in time order as a gate system exports them: the
    rider taps in a walk and a wait before the run leaves, and out a walk after it arrives."""
    taps = []
    rnd = feeds.rng.random
    for trip in rides(feeds, "metro"):
        line = trip["service"].split("-", 1)[0]
        boards, alights = _seconds(trip["board_time"]), _seconds(trip["alight_time"])
        number = card(trip["person_id"])
        taps.append((boards - TAP_WALK_SECONDS - int(rnd() * MAX_WAIT_SECONDS), number, "in", line,
                     trip["board_station"]))
        taps.append((alights + TAP_WALK_SECONDS, number, "out", line, trip["alight_station"]))
    taps.sort()
    rows = [(number, _local(moment), direction, line, station) for moment, number, direction, line, station in taps]
    count = write_csv(feeds.out / TAPS, ("card", "time", "direction", "line", "station"), rows)
    return FeedFile("taps", TAPS, count, {}, {"timetable": TIMETABLE, "walk_seconds": TAP_WALK_SECONDS,
                                              "max_wait_seconds": MAX_WAIT_SECONDS, "card_holders": HOLDERS})


def write_carriage_codes(feeds: Feeds) -> FeedFile:
    """A scan per metro ride: the card, the code of its train set and carriage, and the moment the
    doors closed at the boarding station; its tap-out is in taps.csv."""
    sets = train_sets(feeds.schedule)
    rows: list[tuple[str, ...] | str] = []
    rejected: list[str] = []
    for number, trip in enumerate(rides(feeds, "metro")):
        line, _, departure = trip["service"].split("-")
        row = (card(trip["person_id"]), f"{sets[(line, departure)]}:{trip['carriage']}",
               _local(_seconds(trip["board_time"])))
        rows.append(row)
        if number % BROKEN_EVERY == 0:
            rows += [(f"SPTCX{number:09d}", sets[(line, departure)], row[2]),
                     (f"SPTCX{number:09d}", row[1], row[2].replace(" ", "T") + "Z+")]
            rejected += ["carriage code is not TRAIN_SET:CARRIAGE (nor are train_set and carriage given)",
                         "time is not 'YYYY-MM-DD HH:MM:SS' (local) nor ISO 8601 with an offset"]
    count = write_csv(feeds.out / CODES, ("card", "code", "time"), rows)
    return FeedFile("carriage-codes", CODES, count, tally(rejected), {"taps": TAPS, "card_holders": HOLDERS})


def train_sets(schedule: Schedule) -> dict[tuple[str, str], str]:
    """(line, departure HHMM) -> the train set running that run (``L2-T03``): each run takes the
    lowest-numbered set of its line that is back from its last run, the same every day."""
    sets: dict[tuple[str, str], str] = {}
    for table in schedule.metro:
        free_at: list[int] = []  # per set, the minute it is free again
        duration = (table.line.stations - 1) * table.line.interval // 60 + 1
        for departure, _ in sorted(table.runs):
            number = next((n for n, free in enumerate(free_at) if free <= departure), len(free_at))
            if number == len(free_at):
                free_at.append(0)
            free_at[number] = departure + duration + TURNAROUND_MINUTES
            sets[(table.line.name, hhmm(departure))] = f"{table.line.name}-T{number + 1:02d}"
    return sets


def _seconds(stamp: str) -> int:
    """Seconds since the epoch of the simulator's ``2020-01-15T07:34:05+08:00``."""
    return int(datetime.fromisoformat(stamp).timestamp())


def _local(seconds: int) -> str:
    """``2020-01-15 07:32:05``: local time, as gate systems write it."""
    return datetime.fromtimestamp(seconds, _SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")

