"""Who the outbreak makes contacts of: the riders of a service near a case in its window, or near a
close contact in their exposure period (docs/rules.md), found as each service is written.

This is the simulator's own reading of the rules, on the ride records it has just written: the same
metro or train carriage (on an open train the bays next to each other, in a sleeper the same
compartment), on a flight the rows within the span or the crew who serve them. It only decides whom
a street office calls (offices.py): the engine decides the alerts, and a follow-up for someone it
does not alert is harmless (docs/rules.md: kept whoever it names). Times compare as the local stamps
the rides are written with: one offset, so text order is time order. Rides the feed garbles or
corrects are left out, as the engine reads them otherwise.

Services are written in the order they set out, so a close contact's ride on a service that set out
before the one they met the case on (a long train boarded on the way) is never looked at: a few of
their secondary contacts are not followed up.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from operator import itemgetter
from typing import NamedTuple

from tracer.rules import Level
from tracer.settings import RuleSettings
from tracer.simulate.clock import Clock
from tracer.simulate.outbreak import Traced

RULES = RuleSettings()
SPAN = RULES.train_bay_span
_PERSON = itemgetter("person_id")


class Source(NamedTuple):
    """A person whose rides expose others from ``start`` until ``end`` (None: open): a case, whose
    contacts are close, or a close contact of one, whose contacts are secondary."""

    case: Traced
    level: Level
    start: str
    end: str | None


class Exposure(NamedTuple):
    """``person`` met ``source`` from ``start`` to ``end`` (local stamps)."""

    person: str
    source: Source
    start: str
    end: str


class Contacts:
    def __init__(self, cases: list[Traced], clock: Clock) -> None:
        self._clock = clock
        self._sources = {
            case.person: Source(case, Level.CLOSE, clock.stamp(max(0, case.window)), self._stamp(case.isolated))
            for case in cases
        }
        self._persons = set(self._sources)  # the keys again: a set's isdisjoint is twice a dict view's speed

    def watch(self, person: str, case: Traced, start: str, isolated: int) -> bool:
        """A close contact of ``case`` exposes others from ``start`` until ``isolated`` (a second);
        the first source a person becomes stays (secondary contacts go no deeper). Whether new."""
        if person in self._sources:
            return False
        self._sources[person] = Source(case, Level.SECONDARY, start, self._stamp(isolated))
        self._persons.add(person)
        return True

    def exposed(self, rides: list[dict], among: AbstractSet[str] | None = None) -> list[Exposure]:
        """The exposures of one service's rides to the sources aboard (or to those of them ``among``:
        the close contacts just found on this service expose others on it too), in ride order."""
        sources, found = self._sources, []
        among = self._persons if among is None else among
        if among.isdisjoint(map(_PERSON, rides)):  # almost every service: one C loop over its rides
            return found
        for ride in [ride for ride in rides if ride["person_id"] in among]:
            source = sources[ride["person_id"]]
            start = max(ride["board_time"], source.start)
            end = ride["alight_time"] if source.end is None else min(ride["alight_time"], source.end)
            if start >= end:
                continue
            never = (ride["person_id"], source.case.person)
            for other in neighbours(ride, rides):
                first, last = max(start, other["board_time"]), min(end, other["alight_time"])
                if first < last and other["person_id"] not in never:
                    found.append(Exposure(other["person_id"], source, first, last))
        return found

    def _stamp(self, second: int | None) -> str | None:
        """An isolation time as a stamp; None (open) when there is none within the simulated span."""
        return None if second is None or second >= self._clock.end else self._clock.stamp(second)


def neighbours(source: dict, rides: list[dict]) -> list[dict]:
    """The rides of ``rides`` that sit close to ``source`` (time aside)."""
    if source["mode"] == "flight":
        return [other for other in rides if _flight(source, other)]
    carriage = source["carriage"]
    same = [other for other in rides if other["carriage"] == carriage]
    bay = source.get("compartment")
    if bay is None:  # the metro, seats of a sealed train, crew of the carriage
        return same
    if source.get("sealed", True) or source.get("berth") == "soft_sleeper":
        return [other for other in same if other.get("compartment") in (bay, None)]
    return [other for other in same if other.get("compartment") is None or abs(bay - other["compartment"]) <= SPAN]


def _flight(source: dict, other: dict) -> bool:
    row, other_row = _row(source), _row(other)
    if row is not None and other_row is not None:
        return abs(row - other_row) <= RULES.flight_row_span
    crew, passenger_row = (source, other_row) if row is None else (other, row)
    return passenger_row is None or _serves(crew.get("crew_rows"), passenger_row)


def _row(ride: dict) -> int | None:
    """A passenger's seat row (``32C`` -> 32); None for crew."""
    return None if ride.get("role") == "crew" else int(ride["seat"][:-1])


def _serves(rows: str | None, row: int) -> bool:
    """Crew without ``crew_rows`` serve the whole cabin."""
    if rows is None:
        return True
    first, last = rows.split("-")
    return int(first) <= row <= int(last)
