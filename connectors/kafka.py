"""Kafka connectors for the command line (kafka-python): topic set-up, publish, subscribe, replay input.

These are plain blocking clients on purpose: they run in the CLI, never inside the asyncio worker.

Placement (streams/kafka_routing.py, docs/kafka.md): a trip goes to the partition of its service
day (``date\\x1fmode\\x1fservice`` with Kafka's murmur2 partitioner, so another producer keyed the
same way lands on the same partition); every case, published exposure, person and quarantine goes
to every partition. Every record carries a ``tracer-seq`` header (publish run + line number)
so that the replay reader can put the partitions back into the order they were published in.
"""

from __future__ import annotations

import heapq
import logging
import os
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from connectors.files import dead_letter, read_lines
from streams.kafka_routing import COPY_HEADER, SEQ_HEADER, placement
from streams.kafka_settings import KafkaSettings
from tracer.errors import InputError, InvalidEvent, OutputError
from tracer.events import parse_line
from tracer.registry import Subdistricts
from tracer.settings import Settings

log = logging.getLogger(__name__)
_DAY_MS = 86_400_000
TOPIC_ALREADY_EXISTS = 36  # Kafka's error code


# -- topics ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def base_topics(kafka: KafkaSettings, queues: Iterable[str] = ()) -> list[TopicSpec]:
    """The events, contacts and dead-letter topics, and the queue topics of ``queues``."""
    insync = {"min.insync.replicas": str(kafka.min_insync_replicas)}
    specs = [
        TopicSpec(kafka.events_topic, kafka.events_partitions,
                  {**insync, "cleanup.policy": "delete",
                   "retention.ms": str(kafka.events_retention_days * _DAY_MS)}),
        TopicSpec(kafka.contacts_topic, kafka.contacts_partitions, insync),
        TopicSpec(kafka.dead_letter_topic, kafka.dead_letter_partitions, insync),
    ]
    specs += [queue_spec(kafka, queue) for queue in queues]
    return specs


def queue_spec(kafka: KafkaSettings, queue: str) -> TopicSpec:
    return TopicSpec(kafka.queue_topic(queue), kafka.queue_partitions,
                     {"min.insync.replicas": str(kafka.min_insync_replicas)})


def all_queues(settings: Settings) -> list[str]:
    """Every street-office queue: the subdistrict list (``registry.subdistricts``) plus ``unassigned``."""
    from tracer.alerts import UNASSIGNED

    return [*sorted(Subdistricts.load(settings).codes), UNASSIGNED]


def ensure_topics(kafka: KafkaSettings, specs: Sequence[TopicSpec]) -> None:
    """Create the topics that do not exist yet (existing ones are left as they are)."""
    admin = _admin(kafka)
    try:
        existing = set(admin.list_topics())
        missing = {s.name: {"num_partitions": s.partitions, "replication_factor": kafka.replication_factor,
                            "configs": s.configs} for s in specs if s.name not in existing}
        if not missing:
            return
        result = admin.create_topics(missing, raise_errors=False)
        for topic in result.get("topics", []):
            if topic["error_code"] not in (0, TOPIC_ALREADY_EXISTS):
                raise OutputError(f"cannot create topic {topic['name']}: error {topic['error_code']} "
                                  f"{topic.get('error_message') or ''}".rstrip())
        admin.wait_for_topics(list(missing), timeout_ms=kafka.request_timeout_ms)
    except KafkaError as exc:
        raise OutputError(f"cannot set up topics on {kafka.broker}: {exc}") from exc
    finally:
        admin.close()


def _admin(kafka: KafkaSettings) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(bootstrap_servers=kafka.bootstrap, client_id=kafka.client_id + "-admin",
                                request_timeout_ms=kafka.request_timeout_ms,
                                bootstrap_timeout_ms=kafka.request_timeout_ms)
    except KafkaError as exc:
        raise OutputError(f"cannot reach the broker {kafka.broker}: {exc}") from exc


# -- publish -----------------------------------------------------------------------------------
@dataclass
class PublishSummary:
    events: Counter[str] = field(default_factory=Counter)
    records: int = 0
    dead_letters: int = 0
    warnings: int = 0  # lines published but reported in the dead letters (tracer/registry.py)
    partitions: int = 0
    seconds: float = 0.0


def publish(paths: Sequence[str], settings: Settings, kafka: KafkaSettings) -> PublishSummary:
    """Validate JSON lines and load them into the events topic; bad lines go to the dead letters.

    A person of an unknown subdistrict is published as it is (each partition sends them to
    ``unassigned`` itself) and reported here, once, as a warning dead letter."""
    subdistricts = Subdistricts.load(settings)
    ensure_topics(kafka, base_topics(kafka, all_queues(settings) if kafka.declare_queues else ()))
    producer = _producer(kafka)
    summary = PublishSummary()
    started = time.perf_counter()
    failures: list[BaseException] = []

    def send_dead(path: str, letter: bytes) -> None:
        producer.send(kafka.dead_letter_topic, value=letter, key=path.encode()).add_errback(failures.append)

    try:
        partitions = sorted(producer.partitions_for(kafka.events_topic) or ())
        if partitions != list(range(len(partitions))) or not partitions:
            raise OutputError(f"topic {kafka.events_topic} has no usable partitions: {partitions}")
        summary.partitions = len(partitions)
        run = f"{time.time_ns():020d}.{os.getpid() % 10_000_000:07d}"
        max_ride_us = int(settings.rules.max_ride_hours * 3_600_000_000)
        max_bytes = settings.runtime.max_line_bytes
        index = 0
        for path in paths:
            for number, _, data, too_long in read_lines(path, 0, 0, max_bytes):
                index += 1
                try:
                    if too_long:
                        raise InvalidEvent(f"line longer than max_line_bytes ({max_bytes})")
                    event, warning = subdistricts.check(parse_line(data, max_ride_us))
                except InvalidEvent as exc:
                    send_dead(path, dead_letter(path, number, data, exc.reason))
                    summary.dead_letters += 1
                    continue
                if warning is not None:
                    send_dead(path, dead_letter(path, number, data, warning, severity="warning"))
                    summary.warnings += 1
                key, targets = placement(event, len(partitions))
                headers = [(SEQ_HEADER, f"{run}.{index:012d}".encode())]
                for partition in targets:
                    producer.send(kafka.events_topic, value=data, key=key, partition=partition,
                                  headers=headers).add_errback(failures.append)
                summary.records += len(targets)
                summary.events[type(event).__name__.lower()] += 1
                if failures:
                    break
        producer.flush()
    except KafkaError as exc:
        raise OutputError(f"cannot publish to {kafka.broker}: {exc}") from exc
    finally:
        producer.close()
    if failures:
        raise OutputError(f"cannot publish to {kafka.broker}: {failures[0]}")
    summary.seconds = time.perf_counter() - started
    return summary


def _producer(kafka: KafkaSettings) -> KafkaProducer:
    try:
        return KafkaProducer(bootstrap_servers=kafka.bootstrap, client_id=kafka.client_id + "-publish",
                             acks="all", linger_ms=max(kafka.producer_linger_ms, 20),
                             batch_size=kafka.producer_max_batch_bytes,
                             request_timeout_ms=kafka.request_timeout_ms,
                             bootstrap_timeout_ms=kafka.request_timeout_ms, max_block_ms=kafka.request_timeout_ms)
    except KafkaError as exc:
        raise OutputError(f"cannot reach the broker {kafka.broker}: {exc}") from exc


# -- subscribe ---------------------------------------------------------------------------------
def subscribe(kafka: KafkaSettings, topic: str, out: IO[bytes], *, from_beginning: bool = False,
              idle_exit: float | None = None, group: str | None = None) -> int:
    """Copy a topic's records to ``out`` as JSON lines until idle for ``idle_exit`` seconds (or forever).

    Without ``group`` nothing is committed and reading starts at the beginning or the end; with a
    group, a restarted subscriber continues where it stopped. A topic that does not exist yet (queues
    are created on first use) is waited for. Returns the number of records written.
    """
    consumer = _consumer(kafka, group, from_beginning)
    written = 0
    try:
        last = time.monotonic()
        tps = _wait_for_partitions(consumer, topic, last, idle_exit)
        if tps is None:
            return 0
        if group is None:
            consumer.assign(tps)
            if from_beginning:
                consumer.seek_to_beginning(*tps)
            else:
                _seek_to_live_end(consumer, tps)
        else:
            consumer.subscribe([topic])
        joined = group is None  # a group member is idle only once it has partitions
        while True:
            batch = consumer.poll(timeout_ms=200, max_records=5000)
            for records in batch.values():
                out.write(b"".join(r.value + b"\n" for r in records))
                written += len(records)
            if not joined and consumer.assignment():
                joined, last = True, time.monotonic()
            if batch:
                out.flush()
                last = time.monotonic()
            elif idle_exit is not None and time.monotonic() - last >= idle_exit + (
                    0 if joined else kafka.session_timeout_ms / 1000):
                return written
    except KafkaError as exc:
        raise InputError(f"cannot read {topic} from {kafka.broker}: {exc}") from exc
    finally:
        consumer.close()


def _consumer(kafka: KafkaSettings, group: str | None, from_beginning: bool) -> KafkaConsumer:
    try:
        return KafkaConsumer(bootstrap_servers=kafka.bootstrap, client_id=kafka.client_id + "-subscribe",
                             group_id=group, enable_auto_commit=group is not None,
                             auto_offset_reset="earliest" if from_beginning else "latest",
                             session_timeout_ms=kafka.session_timeout_ms,
                             heartbeat_interval_ms=kafka.heartbeat_interval_ms,
                             fetch_max_wait_ms=kafka.fetch_max_wait_ms,
                             request_timeout_ms=max(kafka.request_timeout_ms, kafka.session_timeout_ms + 5000),
                             bootstrap_timeout_ms=kafka.request_timeout_ms)
    except KafkaError as exc:
        raise InputError(f"cannot reach the broker {kafka.broker}: {exc}") from exc


def _seek_to_live_end(consumer: KafkaConsumer, tps: list[TopicPartition]) -> None:
    """Position after the last record that exists now.

    ``seek_to_end`` trusts the broker's answer for the latest offset, which some brokers (Tansu)
    give as the first offset of the last batch; the high watermark returned with a fetch is exact.
    So: seek to that answer, fetch, and drop what lies below the fetched high watermark.
    """
    consumer.seek_to_end(*tps)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        consumer.poll(timeout_ms=200, max_records=100000)  # records before the end: not printed
        if all(consumer.highwater(tp) is not None and consumer.position(tp) >= consumer.highwater(tp)
               for tp in tps):
            return


def _wait_for_partitions(consumer: KafkaConsumer, topic: str, since: float,
                         idle_exit: float | None) -> list[TopicPartition] | None:
    """The topic's partitions, once it exists; None when ``idle_exit`` passes first."""
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        if idle_exit is not None and time.monotonic() - since >= idle_exit:
            return None
        time.sleep(0.2)
        consumer.topics()  # refreshes the metadata


# -- replay input ------------------------------------------------------------------------------
def download_events(kafka: KafkaSettings, path: Path, progress: Callable[[int], None] | None = None) -> int:
    """Write the events topic, as it is now, to ``path`` in publish order; returns the line count.

    Reads with no consumer group (the workers' offsets stay untouched). Partitions are spilled to
    temporary files and merged by the ``tracer-seq`` header; the fan-out copies of a case or person
    collapse back into one line. Records published without the header (other producers) sort by
    their timestamp. The end of each partition is the high watermark returned with the fetches
    (not ``end_offsets``, which some brokers answer early).
    """
    consumer = _consumer(kafka, None, True)
    try:
        tps = _wait_for_partitions(consumer, kafka.events_topic, time.monotonic(), 0)
        if tps is None:
            raise InputError(f"topic {kafka.events_topic} does not exist on {kafka.broker}")
        with tempfile.TemporaryDirectory(prefix="tracer-replay-") as scratch:
            spills = _spill(consumer, tps, Path(scratch), progress)
            return _merge(spills, path)
    except KafkaError as exc:
        raise InputError(f"cannot read {kafka.events_topic} from {kafka.broker}: {exc}") from exc
    finally:
        consumer.close()


def _spill(consumer: KafkaConsumer, tps: list[TopicPartition], scratch: Path,
           progress: Callable[[int], None] | None) -> list[Path]:
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    paths = {tp: scratch / f"{tp.partition}.spill" for tp in tps}
    files = {tp: open(paths[tp], "wb") for tp in tps}  # noqa: SIM115 (closed below)
    ends: dict[TopicPartition, int] = {}
    read = 0
    try:
        while len(ends) < len(tps) or any(consumer.position(tp) < end for tp, end in ends.items()):
            batch = consumer.poll(timeout_ms=500, max_records=10000)
            for tp, records in batch.items():
                end = ends.get(tp)
                files[tp].write(b"".join(_spill_line(r) for r in records if end is None or r.offset < end))
                read += len(records)
            for tp in tps:
                if tp not in ends and consumer.highwater(tp) is not None:
                    ends[tp] = consumer.highwater(tp)  # the snapshot: later records are not replayed
            if progress is not None and batch:
                progress(read)
    finally:
        for handle in files.values():
            handle.close()
    return [paths[tp] for tp in tps]


def _spill_line(record: Any) -> bytes:
    headers = dict(record.headers or ())
    if COPY_HEADER in headers:
        return b""  # a worker's copy of a ride, or an interest note: not an input of its own
    seq = headers.get(SEQ_HEADER)
    if seq is None:
        seq = f"{record.timestamp * 1_000_000:020d}.x.{record.partition:07d}.{record.offset:012d}".encode()
    value = record.value.replace(b"\r", b" ").replace(b"\n", b" ")  # one JSON value per line
    return seq + b"\t" + value + b"\n"


def _merge(spills: list[Path], path: Path) -> int:
    handles = [open(p, "rb") for p in spills]  # noqa: SIM115 (closed below)
    recent: deque[bytes] = deque(maxlen=4 * len(spills))
    written = 0
    try:
        with open(path, "wb") as out:
            for line in heapq.merge(*handles, key=lambda text: text.split(b"\t", 1)[0]):
                seq, value = line.split(b"\t", 1)
                if seq in recent:  # a fan-out copy of a case or person already written
                    continue
                recent.append(seq)
                out.write(value)
                written += 1
    finally:
        for handle in handles:
            handle.close()
    return written
