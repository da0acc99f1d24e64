"""Domestic flights out of Pudong (PVG) and Hongqiao (SHA): 30 to 40 rows of six seats A-F."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

TRIPS_PER_PERSON_DAY = 0.2 / 24
PASSENGERS_PER_FLIGHT = 150
MAX_LOAD = 0.9
AIRPORTS = ("PVG", "SHA")
AIRPORT_WEIGHTS = (0.65, 0.35)
AIRLINES = ("MU", "FM", "HO", "CA", "CZ", "9C")
DESTINATIONS = (  # (airport, minutes of flight)
    ("PEK", 135), ("PKX", 140), ("CAN", 150), ("SZX", 150), ("CTU", 200), ("CKG", 165), ("XIY", 150),
    ("KMG", 225), ("WUH", 105), ("HAK", 185), ("XMN", 95), ("TAO", 95), ("DLC", 115), ("HRB", 180),
    ("SYX", 200), ("TSN", 125),
)  # fmt: skip
CREW_BOARDS = 45  # minutes before departure


@dataclass(frozen=True, slots=True)
class Flight:
    number: str
    airport: str
    destination: str
    departure: int  # minute of the day
    minutes: int  # flight time
    rows: int
    riders: float  # expected passengers a day


def flights(persons: int, rng: random.Random) -> tuple[Flight, ...]:
    """At least one flight from each airport whatever the scale."""
    daily = persons * TRIPS_PER_PERSON_DAY
    count = max(len(AIRPORTS), math.ceil(daily / PASSENGERS_PER_FLIGHT))
    schedule = []
    for index in range(count):
        airport = AIRPORTS[index] if index < len(AIRPORTS) else rng.choices(AIRPORTS, AIRPORT_WEIGHTS)[0]
        destination, minutes = rng.choice(DESTINATIONS)
        number = f"{AIRLINES[index % len(AIRLINES)]}{5101 + index}"
        departure, rows = rng.randint(390, 1320), rng.randint(30, 40)
        schedule.append(Flight(number, airport, destination, departure, minutes, rows, daily / count))
    return tuple(schedule)
