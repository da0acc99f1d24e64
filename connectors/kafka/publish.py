"""``tracer publish``: event files onto the registry and events topics (docs/kafka.md).

Placement (connectors/kafka/routing.py): a person goes to the compacted registry topic, once,
keyed by its id; a trip to the events partition of its service day; every case, published
exposure and quarantine to every events partition. Every record carries a ``tracer-seq`` header
(publish run + line number) so that ``tracer replay`` can put the topics back into the order they
were published in. The console (streams/console/kafka.py) publishes an office's follow-up as a
run of one line, with the same producer, placement and header.

Records go out in whole batches (connectors/kafka/batches.py): kafka-python's ``send`` per record
topped out at 13,000-18,000 records/s, below the 50,000 a day's replay needs (docs/kafka.md,
"Measurements").
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from connectors.files import LineReader, dead_letter
from connectors.kafka.batches import Batches
from connectors.kafka.routing import SEQ_HEADER, partition_of, placement
from connectors.kafka.settings import KafkaSettings
from connectors.kafka.topics import all_queues, base_topics, ensure_topics
from tracer.errors import InvalidEvent, OutputError
from tracer.events import Event
from tracer.formats import FormatHint
from tracer.intake import WARNING, Intake
from tracer.progress import Progress
from tracer.settings import Settings


def publish(paths: Sequence[str], settings: Settings, kafka: KafkaSettings) -> Progress:
    """Validate JSON lines and load them into the registry and events topics; bad lines go to the
    dead letters.

    A person of an unknown subdistrict is published as it is (each worker sends their alerts to
    ``unassigned`` itself) and reported here, once, as a warning dead letter."""
    intake = Intake(settings)  # before connecting: a bad subdistrict list stops here
    ensure_topics(kafka, base_topics(kafka, all_queues(settings) if kafka.declare_queues else ()))
    try:
        return asyncio.run(_publish(paths, intake, kafka))
    except KafkaError as exc:
        raise OutputError(f"cannot publish to {kafka.broker}: {exc}") from exc


async def _publish(paths: Sequence[str], intake: Intake, kafka: KafkaSettings) -> Progress:
    producer = open_publisher(kafka)
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        raise OutputError(f"cannot reach the broker {kafka.broker}: {exc}") from exc
    try:
        counts = [await partition_count(producer, topic)
                  for topic in (kafka.events_topic, kafka.registry_topic, kafka.dead_letter_topic)]
        return await _send_lines(paths, intake, kafka, Batches(producer), *counts)
    finally:
        await producer.stop()


def open_publisher(kafka: KafkaSettings) -> AIOKafkaProducer:
    """The producer of published events (``tracer publish``, the console's follow-ups)."""
    return AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, client_id=kafka.client_id + "-publish", acks="all",
        linger_ms=max(kafka.producer_linger_ms, 20), max_batch_size=kafka.producer_max_batch_bytes,
        max_request_size=max(kafka.producer_max_batch_bytes, 1 << 20) * 2,
        request_timeout_ms=kafka.request_timeout_ms)


def publish_run() -> str:
    """A publish run's id: when it began, and its process. The ``tracer-seq`` of its lines starts with
    it, so ``tracer replay`` puts runs in the order they began."""
    return f"{time.time_ns():020d}.{os.getpid() % 10_000_000:07d}"


def add_event(out: Batches, event: Event, data: bytes, kafka: KafkaSettings, events: int, registry: int,
              run: str, index: int) -> int:
    """Add the records of one published line (``data``, read as ``event``) to ``out``: its placement
    (``routing.placement``; ``events``, ``registry``: the two topics' partition counts) and the
    ``tracer-seq`` header of line ``index`` of publish run ``run``. Returns the record count."""
    topic, key, targets = placement(event, kafka, events, registry)
    headers = [(SEQ_HEADER, f"{run}.{index:012d}".encode())]
    for partition in targets:
        out.add(topic, partition, key, data, headers)
    return len(targets)


async def _send_lines(paths: Sequence[str], intake: Intake, kafka: KafkaSettings, out: Batches,
                      events: int, registry: int, dead_letters: int) -> Progress:
    summary = Progress()
    started = time.perf_counter()
    run = publish_run()
    index = 0
    for path in paths:
        dead = (kafka.dead_letter_topic, partition_of(path.encode(), dead_letters), path.encode())
        reader = LineReader(path, 0, 0, intake.max_line_bytes)
        hint = FormatHint(sees_first_line=True)  # a CSV or XLSX published by mistake says so, as in tracer run
        for number, position, data, too_long in reader:
            index += 1
            summary.lines += 1
            try:
                event, warning = intake.decode(data, too_long)
            except InvalidEvent as exc:
                out.add(*dead, dead_letter(path, number, data, hint.reason(number, data, exc.reason)), [])
                summary.dead_letters += 1
                continue
            if warning is not None:
                letter = dead_letter(path, number, data, warning, severity=WARNING)
                out.add(*dead, letter, [])
                summary.warnings += 1
            summary.records += add_event(out, event, data, kafka, events, registry, run, index)
            summary.events[type(event).__name__.lower()] += 1
            if out.full:
                await out.send_full()
                reader.advance(position)  # drops the reads behind (LineReader keeps them for a hash)
    await out.close()
    summary.seconds = time.perf_counter() - started
    return summary


async def partition_count(producer: AIOKafkaProducer, topic: str) -> int:
    partitions = sorted(await producer.partitions_for(topic) or ())
    if not partitions or partitions != list(range(len(partitions))):
        raise OutputError(f"topic {topic} has no usable partitions: {partitions}")
    return len(partitions)
