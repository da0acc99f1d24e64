"""The short public API of ``tracer``: its names, its docstring's example, and that any module imports first."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import orjson

import tracer
from graph.store import MemoryStore
from tests.builders import case, trip


def test_every_public_name_is_the_one_of_its_home_module():
    homes = ("tracer.alerts", "tracer.engine", "tracer.errors", "tracer.events", "tracer.settings")
    for name in tracer.__all__:
        found = [home for home in homes if getattr(import_module(home), name, None) is getattr(tracer, name)]
        assert found, f"{name} is not one of the public modules' names"


def test_the_docstring_example_traces_and_dead_letters():
    from tracer import Engine, InvalidEvent, load_settings, parse_line, route

    settings = load_settings()
    engine = Engine(MemoryStore(), settings.rules)
    max_ride_us = int(settings.rules.max_ride_hours * 3_600_000_000)
    lines = [orjson.dumps(trip("P1", seat="10A")), orjson.dumps(trip("P2", seat="11A")), b"not json",
             orjson.dumps(case("C1", "P1"))]
    reasons, destinations = [], []
    for line in lines:
        try:
            changes = engine.process(parse_line(line, max_ride_us))
        except InvalidEvent as exc:
            reasons.append(exc.reason)
            continue
        for change in changes:
            destinations += [destination for destination, _ in route(change)]
    assert len(reasons) == 1 and reasons[0].startswith("broken JSON")
    assert destinations == ["contacts", "unassigned"]  # P2 is close to case C1, with no home on record


def test_any_module_imports_first_in_a_fresh_interpreter():
    """Imports run one way (tests/test_layers.py), so no module depends on being imported second."""
    for module in ("graph.store", "graph.keys", "tracer", "tracer.engine", "tracer.cli", "streams.embedded",
                   "streams.kafka.worker", "connectors.kafka.publish"):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
