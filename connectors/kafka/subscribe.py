"""``tracer subscribe``: a topic (the contacts stream or one street office's queue) to JSON Lines."""

from __future__ import annotations

import time
from typing import IO

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from connectors.kafka.settings import KafkaSettings
from tracer.errors import InputError


def subscribe(kafka: KafkaSettings, topic: str, out: IO[bytes], *, from_beginning: bool = False,
              idle_exit: float | None = None, group: str | None = None) -> int:
    """Copy a topic's records to ``out`` as JSON lines until idle for ``idle_exit`` seconds (or forever).

    Without ``group`` nothing is committed and reading starts at the beginning or the end; with a
    group, a restarted subscriber continues where it stopped. A topic that does not exist yet (queues
    are created on first use) is waited for. Returns the number of records written.
    """
    consumer = open_consumer(kafka, group, from_beginning)
    written = 0
    try:
        last = time.monotonic()
        tps = wait_for_partitions(consumer, topic, last, idle_exit)
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


def open_consumer(kafka: KafkaSettings, group: str | None, from_beginning: bool) -> KafkaConsumer:
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


def wait_for_partitions(consumer: KafkaConsumer, topic: str, since: float,
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
