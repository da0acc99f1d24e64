"""`tracer run --workers N`: service days over N processes, one output (streams/coordinator.py).

The live alerts must be those of one process (and of the oracle), the outputs the same on every
run with the same N, and a worker that dies must stop the run. The SIGKILL resumes are in
tests/test_crash.py, the oracle on generated cities in tests/test_against_oracle.py (both also
with 2 workers).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from graph.keys import service_day
from streams.embedded import run_embedded
from streams.worker import owner_of_day
from tests.builders import at, case, trip
from tests.dense import stream
from tests.test_against_oracle import oracle_alerts
from tracer.alerts import fold
from tracer.errors import StateError
from tracer.oracle import expected_alerts
from tracer.privacy import Pseudonymizer
from tracer.settings import Settings
from tracer.simulate import generate

ID_FIELDS = ("person_id", "case_id", "exposure_id", "trip_id", "service")


def settings(commit_every: int = 5000, batch_events: int = 1000) -> Settings:
    base = Settings()
    return replace(base, runtime=replace(base.runtime, commit_every=commit_every, batch_events=batch_events))


def traced(events: Path, root: Path, workers: int, config: Settings | None = None, **options: Any) -> Path:
    out = root / f"out-{workers}"
    run_embedded([str(events)], out, config or settings(), root / f"state-{workers}", workers=workers, **options)
    return out


def live(out: Path, name: str = "contacts.jsonl") -> dict[str, dict]:
    """The folded alerts of an output file (none: a queue that no batch of this run wrote to; the
    change stream of other batches may have had an alert come and go there)."""
    path = out / name
    return fold(orjson.loads(line) for line in path.read_bytes().splitlines()) if path.exists() else {}


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.jsonl"))}


def disjoint(seed: int) -> list[dict[str, Any]]:
    """Dense stream ``seed`` (tests/dense.py) with every id made its own, so that many streams can
    share one input without meeting. Corrected trips keep their service day: a correction that moves
    a ride to another day is a known limit (docs/rules.md)."""
    events = stream(seed, keep_service_day=True)
    return [{k: f"s{seed}-{v}" if k in ID_FIELDS and isinstance(v, str) else v for k, v in e.items()} for e in events]


def test_dense_streams_fold_to_the_oracle_on_2_and_3_workers(tmp_path):
    """Cases re-reported (person, status, onset, isolation), quarantines before and after exposures,
    exposures replaced, registry moves: with epochs of 13 lines, every secondary window that spans
    days of several workers goes through their messages."""
    seeds = range(600)
    lines = [orjson.dumps(event) for seed in seeds for event in disjoint(seed)]
    expected: dict[str, dict] = {}
    for seed in seeds:
        expected.update(expected_alerts([orjson.loads(orjson.dumps(event)) for event in disjoint(seed)]))
    assert sum(alert["level"] == "secondary" for alert in expected.values()) > 70
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    for workers in (2, 3):
        assert live(traced(events, tmp_path, workers, settings(commit_every=13, batch_events=3))) == expected


def with_quarantines(city: Path, seed: int) -> Path:
    """The generated city with quarantine events of some close contacts, in the middle of the stream
    (the generator writes none): they end secondary windows that other days' exposures opened."""
    lines = (city / "events.jsonl").read_bytes().splitlines()
    truth = [orjson.loads(line) for line in (city / "truth.jsonl").read_bytes().splitlines()]
    rng = random.Random(seed)
    close = sorted({(a["contact_person_id"], a["exposure_end"]) for a in truth if a["level"] == "close"})
    for person, end in rng.sample(close, min(len(close), 12)):
        at = datetime.fromisoformat(end) + timedelta(hours=rng.choice((-3, 0, 12)))
        line = orjson.dumps({"type": "quarantine", "person_id": person, "at": at.isoformat()})
        lines.insert(rng.randint(len(lines) // 3, len(lines)), line)
    (city / "quarantined.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return city / "quarantined.jsonl"


@pytest.mark.parametrize("seed", [3, 17])
def test_generated_city_with_quarantines_folds_alike_on_1_2_and_3_workers(tmp_path, seed):
    generate(persons=3000, days=3, cases=10, seed=seed, out_dir=tmp_path / "city", truth=True)
    events = with_quarantines(tmp_path / "city", seed)
    expected = oracle_alerts(events.read_bytes().splitlines())
    assert any(alert["level"] == "secondary" for alert in expected.values())
    config = settings(commit_every=200, batch_events=50)
    one = traced(events, tmp_path, 1, config)
    assert live(one) == expected
    for workers in (2, 3):
        out = traced(events, tmp_path, workers, config)
        assert live(out) == expected
        assert (out / "dead-letter.jsonl").read_bytes() == (one / "dead-letter.jsonl").read_bytes()
        queues = {p.name for p in (one / "alerts").iterdir()} | {p.name for p in (out / "alerts").iterdir()}
        assert all(live(out, f"alerts/{name}") == live(one, f"alerts/{name}") for name in queues)


def test_the_same_input_gives_the_same_bytes_on_every_run(tmp_path):
    generate(persons=3000, days=2, cases=10, seed=8, out_dir=tmp_path / "city", truth=False)
    events = tmp_path / "city" / "events.jsonl"
    config = settings(commit_every=300, batch_events=40)
    first = files_of(traced(events, tmp_path / "first", 2, config))
    assert first["contacts.jsonl"]
    assert files_of(traced(events, tmp_path / "second", 2, config)) == first


def test_pseudonyms_are_those_of_one_process(tmp_path):
    generate(persons=1500, days=2, cases=6, seed=4, out_dir=tmp_path / "city", truth=False)
    events = tmp_path / "city" / "events.jsonl"
    view = Pseudonymizer(b"0123456789abcdef-key").alert
    one, two = (live(traced(events, tmp_path, n, contacts_view=view)) for n in (1, 2))
    assert one and one == two
    assert not any(alert["contact_person_id"].startswith("P") for alert in two.values())


def test_a_state_is_resumed_only_with_the_number_of_workers_that_wrote_it(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"type": "person", "person_id": "P1", "subdistrict": "310101002"}\n')
    run_embedded([str(events)], tmp_path / "out", settings(), tmp_path / "state", workers=2)
    for workers, message in ((1, "written by 2 workers: pass --workers 2"), (3, "pass --workers 2")):
        with pytest.raises(StateError, match=message):
            run_embedded([str(events)], tmp_path / "out", settings(), tmp_path / "state", workers=workers)
    run_embedded([str(events)], tmp_path / "out1", settings(), tmp_path / "one", workers=1)
    with pytest.raises(StateError, match="written by one worker"):
        run_embedded([str(events)], tmp_path / "out1", settings(), tmp_path / "one", workers=2)


def workers_of(pid: int) -> list[int]:
    """The worker processes of a run (its spawned children; not multiprocessing's resource tracker)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = []
    for child in path.read_text().split() if path.exists() else []:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            found.append(int(child))
    return found


def test_a_worker_that_dies_stops_the_run_with_an_error(tmp_path):
    """A live feed on stdin: a worker is killed while the coordinator waits for input; the next
    epoch finds it gone, and the run stops (exit 2) instead of waiting for it."""
    command = [sys.executable, "-m", "tracer.cli", "run", "-", "--out", str(tmp_path / "out"),
               "--state", str(tmp_path / "state"), "--workers", "2", "--quiet"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    assert process.stdin is not None
    person = b'{"type": "person", "person_id": "P%d", "subdistrict": "310101002"}\n'
    process.stdin.write(person % 1)
    process.stdin.flush()
    deadline = time.monotonic() + 60
    while len(workers := workers_of(process.pid)) < 2:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    time.sleep(1)  # the first epoch answered (or not: a worker that dies while starting stops the run too)
    os.kill(workers[-1], signal.SIGKILL)
    try:
        process.stdin.write(person % 2)
        process.stdin.flush()
        assert process.wait(timeout=60) == 2
    finally:
        process.kill()
    assert re.search(rb"tracer: error: worker [01] died", process.stderr.read())  # type: ignore[union-attr]


def other_workers_days(workers: int) -> tuple[str, str]:
    """Two metro runs on 2020-01-21 whose service days belong to different workers."""
    services = [f"M{index}" for index in range(50)]
    first = services[0]
    owner = owner_of_day(service_day("2020-01-21", "metro", first), workers)
    second = next(s for s in services if owner_of_day(service_day("2020-01-21", "metro", s), workers) != owner)
    return first, second


@pytest.mark.parametrize("ending", ["quarantine", "report moved"])
def test_a_close_contact_isolated_later_ends_secondary_exposure_on_another_workers_days(tmp_path, ending):
    """X is close to the case on one worker's day and exposes Y on another's; when X's isolation
    moves before that ride (a quarantine, or the case re-reported earlier), only the worker of
    the first day sees X's close alert: the other finds X in what it was sent."""
    first, second = other_workers_days(2)
    day = "2020-01-21"
    ending_event = (
        {"type": "quarantine", "person_id": "X", "at": at("12:00", day)} if ending == "quarantine"
        else case("C1", "A", reported_at=at("10:00", "2020-01-20"))
    )
    events = [
        trip("A", mode="metro", service=first, day=day, board="08:00", alight="09:00", carriage="1"),
        trip("X", mode="metro", service=first, day=day, board="08:00", alight="09:00", carriage="1"),
        trip("X", mode="metro", service=second, day=day, board="18:00", alight="19:00", carriage="2"),
        trip("Y", mode="metro", service=second, day=day, board="18:00", alight="19:00", carriage="2"),
        case("C1", "A", reported_at=at("12:00", "2020-01-22")),
        *({"type": "person", "person_id": f"P{index}", "subdistrict": "310101002"} for index in range(6)),
        ending_event,
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(map(orjson.dumps, events)) + b"\n")
    before = expected_alerts([orjson.loads(orjson.dumps(event)) for event in events[:-1]])
    assert any(alert["contact_person_id"] == "Y" for alert in before.values())
    expected = expected_alerts([orjson.loads(orjson.dumps(event)) for event in events])
    assert not any(alert["contact_person_id"] == "Y" for alert in expected.values())
    assert live(traced(path, tmp_path, 2, settings(commit_every=3, batch_events=2))) == expected
