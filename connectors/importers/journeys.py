"""From a metro journey (station and time in, station and time out) to the runs it could have been.

A gate record names no train. The journey is routed over the line network (fewest stops, a
transfer costing ``TRANSFER_STOPS`` stops, transfers only at stations of the same name), and each
leg is matched against the timetable: the runs that leave the leg's first station no earlier than
the tap-in plus the walk (or the previous leg's earliest arrival plus the walk between platforms),
and reach the leg's last station no later than the tap-out minus the walk (or the next leg's latest
departure minus the walk). Several runs may fit a leg; how such a ride is traced is decided in
``connectors/importers/taps.py`` (docs/rules.md, "Metro rides inferred from card taps").
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise

from connectors.importers.gtfs import Run, Timetable

TRANSFER_STOPS = 3  # a change of line weighs as much as this many stops when routing


@dataclass(frozen=True, slots=True)
class Leg:
    """One line ridden from one station to another (station keys)."""

    line: str
    board: str
    alight: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """A run that fits a leg, and where on it the rider boarded and alighted."""

    run: Run
    board: int  # positions on the run
    alight: int


class Network:
    """The line network of a timetable, for routing journeys between stations."""

    def __init__(self, timetable: Timetable) -> None:
        self._edges: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        self._lines_at: dict[str, set[str]] = defaultdict(set)
        for line, patterns in timetable.network.items():
            for stations in patterns:
                for here, there in pairwise(stations):
                    self._edges[(line, here)].add((line, there))
                for station in stations:
                    self._lines_at[station].add(line)
        self.route = lru_cache(maxsize=1 << 16)(self._route)  # journeys repeat station pairs

    def _route(self, origin: str, destination: str) -> tuple[Leg, ...] | None:
        """The legs of the cheapest path from ``origin`` to ``destination``, or None if none."""
        queue = [(0, (line, origin), ()) for line in sorted(self._lines_at.get(origin, ()))]
        heapq.heapify(queue)
        seen: set[tuple[str, str]] = set()
        while queue:
            cost, node, path = heapq.heappop(queue)
            if node in seen:
                continue
            seen.add(node)
            line, station = node
            if station == destination:
                return _legs(origin, (*path, node))
            for step in sorted(self._edges.get(node, ())):
                heapq.heappush(queue, (cost + 1, step, (*path, node)))
            for other in sorted(self._lines_at[station] - {line}):
                heapq.heappush(queue, (cost + TRANSFER_STOPS, (other, station), (*path, node)))
        return None


def _legs(origin: str, path: tuple[tuple[str, str], ...]) -> tuple[Leg, ...]:
    legs, board = [], origin
    for (line, station), (next_line, _) in zip(path, (*path[1:], (None, None)), strict=True):
        if next_line != line:
            if station != board:
                legs.append(Leg(line, board, station))
            board = station
    return tuple(legs)


def fitting_runs(
    timetable: Timetable, legs: tuple[Leg, ...], tap_in: int, tap_out: int, walk: int
) -> list[list[Candidate]] | None:
    """For each leg, the runs that fit between the taps (epoch seconds), or None when some leg has
    none. Runs of the tap-in's date and of the day before are tried (a run after midnight belongs
    to the previous service date)."""
    day = _local_date(tap_in, timetable)
    days = (day, (date.fromisoformat(day) - timedelta(days=1)).isoformat())
    found: list[list[Candidate]] = []
    earliest = tap_in + walk
    for leg in legs:
        fits = [c for d in days for c in _leg_runs(timetable, d, leg, earliest, tap_out - walk)]
        if not fits:
            return None
        found.append(fits)
        earliest = min(c.run.arrive[c.alight] for c in fits) + walk
    latest = tap_out - walk
    for index in range(len(found) - 1, -1, -1):  # backwards: a leg must leave time for the next ones
        found[index] = [c for c in found[index] if c.run.arrive[c.alight] <= latest]
        if not found[index]:
            return None
        latest = max(c.run.depart[c.board] for c in found[index]) - walk
    earliest = tap_in + walk
    for index, fits in enumerate(found):  # forwards again: the first legs' latest arrivals are known now
        found[index] = [c for c in fits if c.run.depart[c.board] >= earliest]
        if not found[index]:
            return None
        earliest = min(c.run.arrive[c.alight] for c in found[index]) + walk
    return found


def _leg_runs(timetable: Timetable, day: str, leg: Leg, earliest: int, latest: int) -> list[Candidate]:
    fits = []
    for pattern in timetable.patterns(day, leg.line):
        board = _position(pattern.stations, leg.board)
        alight = _position(pattern.stations, leg.alight, after=board)
        if board is None or alight is None:
            continue
        fits.extend(Candidate(run, board, alight) for run in pattern.between(board, alight, earliest, latest))
    return fits


def _position(stations: tuple[str, ...], station: str, after: int | None = -1) -> int | None:
    if after is None:
        return None
    try:
        return stations.index(station, after + 1)
    except ValueError:
        return None


def _local_date(moment: int, timetable: Timetable) -> str:
    return _date_of(moment // 3600, timetable.zone)


@lru_cache(maxsize=1 << 14)
def _date_of(hour: int, zone: object) -> str:
    return datetime.fromtimestamp(hour * 3600, UTC).astimezone(zone).date().isoformat()  # type: ignore[arg-type]
