"""The daily timetable of every mode, the same each simulated day."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tracer.simulate import air, metro, rail

METRO, TRAIN, FLIGHT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Schedule:
    metro: tuple[metro.Timetable, ...]
    trains: tuple[rail.Train, ...]
    flights: tuple[air.Flight, ...]

    def services(self) -> list[tuple[int, int, int, int]]:
        """(first boarding minute, mode, index, run) of each service of a day, in that order.

        The stream writes events by minute, so services are generated in the order their riders
        start boarding: everything boarding before a service's first minute is final by then.
        """
        runs = [
            (departure, METRO, line, run)
            for line, table in enumerate(self.metro)
            for run, (departure, _) in enumerate(table.runs)
        ]
        trains = [(train.departure, TRAIN, index, 0) for index, train in enumerate(self.trains)]
        flights = [(flight.departure - air.CREW_BOARDS, FLIGHT, index, 0) for index, flight in enumerate(self.flights)]
        return sorted(runs + trains + flights)


def build_schedule(persons: int, rng: random.Random) -> Schedule:
    return Schedule(metro.timetables(persons), rail.trains(persons, rng), air.flights(persons, rng))
