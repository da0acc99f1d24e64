"""The engine against the oracle on the dense streams of tests/dense.py: how two secondary-contact
bugs were found. ``TRACER_DENSE_SEEDS`` sets how many streams (default 1500, a few seconds).

Each stream is applied one event at a time and again in batches of a size drawn from 2 to the
whole stream (``Engine.apply``): batching must not change a single live alert."""

from __future__ import annotations

import os
import random

import orjson

from graph.store import MemoryStore
from tests.conftest import Driver
from tests.dense import stream
from tracer.oracle import expected_alerts

SEEDS = int(os.environ.get("TRACER_DENSE_SEEDS", "1500"))


def test_dense_streams_match_the_oracle() -> None:
    wrong = []
    for seed in range(SEEDS):
        events = stream(seed)
        expected = expected_alerts([orjson.loads(orjson.dumps(event)) for event in events])
        for batch in (1, random.Random(seed).randint(2, max(2, len(events)))):
            driver = Driver(MemoryStore(), batch=batch)
            driver.feed(*events)
            if driver.live() != expected:
                wrong.append((seed, batch))
    assert not wrong, f"engine and oracle disagree on (seed, batch size) {wrong[:10]} (of {len(wrong)})"
