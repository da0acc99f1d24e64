"""``tracer publish``: event files onto the events topic (kafka-python, blocking: it runs in the CLI).

Placement (connectors/kafka/routing.py, docs/kafka.md): a trip goes to the partition of its service
day (``date\\x1fmode\\x1fservice`` with Kafka's murmur2 partitioner, so another producer keyed the
same way lands on the same partition); every case, published exposure, person and quarantine goes
to every partition. Every record carries a ``tracer-seq`` header (publish run + line number)
so that the replay reader can put the partitions back into the order they were published in.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError

from connectors.files import LineReader, dead_letter
from connectors.kafka.routing import SEQ_HEADER, partitions_of
from connectors.kafka.settings import KafkaSettings
from connectors.kafka.topics import all_queues, base_topics, ensure_topics
from tracer.errors import InvalidEvent, OutputError
from tracer.intake import WARNING, Intake
from tracer.progress import Progress
from tracer.settings import Settings


def publish(paths: Sequence[str], settings: Settings, kafka: KafkaSettings) -> Progress:
    """Validate JSON lines and load them into the events topic; bad lines go to the dead letters.

    A person of an unknown subdistrict is published as it is (each partition sends them to
    ``unassigned`` itself) and reported here, once, as a warning dead letter."""
    intake = Intake(settings)  # before connecting: a bad subdistrict list stops here
    ensure_topics(kafka, base_topics(kafka, all_queues(settings) if kafka.declare_queues else ()))
    producer = _producer(kafka)
    summary = Progress()
    started = time.perf_counter()
    failures: list[BaseException] = []

    def send_dead(path: str, letter: bytes) -> None:
        producer.send(kafka.dead_letter_topic, value=letter, key=path.encode()).add_errback(failures.append)

    try:
        partitions = sorted(producer.partitions_for(kafka.events_topic) or ())
        if partitions != list(range(len(partitions))) or not partitions:
            raise OutputError(f"topic {kafka.events_topic} has no usable partitions: {partitions}")
        run = f"{time.time_ns():020d}.{os.getpid() % 10_000_000:07d}"
        index = 0
        for path in paths:
            for number, _, data, too_long in LineReader(path, 0, 0, intake.max_line_bytes):
                index += 1
                summary.lines += 1
                try:
                    event, warning = intake.decode(data, too_long)
                except InvalidEvent as exc:
                    send_dead(path, dead_letter(path, number, data, exc.reason))
                    summary.dead_letters += 1
                    continue
                if warning is not None:
                    send_dead(path, dead_letter(path, number, data, warning, severity=WARNING))
                    summary.warnings += 1
                key, targets = partitions_of(event, len(partitions))
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
