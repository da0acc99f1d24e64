"""Small, dense event streams for differential tests against the oracle: few people, one run per
mode, many rides on it, and every kind of revision: trip corrections that move a ride to another
carriage, person or day; cases re-reported with another person, status, onset or isolation;
published exposures replaced; quarantines before and after exposures; registry moves. Generated
cities rarely stack these on the same people; here almost every stream does.
"""

from __future__ import annotations

import random
from typing import Any

from tests.builders import at, case, trip

PERSONS = [f"P{i}" for i in range(8)]
DAYS = ("2020-01-20", "2020-01-21")


def _ride(rng: random.Random, trip_id: str, keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """A random ride; ``keep`` (an earlier version) pins its mode and date, so its service day."""
    mode = keep["mode"] if keep else rng.choice(["flight", "train", "metro"])
    board = rng.randint(6, 14)
    extra: dict[str, Any] = {"trip_id": trip_id}
    carriage = rng.choice([None, "1", "2"])
    if carriage is not None and mode != "flight":
        extra["carriage"] = carriage
    if mode == "flight":
        extra["seat"] = rng.choice(["1A", "3C", "4F", "9F", None])
        if rng.random() < 0.3:
            extra["crew_rows"] = rng.choice(["1-3", "4-9"])
    if mode == "train":
        extra["berth"] = rng.choice(["seat", "hard_sleeper", "soft_sleeper"])
        extra["compartment"] = rng.choice([None, "1", "2", "3"])
        extra["sealed"] = rng.choice([True, False])
    if rng.random() < 0.2:
        extra["role"] = "crew"
    return trip(
        rng.choice(PERSONS),
        mode=mode,
        service="S1",
        day=keep["date"] if keep else rng.choice(DAYS),
        board=f"{board:02d}:00",
        alight=f"{board + rng.randint(1, 4):02d}:00",
        **extra,
    )


def _exposure(rng: random.Random, exposure_id: str) -> dict[str, Any]:
    """A published case ride: any of its bounds, carriages and seats may be unknown."""
    day = rng.choice(DAYS)
    event: dict[str, Any] = {"type": "exposure", "exposure_id": exposure_id, "service": "S1", "date": day}
    event["mode"] = rng.choice(["flight", "train", "metro"])
    if rng.random() < 0.7:
        start = rng.randint(6, 14)
        event["start"], event["end"] = at(f"{start:02d}:00", day), at(f"{start + rng.randint(1, 4):02d}:00", day)
    if rng.random() < 0.6:
        event["carriages"] = rng.sample(["1", "2", "3"], rng.randint(1, 2))
    if rng.random() < 0.4:
        event["seats"] = rng.sample(["1A", "3C", "9F"], rng.randint(1, 2))
    return event


def stream(seed: int, keep_service_day: bool = False) -> list[dict[str, Any]]:
    """Stream ``seed``. ``keep_service_day``: corrected trips keep their service day (Kafka mode
    cannot move a ride to another day's partition; docs/kafka.md, known limits)."""
    rng = random.Random(seed)
    versions: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    trip_ids: list[str] = []
    for _ in range(rng.randint(10, 60)):
        draw = rng.random()
        if draw < 0.6 or not trip_ids:
            if trip_ids and rng.random() < 0.4:
                trip_id = rng.choice(trip_ids)  # a correction: anything about the ride may change
            else:
                trip_id = f"t{len(trip_ids)}"
                trip_ids.append(trip_id)
            ride = _ride(rng, trip_id, versions.get(trip_id) if keep_service_day else None)
            versions[trip_id] = ride
            events.append(ride)
        elif draw < 0.8:
            events.append(
                case(
                    rng.choice(["C1", "C2"]),
                    rng.choice(PERSONS[:3]),
                    status=rng.choice(["confirmed", "confirmed", "asymptomatic", "excluded"]),
                    onset=rng.choice(["2020-01-21", "2020-01-22"]),
                    isolated_at=rng.choice([None, at("09:00", DAYS[1]), at("12:00", DAYS[0])]),
                    reported_at=rng.choice([at("08:00", DAYS[0]), at("12:00", DAYS[1]), at("12:00", "2020-01-22")]),
                )
            )
        elif draw < 0.85:
            exposure_id = rng.choice(["X1", "X2"])
            exposure = _exposure(rng, exposure_id)
            events.append(exposure)
        elif draw < 0.93:
            moment = rng.choice([at("07:00", DAYS[0]), at("11:00", DAYS[0]), at("10:00", DAYS[1])])
            events.append({"type": "quarantine", "person_id": rng.choice(PERSONS), "at": moment})
        else:
            events.append(
                {
                    "type": "person",
                    "person_id": rng.choice(PERSONS),
                    "subdistrict": rng.choice(["310101002", "310104003"]),
                }
            )
    return events
