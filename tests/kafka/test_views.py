"""Kafka mode's views (streams/kafka/views.py) equal the embedded runner's on the same events: the
same event time, call lists, KPIs and health statuses, and a status stream that folds to the same
statuses; whatever the interleaving with the partitions, with the contacts topic pseudonymised, and
across crashes of the view process. Without a broker here (a memory bus); test_views_broker.py runs
the processes on one."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.kafka.publish import publish
from connectors.kafka.settings import KafkaSettings
from graph.keys import FOLLOWUPS, OBSERVED, OFFICES, group
from graph.store import SEP, RocksStore
from streams.embedded import run_embedded
from streams.kafka.views import ViewTask, is_real
from tests.kafka.cluster import WorkerProcess, view_positions, wait_caught_up, wait_views_caught_up
from tests.kafka.conftest import ROOT, tracer_command
from tests.kafka.harness import MemoryBus, ViewReader, drain, open_tasks, read_jsonl
from tests.kafka.synth import city_events, with_followups
from tracer.alerts import alert_id
from tracer.errors import StateError
from tracer.privacy import Pseudonymizer
from tracer.settings import load_settings
from tracer.views import call_list, event_time, status, tracing_kpis

SETTINGS = load_settings()
LATER = 2 * 86_400_000_000  # two days: every unanswered row is overdue by then


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], dict[str, Any]]:
    """A city with follow-ups, and the views of ``tracer run`` on it."""
    folder = tmp_path_factory.mktemp("city")
    events = city_events(folder, persons=1500, days=3, cases=8, seed=11)
    lines = with_followups(events.read_bytes().splitlines(), read_jsonl(folder / "truth.jsonl"), seed=3)
    (folder / "followups.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    run_embedded([str(folder / "followups.jsonl")], folder / "out", SETTINGS, folder / "state")
    views = views_of(folder / "state")
    return lines, {"views": views, "later": views_of(folder / "state", views["now"] + LATER),
                   "statuses": folded(read_jsonl(folder / "out" / "status.jsonl"))}


def same_views(state: Path, embedded: dict[str, Any]) -> None:
    """The views of ``state`` are the embedded run's, at its event time and two days later (``--at``)."""
    found = views_of(state)
    assert found == embedded["views"]  # event time included
    assert views_of(state, found["now"] + LATER) == embedded["later"]


def views_of(state: Path, now: int | None = None) -> dict[str, Any]:
    """Everything the view commands read from a state, at its own event time (or ``now``): every
    office's call list (general contacts included), the KPIs, and the status of everyone it knows."""
    store = RocksStore(state, read_only=True)
    try:
        now = event_time(store) if now is None else now
        offices = {suffix.split(SEP, 1)[0] for suffix, _ in store.scan(group(OFFICES))}
        persons = {suffix.split(SEP, 1)[0] for family in (OBSERVED, FOLLOWUPS)
                   for suffix, _ in store.scan(group(family))}
        statuses = {person: status(store, SETTINGS, person, now) for person in sorted(persons)}
        return {"now": now, "calls": {office: call_list(store, SETTINGS, office, now, True) for office in offices},
                "kpis": tracing_kpis(store, SETTINGS, now),
                "status": {person: found for person, found in statuses.items() if found["color"] != "green"}}
    finally:
        store.close()


def folded(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A status stream folded by person, without the event time of each change (which follows how
    the records were cut into steps); a person absent from it, or last green, is green."""
    last = {record["person_id"]: record for record in records}
    return {person: {**record, "at": None} for person, record in last.items() if record["color"] != "green"}


def _kafka_views(lines: list[bytes], state: Path, seed: int, pseudonyms: Pseudonymizer | None = None,
                 partitions: int = 3) -> ViewReader:
    bus = MemoryBus(partitions)
    bus.publish(lines, SETTINGS)
    tasks = open_tasks(bus, state / "worker", SETTINGS, pseudonyms)
    views = ViewReader(bus, ViewTask(state / "views", SETTINGS, bus.kafka, partitions))
    try:
        drain(bus, tasks, seed=seed, views=views)
    finally:
        tasks.close()
        views.task.close()
    return views


def test_the_city_holds_what_the_views_must_show(city) -> None:
    _, embedded = city
    views = embedded["views"]
    rows = [row for calls in views["calls"].values() for row in calls]
    outcomes = {row["followup"]["outcome"] for row in rows if row["followup"]}
    assert outcomes == {"reached", "quarantined", "unreachable", "released"}
    assert {row["level"] for row in rows} == {"close", "secondary", "general"}
    assert any(row["answered"] for row in rows) and not all(row["answered"] for row in rows)
    later = [row for calls in embedded["later"]["calls"].values() for row in calls]
    assert any(row["overdue"] for row in later) and embedded["later"]["kpis"]["city"]["overdue"]
    assert {found["color"] for found in views["status"].values()} == {"red", "yellow"}
    reasons = [reason for found in views["status"].values() for reason in found["reasons"]]
    assert {reason["kind"] for reason in reasons} == {"case", "contact"}
    assert embedded["statuses"] == {person: {**found, "at": None} for person, found in views["status"].items()}


@pytest.mark.parametrize(("seed", "pseudonymised"), [(0, False), (1, False), (2, True)])
def test_views_from_the_topics_equal_the_embedded_run(city, tmp_path: Path, seed: int, pseudonymised: bool) -> None:
    lines, embedded = city
    pseudonyms = Pseudonymizer(b"a-key-of-at-least-16-bytes") if pseudonymised else None
    views = _kafka_views(lines, tmp_path, seed, pseudonyms)
    same_views(tmp_path / "views", embedded)
    assert folded(views.statuses) == embedded["statuses"]
    assert (views.task.pseudonymised > 0) == pseudonymised


def test_a_crash_of_the_view_process_loses_nothing_and_sends_what_it_had_committed(city, tmp_path: Path) -> None:
    """Killed after a step (not committed: read again), and after a commit whose status records were
    not sent yet (sent at the restart, from the store's outbox)."""
    lines, embedded = city
    bus = MemoryBus(3)
    bus.publish(lines, SETTINGS)
    tasks = open_tasks(bus, tmp_path / "worker", SETTINGS)
    drain(bus, tasks)
    tasks.close()
    rng = random.Random(5)
    views = ViewReader(bus, ViewTask(tmp_path / "views", SETTINGS, bus.kafka, 3))
    crashes = {"before the commit": 0, "before sending": 0}
    while views.ready():
        if rng.random() < 0.1:  # a step whose commit never happens
            views.step(rng, 200, commit=False)
            crashes["before the commit"] += 1
        elif rng.random() < 0.1:  # committed, killed before it sent anything
            views.step(rng, 200, commit=False)
            views.task.commit()
            crashes["before sending"] += bool(views.task.outbox)
        else:
            views.step(rng, 200)
            continue
        views.task.close()
        views.task = ViewTask(tmp_path / "views", SETTINGS, bus.kafka, 3)
        views.sent()  # a restarted process first sends the outbox of its last commit
    views.task.close()
    assert all(crashes.values()), crashes
    same_views(tmp_path / "views", embedded)
    assert folded(views.statuses) == embedded["statuses"]


def test_views_refuse_a_state_that_is_not_theirs(city, tmp_path: Path) -> None:
    bus = MemoryBus(3)
    ViewTask(tmp_path / "views", SETTINGS, bus.kafka, 3).close()  # nothing committed: a new store
    task = ViewTask(tmp_path / "views", SETTINGS, bus.kafka, 3)
    task.commit()
    task.close()
    with pytest.raises(StateError, match=r"holds the views of \S+ \(3 partitions\), not of \S+ \(4\)"):
        ViewTask(tmp_path / "views", SETTINGS, bus.kafka, 4)
    run_embedded([], tmp_path / "out", SETTINGS, tmp_path / "run")
    tasks = open_tasks(bus, tmp_path / "worker", SETTINGS)
    tasks[0].commit()
    tasks.close()
    for state in (tmp_path / "run", tmp_path / "worker" / f"{bus.kafka.events_topic}-0"):
        with pytest.raises(StateError, match="not views"):
            ViewTask(state, SETTINGS, bus.kafka, 3)


def test_an_alert_record_is_known_to_be_pseudonymised() -> None:
    """The contacts topic of pseudonymising workers names nobody the views could call: its records
    are told apart by their alert id, which is keyed, and skipped."""
    record = orjson.loads(b'{"alert_id": "", "source_kind": "case", "case_id": "C1", "contact_person_id": "P2", '
                          b'"mode": "flight", "service": "MU5101", "date": "2020-01-20", "via_person_id": null}')
    record["alert_id"] = alert_id("case", "C1", "P2", "flight", "MU5101", "2020-01-20")
    assert is_real(record)
    assert not is_real(Pseudonymizer(b"a-key-of-at-least-16-bytes").alert(record))


@pytest.mark.broker
def test_the_view_process_on_the_broker_equals_the_embedded_run_across_a_sigkill(
        city, kafka: KafkaSettings, config_file: Path, tmp_path: Path) -> None:
    """``tracer worker`` and ``tracer views`` processes on the broker, the view process SIGKILLed in
    the middle and started again on its state: its store gives the embedded run's views, and the
    status topic, read as a user reads it (``tracer subscribe --status``), folds to its statuses."""
    lines, embedded = city
    third = len(lines) // 3
    parts = [tmp_path / f"part{n}.jsonl" for n in range(3)]
    for n, path in enumerate(parts):
        path.write_bytes(b"".join(line + b"\n" for line in lines[n * third:(n + 1) * third if n < 2 else None]))
    worker = WorkerProcess("worker", config_file, tmp_path / "worker", tmp_path).start()
    views = WorkerProcess("views", config_file, tmp_path / "views", tmp_path, "views").start()
    again = WorkerProcess("views-again", config_file, tmp_path / "views", tmp_path, "views")
    try:
        publish([str(parts[0]), str(parts[1])], SETTINGS, kafka)
        deadline = time.monotonic() + 60
        while sum(view_positions(views.state).values() if (views.state / "CURRENT").exists() else ()) == 0:
            assert time.monotonic() < deadline and views.process and views.process.poll() is None, views.text()
            time.sleep(0.1)
        views.kill()  # mid-stream: the worker goes on writing alerts meanwhile
        publish([str(parts[2])], SETTINGS, kafka)
        wait_caught_up(kafka, [worker])
        again.start()
        wait_views_caught_up(kafka, again)
        assert again.stop() == 0 and worker.stop() == 0
    finally:
        for process in (views, again, worker):
            process.stop()
    assert "views stopped" in again.text()
    same_views(tmp_path / "views", embedded)
    done = subprocess.run(tracer_command("subscribe", "--config", str(config_file), "--status", "--from-beginning",
                                         "--idle-exit", "1"), cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert folded([orjson.loads(line) for line in done.stdout.splitlines()]) == embedded["statuses"]
    # the view commands read the view process's state as they read a run's
    office, (person, found) = next(iter(embedded["views"]["calls"])), next(iter(embedded["views"]["status"].items()))
    for command, expected in ((["calllist", "--subdistrict", office, "--include-general", "--format", "json"],
                               embedded["views"]["calls"][office]),
                              (["kpis", "--format", "json"], embedded["views"]["kpis"]),
                              (["status", "--person", person], found)):
        done = subprocess.run(tracer_command(*command, "--state", str(tmp_path / "views")), cwd=ROOT,
                              capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert orjson.loads(done.stdout) == expected, command
