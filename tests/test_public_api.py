"""The short public API of ``tracer`` (its docstring's example), imported lazily."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import orjson

import tracer
from graph.store import MemoryStore
from tests.builders import case, trip


def test_every_public_name_resolves_and_nothing_else_does():
    assert sorted(tracer.__all__) == sorted(tracer._MODULE_OF)
    for name in tracer.__all__:
        assert getattr(tracer, name) is getattr(import_module(tracer._MODULE_OF[name]), name)
    try:
        tracer.not_a_name  # noqa: B018
    except AttributeError as exc:
        assert "not_a_name" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")


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
    """``graph.store`` imports ``tracer.errors``: an eager engine import in ``tracer`` made a cycle."""
    for module in ("graph.store", "graph.keys", "tracer", "tracer.engine", "streams.embedded"):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
