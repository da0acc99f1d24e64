"""``tracer replay``'s input: the registry and events topics downloaded back into publish order, one file."""

from __future__ import annotations

import heapq
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from connectors.kafka.routing import COPY_HEADER, SEQ_HEADER
from connectors.kafka.settings import KafkaSettings
from connectors.kafka.subscribe import open_consumer, wait_for_partitions
from tracer.errors import InputError


def download_events(kafka: KafkaSettings, path: Path, progress: Callable[[int], None] | None = None) -> int:
    """Write the registry and events topics, as they are now, to ``path`` in publish order; returns
    the line count.

    Reads with no consumer group (the workers' offsets stay untouched). Partitions are spilled to
    temporary files and merged by the ``tracer-seq`` header; the fan-out copies of a case collapse
    back into one line. Records published without the header (other producers) sort by their
    timestamp. The end of each partition is the high watermark returned with the fetches (not
    ``end_offsets``, which some brokers answer early). The registry topic is compacted: a person
    who moved is replayed at their last record's place only, and a tombstone (a person removed)
    has no line to replay. An events topic of the layout before the registry topic (persons in
    it) is replayed as it is.
    """
    consumer = open_consumer(kafka, None, True)
    try:
        tps = wait_for_partitions(consumer, kafka.events_topic, time.monotonic(), 0)
        if tps is None:
            raise InputError(f"topic {kafka.events_topic} does not exist on {kafka.broker}")
        tps = (wait_for_partitions(consumer, kafka.registry_topic, time.monotonic(), 0) or []) + tps
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
    paths = {tp: scratch / f"{index}.spill" for index, tp in enumerate(tps)}
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
    if COPY_HEADER in headers or record.value is None:
        return b""  # a worker's copy of a ride, or an interest note, or a tombstone: not an input of its own
    seq = headers.get(SEQ_HEADER)
    if seq is None:
        where = f"{record.topic}.{record.partition:07d}.{record.offset:012d}"
        seq = f"{record.timestamp * 1_000_000:020d}.x.{where}".encode()
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
