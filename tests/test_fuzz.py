"""Hostile input: whatever a line holds, it is traced or dead-lettered with a reason, never a crash.

Hypothesis drives random bytes, broken UTF-8, mutated real events (odd types, huge numbers,
absurd times, odd seats) and deep nesting through the parser and the engine together.
TRACER_FUZZ_EXAMPLES raises the number of examples (default 300 per test).
"""

from __future__ import annotations

import os
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.store import MemoryStore
from tests.builders import case, trip
from tracer.engine import Engine
from tracer.errors import InvalidEvent
from tracer.events import parse_line
from tracer.settings import RuleSettings

EXAMPLES = int(os.environ.get("TRACER_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_RIDE = 72 * 3_600_000_000

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=30), st.sampled_from(["32C", "３２C", "", " ", "0", "-1", "9999-12-31T23:59:59+08:00",
                                           "2020-01-20T08:00:00", "2020-01-20T08:00:00+25:00", "1e400", "NaN",
                                           "carriage\x1f5", "ا", "🚆", "2020-13-45"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
TEMPLATES = [
    trip("P1", seat="32C", trip_id="t1"),
    trip("P2", mode="train", service="G7", carriage="5", berth="soft_sleeper", compartment="3", sealed=False),
    trip("P3", role="crew", crew_rows="1-20"),
    case("C1", "P1"),
    {"type": "person", "person_id": "P2", "subdistrict": "310101002"},
    {"type": "quarantine", "person_id": "P2", "at": "2020-01-21T08:00:00+08:00"},
    {"type": "exposure", "exposure_id": "X1", "mode": "train", "service": "G7", "date": "2020-01-20",
     "carriages": ["5"], "seats": ["3A"]},
]


def feed(engine: Engine, raw: bytes) -> None:
    """The runner's contract: InvalidEvent (a dead letter) or success; nothing else may escape."""
    try:
        engine.process(parse_line(raw, MAX_RIDE))
    except InvalidEvent as exc:
        assert exc.reason


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    event = dict(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        key = draw(st.sampled_from([*event.keys(), "type", "mode", "extra"]))
        if draw(st.booleans()):
            event[key] = draw(ODD_VALUES)
        else:
            event.pop(key, None)
    return event


@FUZZ
@given(st.lists(mutated_events(), min_size=1, max_size=12))
def test_mutated_events_never_crash_the_engine(events):
    engine = Engine(MemoryStore(), RuleSettings())
    for template in TEMPLATES:  # something real to collide with
        feed(engine, orjson.dumps(template))
    for event in events:
        try:
            raw = orjson.dumps(event)
        except TypeError:  # floats such as NaN cannot be JSON: write them as a feed would
            raw = repr(event).encode()
        feed(engine, raw)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(raw):
    feed(Engine(MemoryStore(), RuleSettings()), raw)


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text):
    feed(Engine(MemoryStore(), RuleSettings()), text.encode("utf-8", "surrogatepass"))


def test_pathological_shapes():
    engine = Engine(MemoryStore(), RuleSettings())
    for raw in [
        b"[" * 100_000 + b"]" * 100_000,  # deep nesting
        b'{"type": "trip"' + b', "a": 1' * 10_000 + b"}",
        b'{"type": "trip", "type": "case"}',  # duplicate keys: the last wins
        b'{"type":"exposure","exposure_id":"X0","mode":"train","service":"G9","date":"20901208--"}',  # atheris
        b'{"type": "trip", "board_time": NaN}',
        b'{"type": "trip", "carriage": 123456789012345678901234567890}',
        b"\xff\xfe\x00\x00",
        b'{"type": "case", "case_id": "C", "person_id": "P", "status": "confirmed", "onset": "2020-01-01", '
        b'"reported_at": "9999-12-31T23:59:59+14:00"}',
    ]:
        feed(engine, raw)
