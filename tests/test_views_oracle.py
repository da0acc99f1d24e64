"""The engine's views against the oracle's (tracer/oracle_views.py) on dense streams with
follow-ups, discharged cases and event time that passes the observation periods: health status,
every office's call list (with and without general contacts), the KPIs, and the status stream
folded, one event at a time and in batches. ``TRACER_DENSE_SEEDS`` sets how many (default 400)."""

from __future__ import annotations

import os
import random
from dataclasses import replace
from typing import Any

import orjson

from graph.keys import OFFICES, group
from graph.store import MemoryStore
from tests.builders import at, trip
from tests.conftest import Driver
from tests.dense import DAYS, PERSONS, stream
from tracer.oracle_views import expected_views
from tracer.settings import RuleSettings, Settings
from tracer.views import call_list, status, tracing_kpis

SEEDS = int(os.environ.get("TRACER_DENSE_SEEDS", "1500")) // 4 or 1
OUTCOMES = ("reached", "quarantined", "unreachable", "released")
LATER = ("2020-01-22", "2020-01-25", "2020-02-03", "2020-02-04", "2020-02-06")  # past the 14 days too


def views_stream(seed: int) -> list[dict[str, Any]]:
    """A dense stream (tests/dense.py) with follow-ups, discharges and a bystander's rides that move
    event time past due times and observation ends, all at random places."""
    rng = random.Random(seed)
    events = [event | {"status": "discharged"} if event["type"] == "case" and rng.random() < 0.2 else event
              for event in stream(seed)]
    for _ in range(rng.randint(0, 8)):
        day = rng.choice(DAYS + LATER)
        moment = at(f"{rng.randint(6, 22):02d}:{rng.choice(['00', '30'])}", day)
        extra = {"by": rng.choice(["310101002", "staff-7"])} if rng.random() < 0.5 else {}
        if rng.random() < 0.3:
            extra["note"] = rng.choice(["at home", "  left a message ", ""])
        followup = {"type": "followup", "person_id": rng.choice(PERSONS), "outcome": rng.choice(OUTCOMES),
                    "at": moment, **extra}
        events.insert(rng.randint(0, len(events)), followup)
        if rng.random() < 0.5:
            events.insert(rng.randint(0, len(events)), followup)  # delivered twice
    for index in range(rng.randint(0, 4)):
        day = rng.choice(LATER)
        clock = trip("BYSTANDER", mode="metro", service=f"L9-{index}", day=day, board=f"{rng.randint(6, 20):02d}:00",
                     alight="23:00", trip_id=f"clock{index}")
        events.insert(rng.randint(len(events) // 2, len(events)), clock)
    return events


def engine_views(events: list[dict[str, Any]], settings: Settings, batch: int) -> dict[str, Any]:
    driver = Driver(MemoryStore(), settings=settings, batch=batch)
    driver.feed(*events)
    store, now = driver.store, driver.engine.event_time
    store.commit()  # the office index is read by one scan over every office: of what is committed
    persons = sorted({*PERSONS, "BYSTANDER"})
    statuses = {person: status(store, settings, person, now) for person in persons}
    found = {person: {k: v for k, v in record.items() if k != "at"}
             for person, record in statuses.items() if record["color"] != "green"}
    last = {record["person_id"]: record for record in driver.statuses}
    folded = {person: {k: v for k, v in record.items() if k != "at"}
              for person, record in last.items() if record["color"] != "green"}
    offices = {key.split("\x1f")[0] for key, _ in store.scan(group(OFFICES))}
    lists = {office: call_list(store, settings, office, now) for office in offices}
    general = {office: call_list(store, settings, office, now, include_general=True) for office in offices}
    return {"now": now, "status": found, "folded": folded, "calllists": {k: v for k, v in lists.items() if v},
            "calllists_general": {k: v for k, v in general.items() if v}, "kpis": tracing_kpis(store, settings, now)}


def test_dense_streams_views_match_the_oracle() -> None:
    wrong = []
    for seed in range(SEEDS):
        rng = random.Random(-seed)
        settings = Settings(rules=replace(RuleSettings(), event_time_quorum=rng.choice([1, 2, 5, 100])))
        events = views_stream(seed)
        expected = expected_views([orjson.loads(orjson.dumps(event)) for event in events], settings)
        for batch in (1, rng.randint(2, max(2, len(events)))):
            found = engine_views(events, settings, batch)
            checks = {
                "now": found["now"] == expected.now,
                "status": found["status"] == expected.status,
                "folded status stream": found["folded"] == expected.status,
                "call lists": found["calllists"] == expected.calllists,
                "call lists with general": found["calllists_general"] == expected.calllists_general,
                "kpis": found["kpis"] == expected.kpis,
            }
            wrong += [(seed, batch, name) for name, ok in checks.items() if not ok]
    assert not wrong, f"engine and oracle views disagree on (seed, batch, view) {wrong[:10]} (of {len(wrong)})"
