"""The engine against the oracle on the dense streams of tests/dense.py: how two secondary-contact
bugs were found. ``TRACER_DENSE_SEEDS`` sets how many streams (default 1500, a few seconds)."""

from __future__ import annotations

import os

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
        driver = Driver(MemoryStore())
        driver.feed(*events)
        if driver.live() != expected_alerts([orjson.loads(orjson.dumps(event)) for event in events]):
            wrong.append(seed)
    assert not wrong, f"engine and oracle disagree on seeds {wrong[:10]} (of {len(wrong)})"
