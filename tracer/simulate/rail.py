"""Trains out of Shanghai: sealed G/D trains (seats, or soft-sleeper compartments on D sleepers) and
open K trains (hard-sleeper bays), stopping at real stations so that riders board and alight on the
way and their rides overlap only partly.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

TRIPS_PER_PERSON_DAY = 0.5 / 24
RIDERS_PER_TRAIN = 600
MAX_LOAD = 0.8  # share of places sold, at most

Route = tuple[tuple[str, int], ...]  # (station, minutes after departure)


def _route(text: str) -> Route:
    return tuple((name, int(minutes)) for name, minutes in (stop.rsplit(" ", 1) for stop in text.split(", ")))


SH_NANJING = _route(
    "Shanghai Hongqiao 0, Kunshan South 19, Suzhou 31, Wuxi 47, Changzhou 65, Zhenjiang 88, Nanjing 112"
)
SH_HANGZHOU = _route(
    "Shanghai Hongqiao 0, Songjiang South 16, Jiashan South 29, Jiaxing South 38, Tongxiang 51, "
    "Haining West 60, Hangzhou East 70"
)
SH_BEIJING = _route(
    "Shanghai Hongqiao 0, Suzhou North 25, Nanjing South 72, Bengbu South 128, Xuzhou East 170, "
    "Jinan West 252, Tianjin South 318, Beijing South 348"
)
SH_WUHAN = _route("Shanghai Hongqiao 0, Nanjing South 75, Hefei South 140, Lu'an 172, Hankou 300")
SH_BEIJING_NIGHT = _route("Shanghai 0, Suzhou 35, Wuxi 60, Changzhou 85, Nanjing 130, Beijing 690")
SH_GUANGZHOU_NIGHT = _route(
    "Shanghai Hongqiao 0, Hangzhou East 65, Jinhua 150, Nanchang West 290, Changsha South 420, Guangzhou South 690"
)
SH_XIAN = _route(
    "Shanghai 0, Suzhou 55, Wuxi 85, Changzhou 115, Nanjing 190, Bengbu 330, Xuzhou 455, Shangqiu 560, "
    "Zhengzhou 720, Luoyang 830, Xi'an 1050"
)
SH_KUNMING = _route(
    "Shanghai South 0, Jiaxing 70, Hangzhou 150, Jinhua 300, Shangrao 430, Nanchang 570, Zhuzhou 890, "
    "Huaihua 1250, Guiyang 1620, Kunming 2130"
)


@dataclass(frozen=True, slots=True)
class Car:
    """A carriage layout: ``units`` seat rows, compartments or bays of ``per_unit`` places."""

    berth: str
    units: int
    per_unit: int
    letters: str = ""  # seat letters of a row ("ABCDF"); empty: places are numbered
    compartments: bool = False  # write the unit as ``compartment`` (sleeper compartment or open bay)

    @property
    def capacity(self) -> int:
        return self.units * self.per_unit

    def place(self, slot: int) -> tuple[str, int]:
        """(seat, unit) of place ``slot`` (0-based): ``07F`` in row 7, or berth ``23`` in compartment 6."""
        unit = slot // self.per_unit + 1
        if self.letters:
            return f"{unit:02d}{self.letters[slot % self.per_unit]}", unit
        return f"{slot + 1:02d}", unit


SEATS = Car("seat", 17, 5, letters="ABCDF")  # G/D second class: rows 01..17, A B C | D F
SOFT_SLEEPER = Car("soft_sleeper", 10, 4, compartments=True)  # D sleeper: ten four-berth compartments
K_SOFT_SLEEPER = Car("soft_sleeper", 9, 4, compartments=True)
HARD_SLEEPER = Car("hard_sleeper", 11, 6, compartments=True)  # open car: 11 bays of six berths
HARD_SEAT = Car("seat", 20, 6, compartments=True)  # open car: 20 bays of facing seats


@dataclass(frozen=True, slots=True)
class Kind:
    prefix: str
    cars: tuple[Car, ...]
    sealed: bool
    routes: tuple[Route, ...]
    departures: tuple[int, int]  # first and last departure minute
    share: float  # of the trains
    crew_every: int  # one attendant per this many carriages


G8 = Kind("G", (SEATS,) * 8, True, (SH_NANJING, SH_HANGZHOU, SH_BEIJING, SH_WUHAN), (390, 1260), 0.45, 4)
G16 = Kind("G", (SEATS,) * 16, True, (SH_BEIJING, SH_WUHAN, SH_NANJING), (420, 1200), 0.25, 4)
D8 = Kind("D", (SEATS,) * 8, True, (SH_HANGZHOU, SH_NANJING), (360, 1290), 0.10, 4)
D_SLEEPER = Kind("D", (SOFT_SLEEPER,) * 16, True, (SH_BEIJING_NIGHT, SH_GUANGZHOU_NIGHT), (1140, 1320), 0.10, 2)
K_OPEN = Kind(
    "K",
    (HARD_SEAT,) * 4 + (HARD_SLEEPER,) * 8 + (K_SOFT_SLEEPER,) * 2 + (HARD_SEAT,) * 2,
    False,
    (SH_XIAN, SH_KUNMING),
    (600, 1320),
    0.10,
    2,
)
KINDS = (G8, G16, D8, D_SLEEPER, K_OPEN)
_FIRST_NUMBER = {"G": 7001, "D": 301, "K": 101}


@dataclass(frozen=True, slots=True)
class Train:
    number: str
    kind: Kind
    route: Route
    departure: int  # minute of the day
    riders: float  # expected passengers a day


def trains(persons: int, rng: random.Random) -> tuple[Train, ...]:
    """At least one G, one D sleeper and one K train whatever the scale; the rest by share."""
    daily = persons * TRIPS_PER_PERSON_DAY
    count = max(3, math.ceil(daily / RIDERS_PER_TRAIN))
    kinds = [G8, D_SLEEPER, K_OPEN, *rng.choices(KINDS, weights=[kind.share for kind in KINDS], k=count - 3)]
    places = [sum(car.capacity for car in kind.cars) for kind in kinds]
    numbers = dict(_FIRST_NUMBER)
    schedule = []
    for kind, seats in zip(kinds, places, strict=True):
        number = f"{kind.prefix}{numbers[kind.prefix]}"
        numbers[kind.prefix] += 1
        departure = rng.randint(*kind.departures)
        schedule.append(Train(number, kind, rng.choice(kind.routes), departure, daily * seats / sum(places)))
    return tuple(schedule)
