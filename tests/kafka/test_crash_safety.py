"""A worker that dies anywhere in a batch (after applying it, after its store's commit, halfway
through sending, after sending but before the group offset) loses no alert change and leaves no
stale one: restarted on its store, or replaced by a worker with a stale store or none, the folded
contacts topic and street-office queues equal ``tracer run``'s, and every dead letter is written.
Without a broker (a memory bus); test_workers.py SIGKILLs worker processes on one."""

from __future__ import annotations

import os
import random
from pathlib import Path

import orjson
import pytest

from tests.builders import case, person, trip
from tests.dense import stream
from tests.kafka.harness import CRASHES, MemoryBus, Partitions, embedded_reference, open_tasks, queues_of
from tests.kafka.synth import city_events
from tracer.alerts import fold
from tracer.oracle import expected_alerts
from tracer.settings import load_settings

SETTINGS = load_settings()
DENSE_SEEDS = int(os.environ.get("TRACER_DENSE_SEEDS_CRASHES", "60"))
RESTARTS = ("its own store", "another worker, no store", "another worker, a stale store")


def _flight() -> list[bytes]:
    """A case (P1), a co-passenger (P2), then a correction of P2's ride to a later time: the alert
    comes and goes, and ``tracer run`` ends with none."""
    events = [person("P1", "310101002"), person("P2", "310101013"), case("C1", "P1"),
              trip("P1", seat="30A", trip_id="t1"), trip("P2", seat="31A", trip_id="t2"),
              trip("P2", seat="31A", board="13:00", alight="15:00", trip_id="t2")]
    return [orjson.dumps(e) for e in events]


def _folded(bus: MemoryBus) -> tuple[dict, dict]:
    topics = {name: bus.records(name) for name in bus.topics}
    return fold(bus.records(bus.kafka.contacts_topic)), queues_of(topics, bus.kafka.queue_topic_prefix)


def _reference(lines: list[bytes], folder: Path) -> tuple[dict, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "events.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    found = embedded_reference(folder / "events.jsonl", folder / "out", SETTINGS)
    return found.contacts, found.queues


def _catch_up(bus: MemoryBus, tasks: Partitions) -> None:
    """Each partition fetches everything unread as one batch, until none is left."""
    while ready := [task for task in tasks if task.position < len(bus.logs[task.partition])]:
        for task in ready:
            bus.step(task, bus.logs[task.partition][task.position:])


def test_a_restart_after_sending_a_batch_does_not_apply_it_again(tmp_path: Path) -> None:
    """The alert's add is sent with its batch; the worker dies before the group offset. Restarted,
    it must not fetch that batch again with the correction after it as one step (which changes
    nothing and sends nothing, so that the add would stay): it goes on from its store's commit."""
    lines = _flight()
    bus = MemoryBus(1)
    bus.publish(lines, SETTINGS)
    tasks = open_tasks(bus, tmp_path / "state", SETTINGS)
    bus.step(tasks[0], bus.logs[0][:-1], crash="sent")
    tasks.close()
    assert [a["contact_person_id"] for a in fold(bus.records(bus.kafka.contacts_topic)).values()] == ["P2"]
    tasks = open_tasks(bus, tmp_path / "state", SETTINGS)
    bus.step(tasks[0], bus.logs[0][tasks[0].position:])
    tasks.close()
    assert _folded(bus) == _reference(lines, tmp_path / "run") == ({}, {})


@pytest.mark.parametrize("restart", RESTARTS)
@pytest.mark.parametrize("crash", CRASHES)
def test_a_crash_anywhere_in_a_batch_leaves_no_stale_alert(tmp_path: Path, crash: str, restart: str) -> None:
    """The batch that adds the alert, cut short at each point; then its partition is fetched whole
    by the worker restarted on its store, by a worker without a store, or by one whose store is
    older (it owned the partition before)."""
    lines = _flight()
    bus = MemoryBus(2)
    bus.publish(lines, SETTINGS)
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    if restart.endswith("stale store"):
        tasks = open_tasks(bus, theirs, SETTINGS)
        for task in tasks:
            bus.step(task, bus.logs[task.partition][:1])
        tasks.close()
    tasks = open_tasks(bus, mine, SETTINGS)
    owner = next(task for task in tasks if len(bus.logs[task.partition]) == 4)  # the flight's partition
    bus.step(owner, bus.logs[owner.partition][:-1], crash=crash)
    tasks.close()
    if crash in ("half sent", "sent"):
        assert fold(bus.records(bus.kafka.contacts_topic))  # the add is out
    tasks = open_tasks(bus, mine if restart == "its own store" else theirs, SETTINGS)
    _catch_up(bus, tasks)
    tasks.close()
    assert _folded(bus) == _reference(lines, tmp_path / "run") == ({}, {})


def test_a_store_ahead_of_what_another_worker_went_on_from_is_rebuilt(tmp_path: Path) -> None:
    """The worker commits a batch that adds and retracts the alert (so it sends nothing) and dies
    before the group offset; another worker goes on from the group offset in smaller batches and
    sends the add, then hands the partition back: the first worker's store cannot go back to the
    retraction, which the other has not reached yet, so it is rebuilt from the topic."""
    lines = _flight()
    bus = MemoryBus(1)
    bus.publish(lines, SETTINGS)
    tasks = open_tasks(bus, tmp_path / "mine", SETTINGS)
    bus.step(tasks[0], bus.logs[0][:1])
    bus.step(tasks[0], bus.logs[0][1:], crash="sent")
    tasks.close()
    theirs = open_tasks(bus, tmp_path / "theirs", SETTINGS)
    bus.step(theirs[0], bus.logs[0][:3])  # silently to the group offset (1), then on to 3
    theirs.close()
    assert [a["contact_person_id"] for a in fold(bus.records(bus.kafka.contacts_topic)).values()] == ["P2"]
    tasks = open_tasks(bus, tmp_path / "mine", SETTINGS)
    assert (tasks[0].position, tasks[0].emit_from) == (0, 3)
    _catch_up(bus, tasks)
    tasks.close()
    assert _folded(bus) == ({}, {})


@pytest.mark.parametrize("crash", ["applied", "tasks committed", "committed", "half sent"])
def test_a_crash_while_a_person_moves_loses_no_move(tmp_path: Path, crash: str) -> None:
    """A registry batch moves a contact to another street office: the worker dies after applying
    it, after committing the partitions, after committing the registry store too, or halfway
    through sending the moves; restarted, the old office has the retraction and the new one the alert."""
    lines = [*_flight()[:-1], orjson.dumps(person("P2", "310104003"))]
    bus = MemoryBus(2)
    bus.publish(lines[:-1], SETTINGS)
    tasks = open_tasks(bus, tmp_path, SETTINGS)
    _catch_up(bus, tasks)
    bus.publish(lines[-1:], SETTINGS)
    partition = next(p for p, log in enumerate(bus.registry) if tasks.table.position(p) < len(log))
    tasks.table.apply(partition, bus.registry[partition][tasks.table.position(partition):], tasks)
    if crash != "applied":
        for task in tasks:
            task.commit()
    if crash in ("committed", "half sent"):
        tasks.table.commit()
    if crash == "half sent":
        outbox = [output for task in tasks for output in task.outbox]
        bus.deliver(outbox[:len(outbox) // 2])
    tasks.close()
    tasks = open_tasks(bus, tmp_path, SETTINGS)
    _catch_up(bus, tasks)
    tasks.close()
    contacts, queues = _folded(bus)
    assert (contacts, queues) == _reference(lines, tmp_path / "run")
    assert list(queues) == ["310104003"]


def _drain_with_crashes(bus: MemoryBus, states: list[Path], seed: int, rate: float, batch: int = 16) -> int:
    """Drain the bus as ``harness.drain`` does, but let the worker die in a random batch at a random
    point (a rate of them), each time replaced by the same worker or another (``states``: one store
    folder each). Returns the number of crashes."""
    rng = random.Random(seed)
    tasks, crashes = open_tasks(bus, states[0], SETTINGS), 0
    try:
        while ready := [task for task in tasks if task.position < len(bus.logs[task.partition])]:
            task = rng.choice(ready)
            records = bus.logs[task.partition][task.position:task.position + rng.randint(1, batch)]
            crash = rng.choice(CRASHES) if rng.random() < rate else None
            bus.step(task, records, crash)
            if crash is not None:
                crashes += 1
                tasks.close()
                tasks = open_tasks(bus, rng.choice(states), SETTINGS)
    finally:
        tasks.close()
    return crashes


@pytest.mark.parametrize("partitions", [1, 2])
def test_dense_streams_with_crashes_equal_the_oracle(tmp_path: Path, partitions: int) -> None:
    """The revision-heavy streams of tests/dense.py, a worker dying in one batch in four at any
    point, replaced by itself or by one of two other workers."""
    wrong, crashes = [], 0
    for seed in range(DENSE_SEEDS):
        lines = [orjson.dumps(event) for event in stream(seed, keep_service_day=True)]
        bus = MemoryBus(partitions)
        bus.publish(lines, SETTINGS)
        crashes += _drain_with_crashes(bus, [tmp_path / f"{seed}-{n}" for n in range(3)], seed, 0.25)
        if fold(bus.records(bus.kafka.contacts_topic)) != expected_alerts([orjson.loads(line) for line in lines]):
            wrong.append(seed)
    assert crashes > DENSE_SEEDS
    assert not wrong, f"crashed partitions and oracle disagree on seeds {wrong[:10]} (of {len(wrong)})"


def test_a_city_with_crashes_equals_the_embedded_run_and_writes_every_dead_letter(tmp_path: Path) -> None:
    """Secondary contacts (ride copies between partitions) and dead letters, through crashes."""
    events = city_events(tmp_path / "city", persons=800, days=2, cases=6, seed=3)
    reference = embedded_reference(events, tmp_path / "run", SETTINGS)
    assert any(a["level"] == "secondary" for a in reference.contacts.values())
    letters = []
    for crashes in (False, True):
        bus = MemoryBus(3)
        bus.publish(events.read_bytes().splitlines(), SETTINGS)
        for partition in range(3):  # a record of another producer, which the workers dead-letter
            bus.append(partition, b'{"type": "case"}')
        states = [tmp_path / f"{crashes}-a", tmp_path / f"{crashes}-b"]
        assert (_drain_with_crashes(bus, states, 4, 0.1 if crashes else 0.0, batch=200) > 3) == crashes
        assert _folded(bus) == (reference.contacts, reference.queues)
        letters.append({(letter["source"], letter["offset"]) for letter in bus.records(bus.kafka.dead_letter_topic)})
    assert letters[0] == letters[1] and len(letters[0]) >= 3
