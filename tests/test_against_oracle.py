"""The engine against the independent reference oracle, on generated cities: exact agreement.

If they disagree, one of them is wrong: find out which; never loosen this test.
TRACER_ORACLE_EXAMPLES raises the number of seeds (default 12).
"""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.embedded import run_embedded
from tracer.alerts import fold
from tracer.oracle import expected_alerts, json_values
from tracer.settings import Settings
from tracer.simulate import generate

EXAMPLES = int(os.environ.get("TRACER_ORACLE_EXAMPLES", "12"))
CITY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
CITIES = given(  # a generated city, traced in batches of any size
    seed=st.integers(min_value=0, max_value=2**31),
    persons=st.integers(500, 4000),
    days=st.integers(1, 4),
    batch=st.sampled_from([1, 7, 250, 1000, 100_000]),
)


def batched(batch: int) -> Settings:
    settings = Settings()
    return replace(settings, runtime=replace(settings.runtime, batch_events=batch))


def engine_alerts(events: Path, root: Path, batch: int = 1000, workers: int = 1) -> dict[str, dict]:
    run_embedded([str(events)], root / "out", batched(batch), root / "state", workers=workers)
    return fold([orjson.loads(line) for line in (root / "out" / "contacts.jsonl").read_bytes().splitlines()])


def oracle_alerts(lines: list[bytes]) -> dict[str, dict]:
    return expected_alerts(json_values(lines))


def assert_same(engine: dict[str, dict], oracle: dict[str, dict]) -> None:
    missing = sorted(set(oracle) - set(engine))
    extra = sorted(set(engine) - set(oracle))
    differ = sorted(k for k in set(engine) & set(oracle) if engine[k] != oracle[k])
    assert not (missing or extra or differ), (
        f"{len(missing)} missing, {len(extra)} extra, {len(differ)} differ; first: "
        f"{[oracle.get(k) or engine.get(k) for k in (missing + extra + differ)[:1]]}"
    )


@pytest.mark.parametrize("workers", [1, 2])
@CITY
@CITIES
def test_engine_equals_oracle_on_generated_cities(tmp_path_factory, workers, seed, persons, days, batch):
    """Whatever the batch size (runtime.batch_events) and the number of workers, the same live alerts."""
    root = tmp_path_factory.mktemp("city")
    generate(persons=persons, days=days, cases=max(2, persons // 400), seed=seed, out_dir=root, truth=True)
    truth = {a["alert_id"]: a for a in map(orjson.loads, (root / "truth.jsonl").read_bytes().splitlines())}
    assert_same(engine_alerts(root / "events.jsonl", root, batch, workers), truth)


@pytest.mark.parametrize("workers", [1, 2])
@CITY
@given(seed=st.integers(min_value=0, max_value=2**31))
def test_shuffled_trips_give_the_oracles_answer(tmp_path_factory, workers, seed):
    """Trips in any order (late data everywhere): the engine still equals the oracle of that order."""
    root = tmp_path_factory.mktemp("shuffled")
    generate(persons=1500, days=2, cases=5, seed=seed % 1000, out_dir=root, truth=False)
    lines = (root / "events.jsonl").read_bytes().splitlines()
    trips = [i for i, line in enumerate(lines) if line.startswith(b'{"type":"trip"')]
    moved = [lines[i] for i in trips]
    random.Random(seed).shuffle(moved)
    for index, line in zip(trips, moved, strict=True):
        lines[index] = line
    (root / "shuffled.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert_same(engine_alerts(root / "shuffled.jsonl", root, workers=workers), oracle_alerts(lines))


@CITY
@CITIES
def test_views_equal_the_oracles_on_generated_cities(tmp_path_factory, seed, persons, days, batch):
    """Health status, every office's call list and the KPIs of a run (its state, and its status.jsonl
    folded) equal the oracle's, at event time and two days later, with the simulated offices'
    follow-ups in the stream."""
    from graph.store import RocksStore
    from tracer.oracle_views import expected_views
    from tracer.views import call_list, event_time, offices, statuses, tracing_kpis

    root = tmp_path_factory.mktemp("views")
    generate(persons=persons, days=days, cases=max(2, persons // 400), seed=seed, out_dir=root, truth=False)
    settings = batched(batch)
    run_embedded([str(root / "events.jsonl")], root / "out", settings, root / "state")
    decoded = list(json_values((root / "events.jsonl").read_bytes().splitlines()))
    store = RocksStore(root / "state", read_only=True)
    try:
        now = event_time(store)
        expected = expected_views(decoded, settings)
        assert now == expected.now
        assert statuses(store) == expected.status
        last = {r["person_id"]: r for r in map(orjson.loads, (root / "out" / "status.jsonl").read_bytes().splitlines())}
        assert {p: {k: v for k, v in r.items() if k != "at"} for p, r in last.items() if r["color"] != "green"} == \
            expected.status
        for moment in (now, None if now is None else now + 48 * 3_600_000_000):
            expected = expected_views(decoded, settings, now=moment)
            lists = {office: call_list(store, settings, office, moment) for office in offices(store)}
            assert {office: rows for office, rows in lists.items() if rows} == expected.calllists
            assert tracing_kpis(store, settings, moment) == expected.kpis
    finally:
        store.close()
