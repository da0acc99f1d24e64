"""The timetable rail and metro rides are timed by: runs of a service date, their stops and times.

Read from a GTFS feed (connectors/importers/gtfs.py). A train is found by its number and date; a
metro leg by its line, date and stations, on the stop patterns that serve them (``placed``), whose
runs do not overtake, so the runs between two times are a bisect away (``Pattern.between``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import polars as pl

from connectors.importers.times import stamps
from tracer.canonical import station_key
from tracer.events import format_time


@dataclass(frozen=True, slots=True)
class Run:
    """One trip of a service date: the stations it stops at, in order, with epoch-second times."""

    service: str  # the ride's ``service``: a train number, or a metro run id (``L5-20200115-0734``)
    mode: str  # "train" or "metro"
    line: str  # the train number, or the metro line (``L5``)
    date: str  # the service date, YYYY-MM-DD
    stations: tuple[str, ...]  # station keys
    names: tuple[str, ...]  # station names as the feed writes them
    arrive: tuple[int, ...]
    depart: tuple[int, ...]

    def position(self, station: str) -> int | None:
        """Index of the stop at station key ``station`` (the first one, for a loop), or None."""
        try:
            return self.stations.index(station)
        except ValueError:
            return None


@dataclass(slots=True)
class Pattern:
    """The runs of one line and date that stop at the same stations in the same order, sorted by
    departure: runs of a pattern do not overtake, so every stop's times are sorted too and the
    runs between two times are a bisect away (``between``)."""

    stations: tuple[str, ...]
    runs: list[Run] = field(default_factory=list)
    depart: list[list[int]] = field(default_factory=list)  # per position, the runs' departures
    arrive: list[list[int]] = field(default_factory=list)
    ordered: bool = True  # False: some run overtakes another, so ``between`` scans

    def seal(self) -> None:
        self.runs.sort(key=lambda run: run.depart[0])
        self.depart = [[run.depart[i] for run in self.runs] for i in range(len(self.stations))]
        self.arrive = [[run.arrive[i] for run in self.runs] for i in range(len(self.stations))]
        self.ordered = all(times == sorted(times) for times in self.depart + self.arrive)

    def between(self, board: int, alight: int, earliest: int, latest: int) -> list[Run]:
        """The runs leaving position ``board`` at or after ``earliest`` and reaching position
        ``alight`` at or before ``latest``."""
        if self.ordered:
            first = bisect_left(self.depart[board], earliest)
            last = bisect_right(self.arrive[alight], latest)
            return self.runs[first:last]
        return [run for run in self.runs if run.depart[board] >= earliest and run.arrive[alight] <= latest]


class Timetable:
    """Every run of every service date the feed covers, looked up by train number or by line."""

    def __init__(self, runs: list[Run], names: dict[str, str], aliases: dict[str, str], zone: ZoneInfo) -> None:
        self.zone = zone
        self.names = names  # station key -> name as the feed writes it
        self._aliases = aliases  # alias key -> station key
        self._named: dict[str, str | None] = {}  # names as feeds write them, read once
        self._stamps: dict[int, str] = {}
        self._trains: dict[tuple[str, str], Run] = {}
        patterns: dict[tuple[str, str, tuple[str, ...]], Pattern] = {}
        lines: dict[tuple[str, str], list[Pattern]] = defaultdict(list)
        self.dates: set[str] = set()
        for run in runs:
            self.dates.add(run.date)
            if run.mode == "train":
                self._trains[(run.date, run.service)] = run
                continue
            key = (run.date, run.line, run.stations)
            if key not in patterns:
                patterns[key] = Pattern(run.stations)
                lines[(run.date, run.line)].append(patterns[key])
            patterns[key].runs.append(run)
        for pattern in patterns.values():
            pattern.seal()
        self._lines = dict(lines)
        self._placed: dict[tuple[str, str, str, str], list[tuple[Pattern, int, int]]] = {}
        self.last_arrival = {day: 0 for day in self.dates}  # per service date, its runs' last arrival
        for run in runs:
            self.last_arrival[run.date] = max(self.last_arrival[run.date], run.arrive[-1])
        self.network: dict[str, list[tuple[str, ...]]] = defaultdict(list)  # line -> its stop patterns
        for (_, line, stations) in patterns:
            if stations not in self.network[line]:
                self.network[line].append(stations)

    def stamp(self, moment: int) -> str:
        """ISO 8601 local time of epoch second ``moment``: rides repeat their runs' stop times."""
        found = self._stamps.get(moment)
        if found is None:
            if len(self._stamps) >= 1 << 20:
                self._stamps.clear()
            found = self._stamps[moment] = format_time(moment * 1_000_000, self.zone)
        return found

    def stamped(self, moments: pl.Series) -> None:
        """``stamp`` of many epoch seconds at once (``times.stamps``), remembered for ``stamp``."""
        if len(self._stamps) + moments.len() >= 1 << 20:
            self._stamps.clear()
        new = moments.filter(~moments.is_in(pl.Series(list(self._stamps), dtype=pl.Int64).implode()))
        for moment, text in zip(new.to_list(), stamps(new, self.zone).to_list(), strict=True):
            if text is not None:
                self._stamps[moment] = text

    def station(self, name: str) -> str | None:
        """The station key of a name or alias, or None when the feed has no such station."""
        found = self._named.get(name, "")
        if found == "":
            found = self._aliases.get(station_key(name))
            if len(self._named) < 1 << 16:  # bounded: a hostile feed may name a new station on every row
                self._named[name] = found
        return found

    def train(self, day: str, number: str) -> Run | None:
        return self._trains.get((day, number))

    def patterns(self, day: str, line: str) -> list[Pattern]:
        """The stop patterns of ``line`` on ``day``, in a fixed order (the order of ``placed``)."""
        return self._lines.get((day, line), [])

    def placed(self, day: str, line: str, board: str, alight: str) -> list[tuple[Pattern, int, int]]:
        """(pattern, board position, alight position) of the patterns of ``line`` on ``day`` that
        stop at ``board`` and later at ``alight`` (the first such stops): computed once per leg a feed
        asks about."""
        key = (day, line, board, alight)
        found = self._placed.get(key)
        if found is None:
            found = self._placed[key] = [
                (pattern, first, last)
                for pattern in self.patterns(day, line)
                if (first := _index(pattern.stations, board, 0)) is not None
                and (last := _index(pattern.stations, alight, first + 1)) is not None
            ]
        return found


def _index(stations: tuple[str, ...], station: str, start: int) -> int | None:
    try:
        return stations.index(station, start)
    except ValueError:
        return None
