"""The Kafka worker: one member of the consumer group that shares the events topic's partitions.

Each assigned partition is a ``PartitionTask`` (its own RocksDB store and the unchanged embedded
engine); the worker fetches batches, has the tasks apply them in a thread (so the event loop keeps
heart-beating and delivering), then, in this order (commit, then send: streams/kafka/outbox.py):

1. each task's store commit: engine state + input position + the outputs to send (its outbox),
   one RocksDB batch;
2. the outboxes sent, every record acknowledged by the broker (``acks=all``);
3. the group's committed offset: "outputs delivered up to here", for whoever owns it next.

A partition newly assigned to this worker is set up from those two positions (``PartitionTask.resume``):
it sends its outbox again (if no one else went on meanwhile), replays silently what its local store
lacks up to the group offset, then continues emitting. With no local store, that rebuilds it from
the events topic (the topic is the changelog).

Before it joins the group, the worker reads the registry topic whole into its one registry store
(streams/kafka/registry.py), from the positions that store holds; then it keeps reading it, and
applies each registry batch between events batches: homes written, alerts of the persons read
moved in every partition, the partitions committed (the moves in their outboxes), then the
registry store (homes and positions in one write batch), then the moves sent.

Why aiokafka rather than a Faust agent: measured on the same topic (docs/kafka.md), Faust's
per-event stream machinery alone ran at 8,900-10,300 records/s and with this partition code at
7,400-8,500 (delivering nothing), this worker at 12,000-16,600 delivering its alerts, and aiokafka's
``getmany`` alone at 250,000-365,000/s; and the store-held offsets, the silent rebuild and the
outbox need seeks and commits at points Faust's own offset management decides for itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from connectors.kafka.settings import KafkaSettings
from connectors.kafka.topics import Topics, all_queues, base_topics
from streams.kafka.clients import fetch, open_admin, open_producer, open_reader, quietly, run_until_stopped
from streams.kafka.outbox import send
from streams.kafka.partition import PartitionTask
from streams.kafka.registry import RegistryTable
from tracer.errors import OutputError, StateError
from tracer.privacy import Pseudonymizer
from tracer.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Stats:
    """Progress for the periodic log line and for measurements."""

    records: int = 0  # of the events topic
    outputs: int = 0
    batches: int = 0
    apply_seconds: float = 0.0
    deliver_seconds: float = 0.0
    busy_since: float | None = None  # first events batch start: throughput counts from here
    busy_until: float = 0.0  # last events batch end
    registry_records: int = 0
    registry_seconds: float = 0.0  # handling registry batches (reading the topic whole, then its changes)
    recent: deque[tuple[int, float, float]] = field(default_factory=lambda: deque(maxlen=256))
    """(records, apply seconds, deliver-and-commit seconds) of the last batches: the worker's own
    share of latency, without the broker hops around it."""

    @property
    def records_per_second(self) -> float:
        busy = self.busy_until - self.busy_since if self.busy_since is not None else 0.0
        return self.records / busy if busy > 0 else 0.0

    def line(self) -> str:
        rate = self.records_per_second
        per_batch = 1000 * self.apply_seconds / self.batches if self.batches else 0.0
        deliver = 1000 * self.deliver_seconds / self.batches if self.batches else 0.0
        return (f"{self.records:,} records ({rate:,.0f}/s), {self.outputs:,} outputs, {self.batches:,} batches: "
                f"apply {per_batch:.1f} ms/batch, deliver {deliver:.1f} ms/batch; registry "
                f"{self.registry_records:,} records in {self.registry_seconds:.1f} s")


class Worker:
    """A consumer-group member owning some partitions of the events topic."""

    def __init__(
        self, settings: Settings, kafka: KafkaSettings, state_dir: Path, pseudonyms: Pseudonymizer | None = None
    ) -> None:
        self.settings, self.kafka, self.state_dir, self.pseudonyms = settings, kafka, state_dir, pseudonyms
        self.tasks: dict[int, PartitionTask] = {}
        self.registry: RegistryTable | None = None
        self.stats = Stats()
        self._lock = asyncio.Lock()  # one batch, or one rebalance step, at a time
        self._generation = 0  # assignments so far: a batch fetched before the last one is dropped
        self._failed: Exception | None = None
        self._stop = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None
        self.registry_consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.topics: Topics | None = None

    # -- run -------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        kafka = self.kafka
        admin = open_admin(kafka)
        self.producer = open_producer(kafka, "worker")
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap, client_id=kafka.client_id + "-worker", group_id=kafka.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=kafka.session_timeout_ms, heartbeat_interval_ms=kafka.heartbeat_interval_ms,
            max_poll_interval_ms=kafka.max_poll_interval_ms, fetch_max_wait_ms=kafka.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 << 20, fetch_max_bytes=32 << 20,
            request_timeout_ms=max(kafka.request_timeout_ms, kafka.session_timeout_ms + 5000))
        self.registry_consumer = open_reader(kafka, "registry")  # no group: every worker reads the whole registry
        try:
            await admin.start()
            self.topics = Topics(admin, self.producer, kafka)
            await self.topics.start(base_topics(kafka, all_queues(self.settings) if kafka.declare_queues else ()))
            await self.producer.start()
            await self.registry_consumer.start()
            await self._read_registry(stop)  # whole, before serving (a global table's restore)
            if not stop.is_set():
                await self.consumer.start()
                self.consumer.subscribe([kafka.events_topic], listener=_Listener(self))
                await self._loop(stop)
        except KafkaError as exc:
            raise OutputError(f"Kafka error on {kafka.broker}: {exc}") from exc
        finally:
            log.info("stopping: %s", self.stats.line())
            await quietly(self.consumer.stop())  # leaves the group: the others take over at once
            await quietly(self.registry_consumer.stop())
            await quietly(self.producer.stop())
            await quietly(admin.close())
            for task in self.tasks.values():
                task.close()
            self.tasks.clear()
            if self.registry is not None:
                self.registry.close()

    async def _read_registry(self, stop: asyncio.Event) -> None:
        """Open the registry store and read the registry topic from its positions to the end."""
        consumer, topic = self.registry_consumer, self.kafka.registry_topic
        assert consumer is not None
        await consumer.topics()  # fresh metadata: the topic may have just been created
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            raise StateError(f"topic {topic} has no partitions")
        self.registry = await asyncio.to_thread(RegistryTable, self.state_dir, len(partitions), self.settings,
                                                self.kafka)
        tps = [TopicPartition(topic, number) for number in partitions]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, self.registry.position(tp.partition))
        ends: dict[TopicPartition, int] = {}  # the high watermarks when first seen: read up to them
        started = time.perf_counter()
        every = self.kafka.stats_every_seconds
        note = time.monotonic() + every if every > 0 else float("inf")
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
            if batch:
                await self._handle_registry(batch)
            if time.monotonic() >= note:
                log.info("reading the registry: %s records so far", f"{self.registry.progress.lines:,}")
                note = time.monotonic() + every
            ends.update({tp: end for tp in tps if tp not in ends and (end := consumer.highwater(tp)) is not None})
            if len(ends) == len(tps) and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                break
        log.info("registry read: %s records in %.1f s", f"{self.registry.progress.lines:,}",
                 time.perf_counter() - started)

    async def _follow_registry(self, stopping: asyncio.Future) -> None:
        """Apply registry changes as they come, between events batches."""
        assert self.registry_consumer is not None
        try:
            while (batch := await fetch(self.registry_consumer, stopping, self.kafka.batch_max_records)) is not None:
                if batch:
                    await self._handle_registry(batch)
        except Exception as exc:
            self.fail(exc)

    async def _handle_registry(self, batch: dict[TopicPartition, list]) -> None:
        """Apply registry records to the table and every partition, commit the partitions (the
        alerts that moved in their outboxes) and then the table (a crash before it re-reads the
        records, whose moves are then no-ops), then send the moves."""
        assert self.registry is not None
        async with self._lock:
            started = time.perf_counter()
            tasks = list(self.tasks.values())
            await asyncio.to_thread(_apply_registry, self.registry, batch, tasks)
            await asyncio.to_thread(_commit_all, [*tasks, self.registry])
            self.stats.outputs += await self._send(tasks)
            self.stats.registry_records += sum(len(records) for records in batch.values())
            self.stats.registry_seconds += time.perf_counter() - started

    async def _loop(self, stop: asyncio.Event) -> None:
        assert self.consumer is not None
        every = self.kafka.stats_every_seconds
        next_stats = time.monotonic() + every if every > 0 else float("inf")
        stopping = asyncio.ensure_future(_first(stop.wait(), self._stop.wait()))
        registry = asyncio.ensure_future(self._follow_registry(stopping))
        try:
            while not stopping.done():
                generation = self._generation
                batch = await fetch(self.consumer, stopping, self.kafka.batch_max_records)
                if batch is None:
                    break
                if batch:
                    async with self._lock:
                        if generation == self._generation:
                            await self._handle(batch)
                        else:  # fetched across a rebalance: fetch again from the tasks' positions
                            self._seek_all()
                if time.monotonic() >= next_stats:
                    log.info("%s", self.stats.line())
                    next_stats = time.monotonic() + every
        finally:
            stopping.cancel()
            await registry  # it finishes the registry batch in hand first
        if self._failed is not None:
            raise self._failed

    async def _handle(self, batch: dict[TopicPartition, list]) -> None:
        """Apply one fetched batch, commit the stores, send their outboxes, commit group offsets."""
        work = [(self.tasks[tp.partition], records) for tp, records in batch.items()
                if tp.partition in self.tasks]  # a partition revoked since the fetch is skipped
        if not work:
            return
        started = time.perf_counter()
        if self.stats.busy_since is None:
            self.stats.busy_since = started
        await asyncio.to_thread(_apply_all, work)
        applied = time.perf_counter()
        tasks = [task for task, _ in work]
        await asyncio.to_thread(_commit_all, tasks)
        sent = await self._send(tasks)
        await self._commit_offsets(tasks)
        count = sum(len(records) for _, records in work)
        stats, ended = self.stats, time.perf_counter()
        stats.records += count
        stats.outputs += sent
        stats.batches += 1
        stats.apply_seconds += applied - started
        stats.deliver_seconds += ended - applied
        stats.busy_until = ended
        stats.recent.append((count, applied - started, ended - applied))

    async def _send(self, tasks: Sequence[PartitionTask]) -> int:
        """Send the committed outboxes of ``tasks``; returns how many records they held."""
        assert self.producer is not None and self.topics is not None
        return await send(self.producer, self.topics, tasks)

    async def _commit_offsets(self, tasks: Iterable[PartitionTask]) -> None:
        """Tell the group where outputs are delivered up to (never backwards)."""
        assert self.consumer is not None
        due = [(task, offset) for task in tasks if (offset := max(task.position, task.emit_from)) > task.group_offset]
        if not due:
            return
        try:
            await self.consumer.commit({TopicPartition(self.kafka.events_topic, task.partition): offset
                                        for task, offset in due})
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("group offset commit skipped (%s); the next owner repeats some outputs", exc)
            return
        for task, offset in due:
            task.group_offset = offset

    def fail(self, exc: Exception) -> None:
        """Stop the worker with ``exc`` (from a rebalance callback, where raising is swallowed)."""
        log.error("worker failed: %s", exc)
        self._failed = self._failed or exc
        self._stop.set()

    # -- rebalance -------------------------------------------------------------------------
    async def revoked(self, partitions: set[TopicPartition]) -> None:
        async with self._lock:  # the batch in progress finishes and commits first
            mine = [self.tasks[tp.partition] for tp in partitions if tp.partition in self.tasks]
            await self._commit_offsets(mine)
            log.info("partitions revoked: %s", sorted(tp.partition for tp in partitions))

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        assert self.consumer is not None
        async with self._lock:
            self._generation += 1
            keep = {tp.partition for tp in partitions if tp.topic == self.kafka.events_topic}
            for number in [n for n in self.tasks if n not in keep]:
                self.tasks.pop(number).close()
            for number in sorted(keep):
                await self._set_up(number)
            log.info("partitions assigned: %s", sorted(keep))

    async def _set_up(self, number: int) -> None:
        assert self.consumer is not None and self.registry is not None
        tp = TopicPartition(self.kafka.events_topic, number)
        new = number not in self.tasks
        if new:
            self.tasks[number] = await asyncio.to_thread(
                PartitionTask, self.state_dir, tp.topic, number, self._partition_count(), self.settings, self.kafka,
                self.registry.store, self.pseudonyms)
        task = self.tasks[number]
        delivered = await self.consumer.committed(tp)
        position = await asyncio.to_thread(task.resume, delivered)
        if new:  # registry records read while its store was closed (or elsewhere) move its alerts now
            await asyncio.to_thread(task.refresh)
        if task.outbox:  # what the last run committed and may not have sent, with those moves
            await asyncio.to_thread(task.commit)
            await self._send([task])
        await self._commit_offsets([task])  # a store ahead of the group offset: all it made is sent
        if delivered is not None and position < delivered:
            log.info("partition %d: rebuilding %d..%d silently from the topic", number, position, delivered)
        self.consumer.seek(tp, position)

    def _seek_all(self) -> None:
        assert self.consumer is not None
        for number, task in self.tasks.items():
            self.consumer.seek(TopicPartition(self.kafka.events_topic, number), task.position)

    def _partition_count(self) -> int:
        """Partitions of the events topic; ownership of service days depends on it, so it must not change."""
        assert self.consumer is not None
        count = len(self.consumer.partitions_for_topic(self.kafka.events_topic) or ())
        if count < 1:
            raise StateError(f"topic {self.kafka.events_topic} has no partitions")
        return count


class _Listener(ConsumerRebalanceListener):
    """Passes rebalances to the worker; an error there stops the worker (aiokafka would only log it)."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        try:
            await self._worker.revoked(revoked)
        except Exception as exc:
            self._worker.fail(exc)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await self._worker.assigned(assigned)
        except Exception as exc:
            self._worker.fail(exc)


def _apply_all(work: list[tuple[PartitionTask, list]]) -> None:
    for task, records in work:
        task.process(records)


def _apply_registry(table: RegistryTable, batch: dict[TopicPartition, list], tasks: list[PartitionTask]) -> None:
    for tp, records in batch.items():
        table.apply(tp.partition, records, tasks)


def _commit_all(stores: Sequence[PartitionTask | RegistryTable]) -> None:
    for store in stores:
        store.commit()


async def _first(*waits: Awaitable[object]) -> None:
    """Return when the first of ``waits`` does (cancelling the others)."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def run_worker(
    settings: Settings, kafka: KafkaSettings, state_dir: Path, pseudonyms: Pseudonymizer | None = None
) -> Stats:
    """Run one worker until SIGINT or SIGTERM; returns its counters. ``pseudonyms``: person ids in the
    contacts topic (values and keys) become keyed HMACs; street-office queues keep real ids, and so
    does the private contacts topic, which the views read (streams/kafka/views.py)."""
    worker = Worker(settings, kafka, state_dir, pseudonyms)
    run_until_stopped(state_dir, worker.run)
    return worker.stats
