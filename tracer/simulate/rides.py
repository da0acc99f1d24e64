"""The riders of one service, as trip events: the hot loop of the simulator.

A service gets a random number of riders around its expected load, plus the cases the outbreak put
aboard. Riders are drawn at random from the residents (and a few visitors); each ride is one dict
and one orjson call, with times from the clock's precomputed strings. The street offices see each
service's rides once it is written, to follow up the contacts made aboard.
"""

from __future__ import annotations

import math
import random
from itertools import count

from tracer.simulate import air, metro, rail
from tracer.simulate.city import Population
from tracer.simulate.clock import DAY, Clock, hhmm
from tracer.simulate.offices import Offices
from tracer.simulate.outbreak import Outbreak
from tracer.simulate.schedule import FLIGHT, METRO, TRAIN, Schedule
from tracer.simulate.stream import EventStream

NO_TRIP_ID = 0.1  # metro gate feeds without trip ids: the engine derives one from the content
FROM_ORIGIN = 0.7  # train passengers boarding at the first station
SEAT_LETTERS = "ABCDEF"


class Rides:
    def __init__(
        self,
        stream: EventStream,
        clock: Clock,
        population: Population,
        schedule: Schedule,
        outbreak: Outbreak,
        offices: Offices,
        rng: random.Random,
    ) -> None:
        self._stream, self._clock, self._population = stream, clock, population
        self._schedule, self._aboard, self._offices = schedule, outbreak.riders, offices
        self._rng, self._rnd = rng, rng.random
        self._ids = count(1)
        self._written: list[dict] = []  # the rides of the service being written, as the engine will read them

    def service(self, day: int, mode: int, index: int, run: int) -> None:
        self._written = []
        if mode == METRO:
            self._metro_run(day, index, run)
        elif mode == TRAIN:
            self._train(day, index)
        else:
            self._flight(day, index)
        self._offices.service(self._written)

    def _riders(self, mean: float, limit: int) -> int:
        """Around ``mean`` (0.6 to 1.4 times, rounded at random), at most ``limit``."""
        return max(0, min(limit, int(mean * (0.6 + 0.8 * self._rnd()) + self._rnd())))

    def _trip_id(self) -> str:
        return f"T{next(self._ids):09d}"

    def _metro_run(self, day: int, index: int, run: int) -> None:
        table = self._schedule.metro[index]
        line = table.line
        departure, direction = table.runs[run]
        names = table.names[direction]
        service, date = f"{line.name}-{self._clock.compact[day]}-{hhmm(departure)}", self._clock.dates[day]
        start, interval = day * DAY + departure * 60, line.interval
        cars, last = line.carriages, line.stations - 1
        rnd, stamp, trip, trip_id = self._rnd, self._clock.stamp, self._stream.trip, self._trip_id
        keep = self._written.append

        def ride(person: str, board: int, alight: int, late: int | None) -> None:
            boards = start + board * interval
            record = {
                "type": "trip",
                "trip_id": trip_id(),
                "person_id": person,
                "mode": "metro",
                "service": service,
                "date": date,
                "board_time": stamp(boards),
                "alight_time": stamp(start + alight * interval),
                "carriage": 1 + int(rnd() * cars),
                "board_station": names[board],
                "alight_station": names[alight],
            }
            if rnd() < NO_TRIP_ID:
                del record["trip_id"]
            if trip(boards // 60 if late is None else late, record, late=late is not None):  # _emit, inlined
                keep(record)

        rider = self._population.rider
        for _ in range(self._riders(table.riders, cars * metro.CARRIAGE_CRUSH_LOAD)):
            board = int(rnd() * last)
            ride(rider(rnd()), board, board + 1 + int(rnd() * min(metro.MAX_HOPS, last - board)), None)
        for case in self._aboard.get((day, METRO, index, run), ()):
            ride(self._population.resident(case.person), case.board, case.alight, case.late)

    def _train(self, day: int, index: int) -> None:
        train = self._schedule.trains[index]
        kind, route, rnd, resident = train.kind, train.route, self._rnd, self._population.resident
        cases = self._aboard.get((day, TRAIN, index, 0), ())
        capacity = sum(car.capacity for car in kind.cars)
        riders = [(resident(case.person), case.board, case.alight, case.late) for case in cases]
        last = len(route) - 1
        for _ in range(self._riders(train.riders, int(capacity * rail.MAX_LOAD) - len(cases))):
            board = 0 if rnd() < FROM_ORIGIN else 1 + int(rnd() * (last - 1))
            riders.append((self._population.rider(rnd()), board, board + 1 + int(rnd() * (last - board)), None))
        start, date = day * DAY + train.departure * 60, self._clock.dates[day]
        for (person, board, alight, late), (carriage, car, slot) in zip(
            riders, self._places(kind.cars, len(riders)), strict=True
        ):
            seat, unit = car.place(slot)
            record = self._train_trip(train, date, start, person, board, alight, carriage)
            record["seat"] = seat
            if car.berth != "seat":
                record["berth"] = car.berth
            if car.compartments:
                record["compartment"] = unit
            self._emit(record, start + route[board][1] * 60, late)
        crew = math.ceil(len(kind.cars) / kind.crew_every)
        for carriage in sorted(self._rng.sample(range(1, len(kind.cars) + 1), crew)):
            person = self._population.resident(int(rnd() * self._population.size))
            record = self._train_trip(train, date, start, person, 0, last, carriage)
            record["role"] = "crew"
            self._emit(record, start, None)

    def _places(self, cars: tuple[rail.Car, ...], riders: int) -> list[tuple[int, rail.Car, int]]:
        """(carriage number, layout, place) for each rider, all different. Ticketing fills a few
        carriages before opening others, so even a nearly empty train seats its riders together."""
        opened: list[int] = []
        for number in self._rng.sample(range(1, len(cars) + 1), len(cars)):
            size = sum(cars[n - 1].capacity for n in opened)
            if len(opened) * metro.RIDERS_PER_CARRIAGE >= riders and size * rail.MAX_LOAD >= riders:
                break
            opened.append(number)
        slots = [(number, slot) for number in sorted(opened) for slot in range(cars[number - 1].capacity)]
        return [(number, cars[number - 1], slot) for number, slot in self._rng.sample(slots, riders)]

    def _train_trip(
        self, train: rail.Train, date: str, start: int, person: str, board: int, alight: int, carriage: int
    ) -> dict:
        stamp, route = self._clock.stamp, train.route
        record = {
            "type": "trip",
            "trip_id": self._trip_id(),
            "person_id": person,
            "mode": "train",
            "service": train.number,
            "date": date,
            "board_time": stamp(start + route[board][1] * 60),
            "alight_time": stamp(start + route[alight][1] * 60),
            "carriage": carriage,
            "board_station": route[board][0],
            "alight_station": route[alight][0],
        }
        if not train.kind.sealed:
            record["sealed"] = False
        return record

    def _flight(self, day: int, index: int) -> None:
        flight = self._schedule.flights[index]
        rnd = self._rnd
        cases = self._aboard.get((day, FLIGHT, index, 0), ())
        places = flight.rows * len(SEAT_LETTERS)
        riders = self._riders(flight.riders, int(places * air.MAX_LOAD) - len(cases))
        departure = day * DAY + flight.departure * 60
        arrival = departure + flight.minutes * 60
        date = self._clock.dates[day]
        persons = [self._population.resident(case.person) for case in cases]
        persons += [self._population.rider(rnd()) for _ in range(riders)]
        lates = [case.late for case in cases] + [None] * riders
        for person, slot, late in zip(persons, self._rng.sample(range(places), len(persons)), lates, strict=True):
            boards = departure - 1800 + int(rnd() * 1200)  # boarding closes ten minutes before departure
            record = self._flight_trip(flight, date, person, boards, arrival + int(rnd() * 600))
            record["seat"] = f"{slot // len(SEAT_LETTERS) + 1}{SEAT_LETTERS[slot % len(SEAT_LETTERS)]}"
            self._emit(record, boards, late)
        half = flight.rows // 2
        for rows in (None, f"1-{half}", f"{half + 1}-{flight.rows}"):  # the purser serves the whole cabin
            person = self._population.resident(int(rnd() * self._population.size))
            boards = departure - air.CREW_BOARDS * 60
            record = self._flight_trip(flight, date, person, boards, arrival + 900)
            record["role"] = "crew"
            if rows is not None:
                record["crew_rows"] = rows
            self._emit(record, boards, None)

    def _flight_trip(self, flight: air.Flight, date: str, person: str, boards: int, alights: int) -> dict:
        return {
            "type": "trip",
            "trip_id": self._trip_id(),
            "person_id": person,
            "mode": "flight",
            "service": flight.number,
            "date": date,
            "board_time": self._clock.stamp(boards),
            "alight_time": self._clock.stamp(alights),
            "board_station": flight.airport,
            "alight_station": flight.destination,
        }

    def _emit(self, record: dict, boards: int, late: int | None) -> None:
        if self._stream.trip(boards // 60 if late is None else late, record, late=late is not None):
            self._written.append(record)
