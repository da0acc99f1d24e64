"""The outbreak: cases whose onset, isolation, report and travel fit together.

A case is a resident who commutes by metro every day (and sometimes takes a train or a plane) until
isolated, so the rides of the days before onset, those the rules trace, exist. Reports follow
isolation by hours; some are corrected later (onset or isolation moved), suspected cases are often
excluded, some reports are delivered twice, and one traced ride of some cases reaches the feed only
after the report (late data), which must still be traced.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from tracer.simulate.city import Population
from tracer.simulate.clock import DAY, Clock
from tracer.simulate.schedule import FLIGHT, METRO, TRAIN, Schedule

HOUR = 3600
P_OPEN = 0.05  # reported but not isolated: the window stays open
P_EXCLUDED = 0.6  # of suspected cases
P_CORRECTED = 0.12
P_DUPLICATE = 0.08
P_LATE_RIDE = 0.3
P_SKIP_COMMUTE = 0.2  # on days before the traced window
P_TRAIN, P_FLIGHT = 0.12, 0.08  # a day with a train, with a flight

ServiceKey = tuple[int, int, int, int]  # (day, mode, index, run)


class Rider(NamedTuple):
    """A case aboard a service: resident index, board and alight stop, minute due when late."""

    person: int
    board: int
    alight: int
    late: int | None = None


class Traced(NamedTuple):
    """A case as its last event leaves it, in seconds, for the street offices (offices.py): its
    window start and isolation (None: open) and its report; an excluded case as it was before, and
    when it was excluded."""

    person: str
    window: int
    isolated: int | None
    reported: int
    excluded: int | None


class Timeline(NamedTuple):
    onset: int  # day
    isolated: int | None  # second; None: not isolated
    reported: int  # second


@dataclass
class Outbreak:
    reports: list[tuple[int, dict]] = field(default_factory=list)  # (minute due, case event)
    riders: defaultdict[ServiceKey, list[Rider]] = field(default_factory=lambda: defaultdict(list))
    counts: Counter[str] = field(default_factory=Counter)  # statuses and disorder
    traced: list[Traced] = field(default_factory=list)


def plan(
    cases: int,
    days: int,
    lookback: int,
    population: Population,
    schedule: Schedule,
    clock: Clock,
    rng: random.Random,
) -> Outbreak:
    outbreak = Outbreak()
    end = (days + 1) * DAY  # reports and updates fall before the end of the day after the last
    for number, person in enumerate(rng.sample(range(population.size), cases), start=1):
        timeline = _timeline(days, lookback, end, rng)
        status = rng.choices(("confirmed", "asymptomatic", "suspected"), (0.72, 0.13, 0.15))[0]
        record = {
            "type": "case",
            "case_id": f"C{number:05d}",
            "person_id": population.resident(person),
            "status": status,
            "onset": clock.date(timeline.onset),
            "isolated_at": clock.stamp(timeline.isolated) if timeline.isolated is not None else None,
            "reported_at": clock.stamp(timeline.reported),
        }
        outbreak.counts[status] += 1
        outbreak.reports.append((timeline.reported // 60, record))
        window = (timeline.onset - lookback) * DAY
        traced = Traced(record["person_id"], window, timeline.isolated, timeline.reported, None)
        outbreak.traced.append(_updates(outbreak, record, timeline, traced, end, clock, rng))
        rides = _travel(person, days, window, timeline.isolated, schedule, rng)
        _board(outbreak, rides, window, timeline.reported, end, rng)
    return outbreak


def _timeline(days: int, lookback: int, end: int, rng: random.Random) -> Timeline:
    """Onset within the simulated days; isolation 7 h to 2.5 days after onset's midnight (by the end
    of the last day); the report 1 to 20 hours after isolation."""
    onset = rng.randint(min(lookback, days - 1), days - 1)
    if rng.random() < P_OPEN:
        isolated = None
        reported = onset * DAY + rng.randint(DAY // 3, 2 * DAY)
    else:
        earliest = onset * DAY + DAY * 3 // 10
        isolated = rng.randint(earliest, min(earliest + DAY * 11 // 5, days * DAY - HOUR))
        reported = isolated + rng.randint(HOUR, 20 * HOUR)
    return Timeline(onset, isolated, min(reported, end - 2 * HOUR))


def _updates(
    outbreak: Outbreak, record: dict, timeline: Timeline, traced: Traced, end: int, clock: Clock, rng: random.Random
) -> Traced:
    """Later events with the same case_id: a redelivery, then an exclusion or a correction.
    Returns ``traced`` as the last of them leaves it (an exclusion: as before, and when)."""
    if rng.random() < P_DUPLICATE:
        outbreak.reports.append((timeline.reported // 60 + rng.randint(0, 30), record))
        outbreak.counts["duplicate"] += 1
    if record["status"] == "suspected" and rng.random() < P_EXCLUDED:
        later = min(timeline.reported + rng.randint(6 * HOUR, 36 * HOUR), end - 60)
        update = {**record, "status": "excluded", "reported_at": clock.stamp(later)}
        outbreak.reports.append((later // 60, update))
        outbreak.counts["excluded"] += 1
        return traced._replace(excluded=later)
    if rng.random() < P_CORRECTED:
        later = min(timeline.reported + rng.randint(HOUR, 18 * HOUR), end - 60)
        update = {**record, "reported_at": clock.stamp(later)}
        if timeline.isolated is None or rng.random() < 0.5:
            shift = rng.choice((-1, 1))
            update["onset"] = clock.date(timeline.onset + shift)
            traced = traced._replace(window=traced.window + shift * DAY)
        else:
            isolated = timeline.isolated + rng.choice((-1, 1)) * rng.randint(HOUR, 12 * HOUR)
            update["isolated_at"] = clock.stamp(isolated)
            traced = traced._replace(isolated=isolated)
        outbreak.reports.append((later // 60, update))
        outbreak.counts["corrected"] += 1
        return traced._replace(reported=later)
    return traced


def _travel(
    person: int, days: int, window: int, isolated: int | None, schedule: Schedule, rng: random.Random
) -> list[tuple[int, ServiceKey, Rider]]:
    """(departure second, service, rider) of a case's rides: a daily metro commute on one line, a
    train or a flight now and then; none once isolated."""
    line = rng.randrange(len(schedule.metro))
    table = schedule.metro[line]
    stations, interval = table.line.stations, table.line.interval
    home = rng.randrange(stations - 1)
    work = home + 1 + rng.randrange(min(12, stations - 1 - home))
    legs = ((home, work), (stations - 1 - work, stations - 1 - home))  # the stretch on direction 0, 1
    outward = rng.randrange(2)  # direction of the morning run: which end of the stretch is home
    rides = []
    for day in range(days):
        if (day + 1) * DAY <= window and rng.random() < P_SKIP_COMMUTE:
            continue
        for leg, target in enumerate((rng.randint(420, 540), rng.randint(1050, 1170))):
            direction = outward ^ leg
            run = table.nearest(target, direction)
            board, alight = legs[direction]
            start = day * DAY + table.runs[run][0] * 60 + board * interval
            rides.append((start, (day, METRO, line, run), Rider(person, board, alight)))
        if rng.random() < P_TRAIN:
            index = rng.randrange(len(schedule.trains))
            train = schedule.trains[index]
            stop = rng.randrange(1, len(train.route))
            rides.append((day * DAY + train.departure * 60, (day, TRAIN, index, 0), Rider(person, 0, stop)))
        if rng.random() < P_FLIGHT:
            index = rng.randrange(len(schedule.flights))
            start = day * DAY + schedule.flights[index].departure * 60
            rides.append((start, (day, FLIGHT, index, 0), Rider(person, 0, 1)))
    return [ride for ride in rides if isolated is None or ride[0] < isolated]


def _board(
    outbreak: Outbreak,
    rides: list[tuple[int, ServiceKey, Rider]],
    window: int,
    reported: int,
    end: int,
    rng: random.Random,
) -> None:
    """Put the case aboard its services; one ride of the traced window may arrive after the report."""
    traced = [index for index, ride in enumerate(rides) if window <= ride[0] < reported]
    late = rng.choice(traced) if traced and rng.random() < P_LATE_RIDE else None
    for index, (_, key, rider) in enumerate(rides):
        if index == late:
            rider = rider._replace(late=min(reported // 60 + rng.randint(30, 600), end // 60 - 1))
            outbreak.counts["late_ride"] += 1
        outbreak.riders[key].append(rider)
