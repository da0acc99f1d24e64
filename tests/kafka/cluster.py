"""Broker-side helpers for the end-to-end tests: worker processes, catching up, reading outputs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from connectors.kafka.settings import KafkaSettings
from graph.keys import KAFKA_POSITION, META, group
from graph.store import RocksStore
from tests.kafka.conftest import ROOT, tracer_command


class WorkerProcess:
    """``tracer worker`` (or another long-running command, ``tracer views``) in its own process,
    logging to a file."""

    def __init__(self, name: str, config: Path, state: Path, logs: Path, command: str = "worker") -> None:
        self.name, self.config, self.state, self.command = name, config, state, command
        self.log = logs / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        verbose = ["-v"] if os.environ.get("TRACER_KAFKA_VERBOSE") else []  # client debug logs, to debug
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                tracer_command(*verbose, self.command, "--config", str(self.config), "--state", str(self.state)),
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no leaving the group."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int:
        """SIGTERM: finish the batch, leave the group; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.terminate()
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def text(self) -> str:
        return self.log.read_text("utf-8", errors="replace") if self.log.exists() else ""


def group_offsets(kafka: KafkaSettings) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        found = admin.list_group_offsets(kafka.group_id).get(kafka.group_id, {})
        return {tp.partition: meta.offset for tp, meta in found.items() if tp.topic == kafka.events_topic}
    finally:
        admin.close()


def high_watermarks(kafka: KafkaSettings, consumer: KafkaConsumer, near: dict[int, int],
                    topic: str | None = None) -> dict[int, int]:
    """Exact ends of the events (or contacts) topic's partitions, from fetch responses (not ``end_offsets``)."""
    topic = topic or kafka.events_topic
    count = kafka.events_partitions if topic == kafka.events_topic else kafka.contacts_partitions
    tps = [TopicPartition(topic, p) for p in range(count)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, near.get(tp.partition, 0))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        consumer.poll(timeout_ms=200, max_records=1)
        ends = {tp.partition: consumer.highwater(tp) for tp in tps}
        if all(end is not None for end in ends.values()):
            return ends  # type: ignore[return-value]
    raise AssertionError(f"no high watermark for {topic}")


def wait_caught_up(kafka: KafkaSettings, workers: list[WorkerProcess], timeout: float = 90) -> float:
    """Wait until the group has delivered everything in the events topic (twice in a row); returns when."""
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    deadline, streak = time.monotonic() + timeout, 0
    try:
        while time.monotonic() < deadline:
            for worker in workers:
                code = worker.process.poll() if worker.process else None
                assert code is None, f"{worker.name} exited with {code}:\n{worker.text()[-3000:]}"
            offsets = group_offsets(kafka)
            ends = high_watermarks(kafka, consumer, offsets)
            streak = streak + 1 if all(offsets.get(p, 0) == end for p, end in ends.items()) else 0
            if streak >= 2:
                return time.monotonic()
            time.sleep(0.5)
    finally:
        consumer.close()
    logs = "\n".join(f"--- {w.name}\n{w.text()[-3000:]}" for w in workers)
    raise AssertionError(f"workers did not catch up within {timeout} s: {group_offsets(kafka)}\n{logs}")


def view_positions(state: Path) -> dict[str, int]:
    """The next offset of every topic partition a ``tracer views`` store has committed."""
    store = RocksStore(state, read_only=True)
    try:
        meta = store.get(group(META), KAFKA_POSITION)
        return orjson.loads(meta)["next"] if meta else {}
    finally:
        store.close()


def wait_views_caught_up(kafka: KafkaSettings, views: WorkerProcess, timeout: float = 90) -> None:
    """Wait until ``tracer views`` has committed every record of the events and contacts topics."""
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            assert views.process is not None and views.process.poll() is None, views.text()[-3000:]
            ends = {f"{topic}/{p}": end for topic in (kafka.events_topic, kafka.contacts_topic)
                    for p, end in high_watermarks(kafka, consumer, {}, topic).items()}
            if views.state.exists() and all(view_positions(views.state).get(k, 0) >= end for k, end in ends.items()):
                return
            time.sleep(0.5)
    finally:
        consumer.close()
    raise AssertionError(f"{views.name} did not catch up within {timeout} s:\n{views.text()[-3000:]}")


def read_outputs(kafka: KafkaSettings) -> dict[str, list[dict[str, Any]]]:
    """Every record of the contacts and queue topics, by topic, in each partition's order."""
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        names = [t for t in consumer.topics() if t == kafka.contacts_topic or t.startswith(kafka.queue_topic_prefix)]
        tps = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        deadline = time.monotonic() + 60
        while any(consumer.highwater(tp) is None or consumer.position(tp) < consumer.highwater(tp) for tp in tps):
            assert time.monotonic() < deadline, "outputs not read within 60 s"
            for tp, records in consumer.poll(timeout_ms=300).items():
                found[tp.topic] += [orjson.loads(r.value) for r in records]
        return dict(found)
    finally:
        consumer.close()
