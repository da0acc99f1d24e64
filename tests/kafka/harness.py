"""Helpers for the Kafka tests: an in-memory events topic, folding, and the embedded reference.

``MemoryBus`` stands in for the broker in the pure tests of the partitioned design: the events
topic is one list per partition, worker-made records are appended to those lists (as the broker
would), and every other output is kept per topic. It lets the tests interleave partitions, lose
a store or crash between delivery and commit, deterministically and in milliseconds.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from connectors.kafka.routing import COPY_HEADER, SEQ_HEADER, partitions_of
from connectors.kafka.settings import KafkaSettings
from streams.embedded import run_embedded
from streams.kafka.partition import Output, PartitionTask
from tracer.alerts import fold
from tracer.errors import InvalidEvent
from tracer.events import parse_line
from tracer.settings import Settings, load_settings


class Rec(NamedTuple):
    offset: int
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class MemoryBus:
    """The events topic (a list per partition) and the output topics, in memory."""

    def __init__(self, partitions: int, kafka: KafkaSettings | None = None) -> None:
        self.kafka = kafka or KafkaSettings(events_partitions=partitions)
        self.logs: list[list[Rec]] = [[] for _ in range(partitions)]
        self.topics: dict[str, list[bytes]] = defaultdict(list)

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
            _, targets = partitions_of(event, len(self.logs))
            for partition in targets:
                self.append(partition, line, ((SEQ_HEADER, f"{index:012d}".encode()),))
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


def open_tasks(bus: MemoryBus, state: Path, settings: Settings) -> list[PartitionTask]:
    return [PartitionTask(state, bus.kafka.events_topic, p, len(bus.logs), settings, bus.kafka)
            for p in range(len(bus.logs))]


def drain(bus: MemoryBus, tasks: list[PartitionTask], batch: int = 64, seed: int = 0) -> None:
    """Run the tasks until no partition has unread records, in a random interleaving of batches."""
    rng = random.Random(seed)
    while True:
        ready = [t for t in tasks if t.position < len(bus.logs[t.partition])]
        if not ready:
            return
        task = rng.choice(ready)
        records = bus.logs[task.partition][task.position:task.position + rng.randint(1, batch)]
        bus.deliver(task.process(records))
        task.commit()


def run_partitioned(lines: list[bytes], state: Path, settings: Settings, partitions: int, seed: int) -> MemoryBus:
    """Publish ``lines`` to a memory bus and drain it through one task per partition (no broker)."""
    bus = MemoryBus(partitions)
    bus.publish(lines, settings)
    tasks = open_tasks(bus, state, settings)
    try:
        drain(bus, tasks, seed=seed)
    finally:
        for task in tasks:
            task.close()
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
