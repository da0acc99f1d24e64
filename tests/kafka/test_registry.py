"""The registry as a global table, without a broker: each worker reads the registry topic whole
into one store its partitions share; a person who moves moves their alerts; a worker restarted
mid-registry continues from its stored position; persons in the events topic (the layout before
the registry topic) are refused, once."""

from __future__ import annotations

from pathlib import Path

import orjson

from graph.keys import HOMES, group
from streams.kafka.registry import RegistryTable
from tests.builders import case, person, trip
from tests.kafka.harness import MemoryBus, Rec, drain, embedded_reference, open_tasks, queues_of
from tracer.alerts import fold
from tracer.settings import load_settings

SETTINGS = load_settings()
HOME, NEW_HOME = "310101002", "310101013"


def _flight(home: str = HOME) -> list[bytes]:
    """A case (P1) and a close contact (P2) living in ``home``."""
    events = [person("P1", "310104003"), person("P2", home), trip("P1", seat="30A", trip_id="t1"),
              trip("P2", seat="31A", trip_id="t2"), case("C1", "P1")]
    return [orjson.dumps(e) for e in events]


def _write(lines: list[bytes], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _folded(bus: MemoryBus) -> tuple[dict, dict]:
    topics = {name: bus.records(name) for name in bus.topics}
    return fold(bus.records(bus.kafka.contacts_topic)), queues_of(topics, bus.kafka.queue_topic_prefix)


def test_the_registry_is_read_whole_and_kept_once_per_worker(tmp_path: Path) -> None:
    lines = [orjson.dumps(person(f"Q{n}", HOME)) for n in range(50)] + _flight()
    bus = MemoryBus(3)
    bus.publish(lines, SETTINGS)
    assert sum(len(log) for log in bus.registry) == 52  # once each, not once per partition
    assert not any(b'"person"' in record.value for log in bus.logs for record in log)
    tasks = open_tasks(bus, tmp_path, SETTINGS)
    try:
        assert tasks.table.progress.lines == 52  # read whole before the first events record
        assert len(tasks.table.store.scan(group(HOMES))) == 52
        assert all(not task.store.scan(group(HOMES)) for task in tasks)  # no partition keeps a copy
        drain(bus, tasks)
    finally:
        tasks.close()
    contacts, queues = _folded(bus)
    assert [(a["contact_person_id"], a["subdistrict"]) for a in contacts.values()] == [("P2", HOME)]
    assert list(queues) == [HOME]


def test_a_person_who_moves_moves_their_alerts(tmp_path: Path) -> None:
    """The move is read after the alert exists (by the same worker, and by a worker opened again
    after it): the contacts stream and the queues end as the embedded runner's on the same lines."""
    lines = [*_flight(), orjson.dumps(person("P2", NEW_HOME))]
    reference = embedded_reference(_write(lines, tmp_path / "in" / "events.jsonl"), tmp_path / "run", SETTINGS)
    assert [a["subdistrict"] for a in reference.contacts.values()] == [NEW_HOME]
    for reopened in (False, True):
        bus = MemoryBus(2)
        bus.publish(lines[:-1], SETTINGS)
        tasks = open_tasks(bus, tmp_path / f"state-{reopened}", SETTINGS)
        drain(bus, tasks)
        assert list(_folded(bus)[1]) == [HOME]
        bus.publish(lines[-1:], SETTINGS)
        if reopened:  # the move is read while the partitions are closed: they catch up on opening
            tasks.close()
            tasks = open_tasks(bus, tmp_path / f"state-{reopened}", SETTINGS)
        drain(bus, tasks)
        tasks.close()
        contacts, queues = _folded(bus)
        assert contacts == reference.contacts and queues == reference.queues, reopened
        retractions = [r for r in bus.records(bus.kafka.queue_topic(HOME)) if r["action"] == "retract"]
        assert len(retractions) == 1  # the old street office is told


def test_a_tombstone_removes_the_home(tmp_path: Path) -> None:
    bus = MemoryBus(2)
    bus.publish(_flight(), SETTINGS)
    tasks = open_tasks(bus, tmp_path, SETTINGS)
    drain(bus, tasks)
    key = b"P2"
    partition = next(p for p, log in enumerate(bus.registry) if any(r.key == key for r in log))
    bus.registry[partition].append(Rec(len(bus.registry[partition]), None, (), key))
    drain(bus, tasks)
    assert tasks.table.store.get(group(HOMES), "P2") is None
    tasks.close()
    contacts, queues = _folded(bus)
    assert [a["subdistrict"] for a in contacts.values()] == [None]
    assert list(queues) == ["unassigned"]


def test_a_worker_restarted_mid_registry_continues_from_its_stored_position(tmp_path: Path) -> None:
    lines = [orjson.dumps(person(f"P{n:03d}", HOME if n % 2 else NEW_HOME)) for n in range(300)]
    bus = MemoryBus(1)
    bus.publish(lines, SETTINGS)
    committed = RegistryTable(tmp_path, 2, SETTINGS, bus.kafka)
    for partition, log in enumerate(bus.registry):
        committed.apply(partition, log[:40])
    committed.commit()
    for partition, log in enumerate(bus.registry):  # read on, then killed before the commit
        committed.apply(partition, log[40:90])
    committed.close()
    table = RegistryTable(tmp_path, 2, SETTINGS, bus.kafka)
    try:
        assert [table.position(p) for p in range(2)] == [40, 40]
        for partition, log in enumerate(bus.registry):
            table.apply(partition, log)  # fetched from the stored positions (older records are skipped)
        table.commit()
        assert table.progress.lines == 300 - 80
        homes = dict(table.store.scan(group(HOMES)))
        assert homes == {f"P{n:03d}": (HOME if n % 2 else NEW_HOME).encode() for n in range(300)}
    finally:
        table.close()


def test_records_of_other_producers_that_are_no_person_are_skipped(tmp_path: Path) -> None:
    table = RegistryTable(tmp_path, 1, SETTINGS, MemoryBus(1).kafka)
    try:
        records = [Rec(0, orjson.dumps(person("P1", HOME)), (), b"P9"),  # keyed by another id
                   Rec(1, orjson.dumps(trip("P1")), (), b"P1"),
                   Rec(2, b"{broken", (), b"P1"),
                   Rec(3, orjson.dumps(person("P1", HOME)), (), b"P1")]
        table.apply(0, records)
        assert (table.progress.dead_letters, table.position(0)) == (3, 4)
        assert dict(table.store.scan(group(HOMES))) == {"P1": HOME.encode()}
    finally:
        table.close()


def test_a_person_in_the_events_topic_is_refused_once(tmp_path: Path) -> None:
    """The layout before the registry topic put persons into every events partition: each is a dead
    letter (reported by one partition) that says where persons go now, and changes nothing."""
    bus = MemoryBus(3)
    bus.publish(_flight(), SETTINGS)
    old = orjson.dumps(person("P2", NEW_HOME))
    for partition in range(3):
        bus.append(partition, old)
    tasks = open_tasks(bus, tmp_path, SETTINGS)
    try:
        drain(bus, tasks)
    finally:
        tasks.close()
    letters = bus.records(bus.kafka.dead_letter_topic)
    assert len(letters) == 1 and letters[0]["raw"] == old.decode()
    assert bus.kafka.registry_topic in letters[0]["reason"]
    contacts, queues = _folded(bus)
    assert [a["subdistrict"] for a in contacts.values()] == [HOME] and list(queues) == [HOME]
