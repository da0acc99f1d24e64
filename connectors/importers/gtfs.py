"""A GTFS feed read into the timetable the rail and metro importers need.

Rail tickets name a train and two stations but no times; metro taps name stations and times but no
train. Both are answered from the operator's published timetable, read here from the standard GTFS
files (a folder or a zip): ``stops``, ``routes``, ``trips``, ``stop_times`` and ``calendar`` and/or
``calendar_dates`` (``agency`` for the zone and ``translations`` for station aliases when present).

GTFS times count from noon minus 12 h of the service date in the agency's zone and may pass
24:00:00 (a train leaving at 23:50 reaches the next stop at ``24:10:00`` of the same service date),
so a stop time here is epoch seconds computed from the service date, never a time of day.

Station names are compared through ``station_key`` only (tracer/canonical.py): the
ticket's ``上海虹桥站``, the feed's ``上海虹桥`` and its English translation ``Shanghai Hongqiao`` are one
station. A problem in the feed (a missing file or column, an unreadable time) is an ``InputError``
naming the file and row: a timetable read halfway would make every ticket on the lost trains look unknown.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import unicodedata
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.importers.base import Context
from connectors.importers.timetable import Run, Timetable
from tracer.canonical import line_name, station_key
from tracer.errors import InputError

DEFAULT_ZONE = "Asia/Shanghai"
REQUIRED = {
    "stops.txt": ("stop_id", "stop_name"),
    "routes.txt": ("route_id", "route_type"),
    "trips.txt": ("route_id", "service_id", "trip_id"),
    "stop_times.txt": ("trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"),
}
# route_type: 0 tram, 1 subway/metro, 2 rail; extended types 100-117 rail, 400-405 urban rail, 900 tram
_METRO_TYPES = {0, 1, 5, 7, 12, 900} | set(range(400, 406))
_RAIL_TYPES = {2} | set(range(100, 118))
_GTFS_TIME = re.compile(r"([0-9]{1,3}):([0-5][0-9]):([0-5][0-9])")
_GTFS_DATE = re.compile(r"[0-9]{8}")


def add_timetable_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timetable", required=True, type=Path, metavar="GTFS",
                        help="the operator's GTFS timetable: a folder or a zip (docs/import.md, \"GTFS\")")


def timetable_of(context: Context) -> Timetable:
    """The timetable an import was given (``--timetable``)."""
    return read_timetable(context.options.timetable)


def read_timetable(path: str | Path) -> Timetable:
    """The timetable of the GTFS feed at ``path`` (a folder or a zip), or ``InputError``."""
    tables = _Tables(Path(path))
    zone = _zone(tables)
    names, aliases, station_of = _stations(tables)
    routes = {row["route_id"]: row for _, row in tables.rows("routes.txt")}
    trips = {row["trip_id"]: row for _, row in tables.rows("trips.txt")}
    for line, row in tables.rows("trips.txt"):
        if row["route_id"] not in routes:
            raise InputError(f"{tables.where('trips.txt', line)}: route {row['route_id']!r} is not in routes.txt")
    calendar = _calendar(tables)
    stops: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
    for line, row in tables.rows("stop_times.txt"):
        where = tables.where("stop_times.txt", line)
        if row["trip_id"] not in trips:
            raise InputError(f"{where}: trip {row['trip_id']!r} is not in trips.txt")
        if row["stop_id"] not in station_of:
            raise InputError(f"{where}: stop {row['stop_id']!r} is not in stops.txt")
        arrive = _seconds(row["arrival_time"] or row["departure_time"], where)
        depart = _seconds(row["departure_time"] or row["arrival_time"], where)
        sequence = _integer(row["stop_sequence"], "stop_sequence", where)
        stops[row["trip_id"]].append((sequence, arrive, max(arrive, depart), station_of[row["stop_id"]]))
    runs = []
    for trip_id, trip_stops in stops.items():
        trip, where = trips[trip_id], f"{tables.source}: trip {trip_id!r}"
        route = routes[trip["route_id"]]
        mode, line = _mode_and_line(route, trip, where)
        trip_stops.sort()
        for day in calendar.get(trip["service_id"], ()):
            runs.append(_run(mode, line, day, trip_stops, names, zone))
    return Timetable(runs, names, aliases, zone)


def _run(mode: str, line: str, day: date, stops: list[tuple[int, int, int, str]], names: dict[str, str],
         zone: ZoneInfo) -> Run:
    base = _day_start(day, zone)
    stations = tuple(stop[3] for stop in stops)
    arrive = tuple(base + stop[1] for stop in stops)
    depart = tuple(base + stop[2] for stop in stops)
    iso = day.isoformat()
    service = line if mode == "train" else run_id(line, iso, stops[0][2])
    return Run(service, mode, line, iso, stations, tuple(names[s] for s in stations), arrive, depart)


def run_id(line: str, day: str, departure: int) -> str:
    """A metro run's id, as tracer's simulator names its runs: ``L5-20200115-0734``, the line, the
    service date and the departure from its first stop (GTFS hours: ``2405`` after midnight)."""
    return f"{line}-{day.replace('-', '')}-{departure // 3600:02d}{departure // 60 % 60:02d}"


@lru_cache(maxsize=1024)
def _day_start(day: date, zone: ZoneInfo) -> int:
    """Epoch seconds of GTFS time 00:00:00 of ``day``: noon minus 12 h, local."""
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=zone).timestamp()) - 43_200


def _mode_and_line(route: dict[str, str], trip: dict[str, str], where: str) -> tuple[str, str]:
    try:
        kind = int(route["route_type"])
    except ValueError:
        raise InputError(f"{where}: route_type {route['route_type']!r} is not a number") from None
    short = (route.get("route_short_name") or "").strip()
    if kind in _RAIL_TYPES:
        number = unicodedata.normalize("NFKC", (trip.get("trip_short_name") or short)).upper().replace(" ", "")
        if not number:
            raise InputError(f"{where}: a rail trip needs a trip_short_name or route_short_name (the train number)")
        return "train", number
    if kind in _METRO_TYPES:
        line = line_name(short) or line_name(route.get("route_long_name") or "")
        if line is None:
            raise InputError(f"{where}: route {route['route_id']!r} names no numbered line ({short!r})")
        return "metro", line
    raise InputError(f"{where}: route_type {kind} is neither rail nor metro")


def _seconds(text: str, where: str) -> int:
    found = _GTFS_TIME.fullmatch(text.strip())
    if not found:
        raise InputError(f"{where}: {text!r} is not a GTFS time (H:MM:SS, hours may pass 24)")
    return int(found[1]) * 3600 + int(found[2]) * 60 + int(found[3])


def _integer(text: str, name: str, where: str) -> int:
    if not text.strip().isascii() or not text.strip().isdigit():
        raise InputError(f"{where}: {name} {text!r} is not a whole number")
    return int(text)


def _zone(tables: _Tables) -> ZoneInfo:
    zones = {row.get("agency_timezone", "").strip() for _, row in tables.rows("agency.txt", optional=True)}
    zones.discard("")
    if len(zones) > 1:
        raise InputError(f"{tables.source}: agencies in several zones ({', '.join(sorted(zones))}) are not supported")
    name = zones.pop() if zones else DEFAULT_ZONE
    try:
        return _zone_info(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"{tables.source}: unknown agency_timezone {name!r}") from None


@cache
def _zone_info(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _stations(tables: _Tables) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(key -> name, alias key -> key, stop_id -> key). A platform is its parent station; a
    station is also found by its stop id, its code and each translation of its name."""
    rows = {row["stop_id"]: row for _, row in tables.rows("stops.txt")}
    names: dict[str, str] = {}
    aliases: dict[str, str] = {}
    station_of: dict[str, str] = {}
    for stop_id, row in rows.items():
        parent = rows.get((row.get("parent_station") or "").strip(), row)
        key = station_key(parent["stop_name"])
        if not key:
            raise InputError(f"{tables.source}: stop {stop_id!r} has no name")
        names.setdefault(key, parent["stop_name"].strip())
        station_of[stop_id] = key
        for alias in (row["stop_name"], stop_id, row.get("stop_code") or "", parent["stop_id"]):
            if station_key(alias):
                aliases.setdefault(station_key(alias), key)
    for _, row in tables.rows("translations.txt", optional=True):
        if row.get("table_name") == "stops" and row.get("field_name") == "stop_name":
            original = rows.get(row.get("record_id") or "")
            named = original["stop_name"] if original else row.get("field_value") or ""
            if station_key(named) in aliases and station_key(row.get("translation") or ""):
                aliases.setdefault(station_key(row["translation"]), aliases[station_key(named)])
    return names, aliases, station_of


def _calendar(tables: _Tables) -> dict[str, list[date]]:
    """service_id -> its service dates, from calendar.txt and calendar_dates.txt (1 adds, 2 removes)."""
    days: dict[str, set[date]] = defaultdict(set)
    weekdays = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    found = False
    for line, row in tables.rows("calendar.txt", optional=True):
        found = True
        where = tables.where("calendar.txt", line)
        first, last = _date(row.get("start_date", ""), where), _date(row.get("end_date", ""), where)
        if (last - first).days > 3660:
            raise InputError(f"{where}: a calendar of more than ten years")
        runs_on = [row.get(name, "").strip() == "1" for name in weekdays]
        day = first
        while day <= last:
            if runs_on[day.weekday()]:
                days[row["service_id"]].add(day)
            day += timedelta(days=1)
    for line, row in tables.rows("calendar_dates.txt", optional=True):
        found = True
        where = tables.where("calendar_dates.txt", line)
        day, kind = _date(row.get("date", ""), where), row.get("exception_type", "").strip()
        if kind == "1":
            days[row["service_id"]].add(day)
        elif kind == "2":
            days[row["service_id"]].discard(day)
        else:
            raise InputError(f"{where}: exception_type {kind!r} is neither 1 (added) nor 2 (removed)")
    if not found:
        raise InputError(f"{tables.source}: neither calendar.txt nor calendar_dates.txt: no service dates")
    return {service: sorted(dates) for service, dates in days.items()}


def _date(text: str, where: str) -> date:
    if _GTFS_DATE.fullmatch(text.strip()):
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            pass
    raise InputError(f"{where}: {text!r} is not a GTFS date (YYYYMMDD)")


class _Tables:
    """The feed's files, from a folder or a zip (also one whose files sit in a single subfolder)."""

    def __init__(self, path: Path) -> None:
        self.source = str(path)
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, str] = {}
        if path.is_dir():
            self._members = {child.name: str(child) for child in path.iterdir() if child.suffix == ".txt"}
        elif path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise InputError(f"{path}: not a GTFS folder or zip ({exc})") from None
            self._members = {Path(name).name: name for name in self._zip.namelist() if name.endswith(".txt")}
        else:
            raise InputError(f"{path}: no such GTFS folder or zip")
        missing = [name for name in REQUIRED if name not in self._members]
        if missing:
            raise InputError(f"{path}: the GTFS feed lacks {', '.join(missing)}")

    def where(self, name: str, line: int) -> str:
        return f"{self.source}: {name} line {line}"

    def rows(self, name: str, optional: bool = False) -> Iterator[tuple[int, dict[str, str]]]:
        if name not in self._members:
            if optional:
                return
            raise InputError(f"{self.source}: the GTFS feed lacks {name}")
        try:
            raw = self._zip.read(self._members[name]) if self._zip else Path(self._members[name]).read_bytes()
            text = raw.decode("utf-8-sig")
        except (OSError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise InputError(f"{self.source}: cannot read {name} as UTF-8 ({exc})") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [column.strip() for column in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [column for column in REQUIRED.get(name, ()) if column not in header]
        if missing:
            raise InputError(f"{self.source}: {name} lacks the column(s) {', '.join(missing)}")
        try:
            for row in reader:
                if None in row or any(value is None for value in row.values()):
                    raise InputError(f"{self.where(name, reader.line_num)}: not as many fields as the header")
                yield reader.line_num, {key: value.strip() for key, value in row.items()}
        except csv.Error as exc:
            raise InputError(f"{self.where(name, reader.line_num)}: broken CSV ({exc})") from None
