"""Shanghai metro: lines with their real station and car counts, and a day's runs per line.

How many runs a line gets is scaled to its demand: with a real population (~24M people, ~10M metro
trips a day) it is the real timetable, a run every two or three minutes; a small population gets
fewer runs, so that a carriage still holds several riders and a small demo produces contacts.
Runs are placed where the riders are: short headways at the morning and evening peaks.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate

TRIPS_PER_PERSON_DAY = 10 / 24
RIDERS_PER_CARRIAGE = 8  # target load when runs are scaled down
TRIPS_PER_LINE = 400  # a small city opens one more line per this many daily trips
FIRST_RUN, LAST_RUN = 330, 1350  # departures 05:30 to 22:29, at most one a minute per line
MAX_HOPS = 14  # stations a rider travels, at most
CARRIAGE_CRUSH_LOAD = 310  # riders a carriage holds at most


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    stations: int
    carriages: int
    weight: float  # share of the city's ridership
    interval: int  # seconds from one station to the next


LINES = (  # heaviest first: a small city opens lines in this order
    Line("L2", 30, 8, 1.1, 150),
    Line("L1", 28, 8, 1.0, 150),
    Line("L9", 35, 6, 0.7, 160),
    Line("L8", 30, 7, 0.6, 150),
    Line("L10", 37, 6, 0.6, 140),
    Line("L11", 39, 6, 0.6, 180),
    Line("L7", 33, 6, 0.6, 150),
    Line("L3", 29, 6, 0.5, 160),
    Line("L4", 26, 6, 0.5, 140),
    Line("L12", 32, 6, 0.4, 140),
    Line("L13", 31, 6, 0.4, 140),
    Line("L6", 28, 6, 0.3, 130),
    Line("L14", 30, 8, 0.3, 140),
    Line("L15", 30, 6, 0.3, 150),
    Line("L5", 19, 6, 0.2, 170),
    Line("L16", 13, 6, 0.15, 240),
    Line("L17", 13, 6, 0.15, 220),
)


@dataclass(frozen=True, slots=True)
class Timetable:
    """One line's runs of a day, the same every day: (departure minute, direction 0 or 1).

    Direction 0 runs from the first station to the last, direction 1 back; a rider's board and
    alight are positions along the run, 0 at its departure station.
    """

    line: Line
    runs: tuple[tuple[int, int], ...]
    riders: float  # expected riders per run
    names: tuple[tuple[str, ...], tuple[str, ...]]  # station names by position, per direction

    def nearest(self, minute: int, direction: int) -> int:
        """Index of the run in ``direction`` departing closest to ``minute`` (a commuter's train)."""
        candidates = [index for index, run in enumerate(self.runs) if run[1] == direction]
        departures = [self.runs[index][0] for index in candidates]
        at = bisect_left(departures, minute)
        around = [i for i in (at - 1, at) if 0 <= i < len(candidates)]
        return candidates[min(around, key=lambda i: abs(departures[i] - minute))]


def timetables(persons: int) -> tuple[Timetable, ...]:
    daily = persons * TRIPS_PER_PERSON_DAY
    lines = LINES[: max(1, min(len(LINES), math.ceil(daily / TRIPS_PER_LINE)))]
    total_weight = sum(line.weight for line in lines)
    tables = []
    for line in lines:
        trips = daily * line.weight / total_weight
        runs = max(2, min(LAST_RUN - FIRST_RUN, round(trips / (line.carriages * RIDERS_PER_CARRIAGE))))
        names = tuple(f"{line.name}-{index + 1:02d}" for index in range(line.stations))
        tables.append(Timetable(line, _departures(runs), trips / runs, (names, names[::-1])))
    return tuple(tables)


def _demand(minute: int) -> float:
    """Riders wanting a train at this minute of the day: morning and evening peaks."""
    if 420 <= minute < 570:
        return 4.0
    if 1020 <= minute < 1170:
        return 3.5
    if minute < 420 or minute >= 1290:
        return 0.6
    return 1.2


def _departures(runs: int) -> tuple[tuple[int, int], ...]:
    """Runs at equal steps of cumulative demand, one a minute at most, directions alternating."""
    cumulative = list(accumulate(_demand(minute) for minute in range(FIRST_RUN, LAST_RUN)))
    taken: set[int] = set()
    for run in range(runs):
        slot = bisect_left(cumulative, (run + 0.5) * cumulative[-1] / runs)
        while slot in taken:
            slot = (slot + 1) % len(cumulative)
        taken.add(slot)
    return tuple((FIRST_RUN + slot, order % 2) for order, slot in enumerate(sorted(taken)))
