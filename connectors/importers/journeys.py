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
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import NamedTuple

from connectors.importers.timetable import Run, Timetable

TRANSFER_STOPS = 3  # a change of line weighs as much as this many stops when routing


@dataclass(frozen=True, slots=True)
class Leg:
    """One line ridden from one station to another (station keys)."""

    line: str
    board: str
    alight: str


class Candidate(NamedTuple):
    """A run that fits a leg, and where on it the rider boarded and alighted (a NamedTuple: a
    feed makes one per journey and fitting run)."""

    run: Run
    board: int  # positions on the run
    alight: int


class Network:
    """The line network of a timetable, for routing journeys between stations. One search from an
    origin reaches every station (Dijkstra), so a feed pays one search per origin station, however
    many journeys start there."""

    def __init__(self, timetable: Timetable) -> None:
        self._edges: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        self._lines_at: dict[str, set[str]] = defaultdict(set)
        for line, patterns in timetable.network.items():
            for stations in patterns:
                for here, there in pairwise(stations):
                    self._edges[(line, here)].add((line, there))
                for station in stations:
                    self._lines_at[station].add(line)
        self._trees: dict[str, dict[tuple[str, str], _Reached]] = {}
        self._routes: dict[tuple[str, str], tuple[Leg, ...] | None] = {}

    def route(self, origin: str, destination: str) -> tuple[Leg, ...] | None:
        """The legs of the cheapest path from ``origin`` to ``destination``, or None if none."""
        key = (origin, destination)
        if key not in self._routes:
            tree = self._trees.get(origin)
            if tree is None:
                tree = self._trees[origin] = self._search(origin)
            ends = [(tree[(line, destination)][0], line) for line in sorted(self._lines_at.get(destination, ()))
                    if (line, destination) in tree]
            route = None
            if ends:
                line = min(ends)[1]
                _, board, legs = tree[(line, destination)]
                route = legs if board == destination else (*legs, Leg(line, board, destination))
            self._routes[key] = route
        return self._routes[key]

    def _search(self, origin: str) -> dict[tuple[str, str], _Reached]:
        """node -> (cost, the station its line was boarded at, the legs before) for every node reachable
        from ``origin``: a stop costs 1, a change of line ``TRANSFER_STOPS``; ties go to the smaller
        node, so the tree is the same every run. A node's legs are its previous node's, and one more
        when the line changes there: each route's legs without walking its path back."""
        queue: list[tuple[int, tuple[str, str], tuple[str, str] | None]] = [
            (0, (line, origin), None) for line in sorted(self._lines_at.get(origin, ()))
        ]
        heapq.heapify(queue)
        tree: dict[tuple[str, str], _Reached] = {}
        while queue:
            cost, node, previous = heapq.heappop(queue)
            if node in tree:
                continue
            line, station = node
            board, legs = origin, ()
            if previous is not None:
                _, board, legs = tree[previous]
                if previous[0] != line:  # a change of line at ``station``: the leg on the other one ends
                    legs = legs if board == station else (*legs, Leg(previous[0], board, station))
                    board = station
            tree[node] = (cost, board, legs)
            for step in self._edges.get(node, ()):
                if step not in tree:
                    heapq.heappush(queue, (cost + 1, step, node))
            for other in self._lines_at[station]:
                if other != line and (other, station) not in tree:
                    heapq.heappush(queue, (cost + TRANSFER_STOPS, (other, station), node))
        return tree


_Reached = tuple[int, str, tuple[Leg, ...]]  # a node of a route search: cost, boarded at, legs before


def fitting_runs(
    timetable: Timetable, legs: tuple[Leg, ...], tap_in: int, tap_out: int, walk: int
) -> list[list[Candidate]] | None:
    """For each leg, the runs that fit between the taps (epoch seconds), or None when some leg has
    none. Runs of the tap-in's date are tried, and of the day before while its runs still run (a
    run after midnight belongs to the previous service date)."""
    day, previous = hour_days(tap_in // 3600, timetable.zone)
    days = (day, previous) if timetable.last_arrival.get(previous, 0) > tap_in else (day,)
    latest = tap_out - walk
    if len(legs) == 1:
        fits = _leg_runs(timetable, days, legs[0], tap_in + walk, latest)
        return [fits] if fits else None
    found: list[list[Candidate]] = []
    earliest = tap_in + walk
    for leg in legs:
        fits = _leg_runs(timetable, days, leg, earliest, latest)
        if not fits:
            return None
        found.append(fits)
        earliest = min(c.run.arrive[c.alight] for c in fits) + walk
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


def _leg_runs(timetable: Timetable, days: tuple[str, ...], leg: Leg, earliest: int, latest: int) -> list[Candidate]:
    return [
        Candidate(run, board, alight)
        for day in days
        for pattern, board, alight in timetable.placed(day, leg.line, leg.board, leg.alight)
        for run in pattern.between(board, alight, earliest, latest)
    ]


@lru_cache(maxsize=1 << 14)
def hour_days(hour: int, zone: object) -> tuple[str, str]:
    """The local date of an hour since the epoch, and the day before: the service dates a journey
    tapped in within that hour may ride (the day before's while its runs still run)."""
    day = datetime.fromtimestamp(hour * 3600, UTC).astimezone(zone).date()  # type: ignore[arg-type]
    return day.isoformat(), (day - timedelta(days=1)).isoformat()
