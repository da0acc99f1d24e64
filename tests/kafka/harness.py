"""Helpers for the Kafka tests: an in-memory events topic, folding, and the embedded reference.

``MemoryBus`` stands in for the broker in the pure tests of the partitioned design: the events and
registry topics are one list per partition, worker-made records are appended to those lists (as the
broker would), every other output is kept per topic, and the workers' group offsets in a dict. It
lets the tests interleave partitions, lose a store or crash anywhere between a batch's apply, its
commit, its sending and its group offset, deterministically and in milliseconds.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from connectors.kafka.routing import COPY_HEADER, SEQ_HEADER, placement
from connectors.kafka.settings import KafkaSettings
from streams.embedded import run_embedded
from streams.kafka.outbox import Output
from streams.kafka.partition import PartitionTask
from streams.kafka.registry import RegistryTable
from streams.kafka.views import ViewTask
from tracer.alerts import fold
from tracer.errors import InvalidEvent
from tracer.events import parse_line
from tracer.privacy import Pseudonymizer
from tracer.settings import Settings, load_settings


class Rec(NamedTuple):
    offset: int
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    key: bytes | None = None


CRASHES = ("applied", "committed", "half sent", "sent")  # where a worker can die in a batch (``MemoryBus.step``)


class MemoryBus:
    """The events topic (a list per partition), the registry topic (the same) and the output
    topics, in memory."""

    def __init__(self, partitions: int, kafka: KafkaSettings | None = None) -> None:
        self.kafka = kafka or KafkaSettings(events_partitions=partitions, registry_partitions=2)
        self.logs: list[list[Rec]] = [[] for _ in range(partitions)]
        self.registry: list[list[Rec]] = [[] for _ in range(self.kafka.registry_partitions)]
        self.topics: dict[str, list[bytes]] = defaultdict(list)
        self.committed: dict[int, int] = {}  # the consumer group's offset of each events partition

    def publish(self, lines: Iterable[bytes], settings: Settings) -> int:
        """What ``tracer publish`` does, into memory; returns the dead-letter count."""
        dead = 0
        max_ride_us = int(settings.rules.max_ride_hours * 3_600_000_000)
        for index, line in enumerate(lines):
            try:
                event = parse_line(line, max_ride_us)
            except InvalidEvent:
                dead += 1
                continue
            topic, key, targets = placement(event, self.kafka, len(self.logs), len(self.registry))
            headers = ((SEQ_HEADER, f"{index:012d}".encode()),)
            for partition in targets:
                log = (self.registry if topic == self.kafka.registry_topic else self.logs)[partition]
                log.append(Rec(len(log), line, headers, key))
        return dead

    def append(self, partition: int, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()) -> None:
        log = self.logs[partition]
        log.append(Rec(len(log), value, headers))

    def deliver(self, outputs: Iterable[Output]) -> None:
        for output in outputs:
            if output.topic == self.kafka.events_topic:
                assert output.partition is not None and output.copy is not None
                self.append(output.partition, output.value, ((COPY_HEADER, output.copy),))
            else:
                self.topics[output.topic].append(output.value)

    def records(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(value) for value in self.topics.get(topic, [])]

    def send(self, tasks: Iterable[PartitionTask]) -> None:
        """What the worker does once the tasks' stores have committed: send their outboxes."""
        for task in tasks:
            self.deliver(task.outbox)
            task.delivered()

    def commit_offsets(self, tasks: Iterable[PartitionTask]) -> None:
        """Then the group offsets, as streams/kafka/worker.py does: "outputs delivered up to here"."""
        for task in tasks:
            offset = max(task.position, task.emit_from)
            if offset > task.group_offset:
                self.committed[task.partition] = task.group_offset = offset

    def step(self, task: PartitionTask, records: Iterable[Rec], crash: str | None = None) -> None:
        """One fetched batch of one partition through the worker's steps: apply, commit, send, commit
        the group offset; ``crash`` (one of ``CRASHES``): the worker dies there."""
        task.process(list(records))
        if crash == "applied":
            return
        task.commit()
        if crash == "committed":
            return
        if crash == "half sent":
            self.deliver(task.outbox[:len(task.outbox) // 2])
            return
        self.send([task])
        if crash != "sent":
            self.commit_offsets([task])


class Partitions(list[PartitionTask]):
    """One worker holding every partition of the bus: a task each and the registry table they
    share, as streams/kafka/worker.py keeps them. Opening reads the registry topic whole first,
    then opens the tasks, resumes them from the group offsets, moves their alerts to the homes read
    (``PartitionTask.refresh``) and sends their outboxes (that of the last commit, after a crash)."""

    def __init__(self, bus: MemoryBus, state: Path, settings: Settings, pseudonyms: Pseudonymizer | None = None):
        self.table = RegistryTable(state, len(bus.registry), settings, bus.kafka)
        while self.read_registry(bus, 1 << 30):
            pass
        super().__init__(PartitionTask(state, bus.kafka.events_topic, p, len(bus.logs), settings, bus.kafka,
                                       self.table.store, pseudonyms) for p in range(len(bus.logs)))
        for task in self:
            task.resume(bus.committed.get(task.partition))
            task.refresh()
            task.commit()
        bus.send(self)
        bus.commit_offsets(self)

    def read_registry(self, bus: MemoryBus, batch: int, rng: random.Random | None = None) -> bool:
        """Apply up to ``batch`` unread records of one registry partition (the first with some, or a
        random one), as the worker does: commit the tasks, then the table, then send. False: none left."""
        ready = [p for p, log in enumerate(bus.registry) if self.table.position(p) < len(log)]
        if not ready:
            return False
        partition = rng.choice(ready) if rng else ready[0]
        start = self.table.position(partition)
        self.table.apply(partition, bus.registry[partition][start:start + batch], self)
        for task in self:
            task.commit()
        self.table.commit()
        bus.send(self)
        return True

    def close(self) -> None:
        for task in self:
            task.close()
        self.table.close()


def open_tasks(bus: MemoryBus, state: Path, settings: Settings, pseudonyms: Pseudonymizer | None = None) -> Partitions:
    return Partitions(bus, state, settings, pseudonyms)


class ViewReader:
    """The view process over a memory bus: ``step`` hands a ``ViewTask`` a random batch of the unread
    records of the topics it reads (the contacts topics as one partition each), then commits, as
    streams/kafka/view_process.py does, and keeps the status records it would send."""

    def __init__(self, bus: MemoryBus, task: ViewTask) -> None:
        self.bus, self.task = bus, task
        self.statuses: list[dict[str, Any]] = []

    def sources(self) -> dict[tuple[str, int], list[Rec]]:
        kafka = self.bus.kafka
        found = {(kafka.events_topic, p): log for p, log in enumerate(self.bus.logs)}
        for topic in (kafka.contacts_topic, kafka.private_contacts_topic):
            found[(topic, 0)] = [Rec(i, value) for i, value in enumerate(self.bus.topics.get(topic, []))]
        return found

    def ready(self) -> bool:
        return any(self.task.position(*where) < len(log) for where, log in self.sources().items())

    def step(self, rng: random.Random, batch: int, commit: bool = True) -> None:
        sources = self.sources()
        ready = [where for where, log in sources.items() if self.task.position(*where) < len(log)]
        fetched = {}
        for where in rng.sample(ready, rng.randint(1, len(ready))):
            start = self.task.position(*where)
            fetched[where] = sources[where][start:start + rng.randint(1, batch)]
        self.task.apply(fetched)
        if commit:
            self.task.commit()
            self.sent()

    def sent(self) -> None:
        """The outbox delivered."""
        self.statuses += [orjson.loads(status.value) for status in self.task.outbox]
        self.task.delivered()

    def drain(self, rng: random.Random, batch: int = 64) -> None:
        while self.ready():
            self.step(rng, batch)


def drain(bus: MemoryBus, tasks: Partitions, batch: int = 64, seed: int = 0, views: ViewReader | None = None) -> None:
    """Run the tasks until no partition has unread records (the registry's included), in a random
    interleaving of batches; and ``views``, interleaved with them, until it has read everything too."""
    rng = random.Random(seed)
    while True:
        ready: list[PartitionTask | None] = [t for t in tasks if t.position < len(bus.logs[t.partition])]
        if any(tasks.table.position(p) < len(log) for p, log in enumerate(bus.registry)):
            ready.append(None)  # the registry's turn
        if not ready:
            if views is not None:
                views.drain(rng, batch)
            return
        if views is not None and views.ready() and rng.random() < 0.3:
            views.step(rng, batch)
            continue
        task = rng.choice(ready)
        if task is None:
            tasks.read_registry(bus, rng.randint(1, batch), rng)
            continue
        bus.step(task, bus.logs[task.partition][task.position:task.position + rng.randint(1, batch)])


def run_partitioned(lines: list[bytes], state: Path, settings: Settings, partitions: int, seed: int) -> MemoryBus:
    """Publish ``lines`` to a memory bus and drain it through one task per partition (no broker)."""
    bus = MemoryBus(partitions)
    bus.publish(lines, settings)
    tasks = open_tasks(bus, state, settings)
    try:
        drain(bus, tasks, seed=seed)
    finally:
        tasks.close()
    return bus


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


class Reference(NamedTuple):
    """The embedded runner's folded outputs on a stream."""

    contacts: dict[str, dict[str, Any]]
    queues: dict[str, dict[str, dict[str, Any]]]
    dead_letters: int


def embedded_reference(events: Path, out: Path, settings: Settings | None = None) -> Reference:
    run_embedded([str(events)], out, settings or load_settings())
    queues = {path.stem: fold(read_jsonl(path)) for path in sorted((out / "alerts").glob("*.jsonl"))}
    dead = len(read_jsonl(out / "dead-letter.jsonl"))
    return Reference(fold(read_jsonl(out / "contacts.jsonl")), {k: v for k, v in queues.items() if v}, dead)


def queues_of(topics: dict[str, list[dict[str, Any]]], prefix: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Folded street-office queues from output topics named ``prefix + code``."""
    found = {name[len(prefix):]: fold(records) for name, records in topics.items() if name.startswith(prefix)}
    return {k: v for k, v in found.items() if v}


def write_config(kafka: KafkaSettings, path: Path) -> Path:
    """A TOML file whose [kafka] section is ``kafka`` (a worker process's ``--config``)."""
    lines = ["[kafka]"]
    for name, value in asdict(kafka).items():
        if isinstance(value, bool):
            lines.append(f"{name} = {'true' if value else 'false'}")
        elif isinstance(value, str):
            lines.append(f"{name} = {orjson.dumps(value).decode()}")
        else:
            lines.append(f"{name} = {value}")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path
