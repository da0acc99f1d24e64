"""What the long-running Kafka processes share of their clients: the worker (streams/kafka/worker.py)
and the view process (streams/kafka/view_process.py). One producer configuration (``acks=all``: a
record counts as delivered once every in-sync replica has it), one way of sending (whole batches),
of fetching until told to stop, and of running until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from connectors.kafka.batches import Batches
from connectors.kafka.routing import partition_of
from connectors.kafka.settings import KafkaSettings
from connectors.kafka.topics import Topics
from tracer.errors import StateError

log = logging.getLogger(__name__)


class Outgoing(Protocol):
    """A record to send (``streams.kafka.partition.Output`` fits)."""

    @property
    def topic(self) -> str: ...

    @property
    def key(self) -> bytes: ...

    @property
    def value(self) -> bytes: ...

    @property
    def partition(self) -> int | None: ...  # None: the key decides

    @property
    def headers(self) -> list[tuple[str, bytes]]: ...  # a list: aiokafka's record builder takes no other


def open_admin(kafka: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, client_id=kafka.client_id + "-admin",
                               request_timeout_ms=kafka.request_timeout_ms)


def open_reader(kafka: KafkaSettings, role: str) -> AIOKafkaConsumer:
    """A consumer of no group, for partitions assigned by hand and positions kept in a store."""
    return AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap, client_id=f"{kafka.client_id}-{role}", group_id=None,
        enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=kafka.fetch_max_wait_ms,
        max_partition_fetch_bytes=4 << 20, fetch_max_bytes=32 << 20, request_timeout_ms=kafka.request_timeout_ms)


def open_producer(kafka: KafkaSettings, role: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, client_id=f"{kafka.client_id}-{role}", acks="all",
        linger_ms=kafka.producer_linger_ms, max_batch_size=kafka.producer_max_batch_bytes,
        max_request_size=max(kafka.producer_max_batch_bytes, 1 << 20) * 2,
        request_timeout_ms=kafka.request_timeout_ms)


async def deliver(producer: AIOKafkaProducer, topics: Topics, outputs: Sequence[Outgoing]) -> None:
    """Send in order and wait for every acknowledgement (at-least-once; consumers fold by key).

    Whole batches (connectors/kafka/batches.py): a ``send`` per output took 90 ms of each
    batch's delivery on the outbreak city, whole batches 65-72 (docs/kafka.md)."""
    if not outputs:
        return
    counts = await topics.ensure_outputs(output.topic for output in outputs)
    out = Batches(producer)
    for o in outputs:
        partition = o.partition if o.partition is not None else partition_of(o.key, counts[o.topic])
        out.add(o.topic, partition, o.key, o.value, o.headers)
        if out.full:
            await out.send_full()
    await out.close()


async def fetch(consumer: AIOKafkaConsumer, stopping: asyncio.Future, max_records: int) -> dict | None:
    """The next fetched batch (maybe empty), or None once ``stopping`` is done."""
    fetched = asyncio.ensure_future(consumer.getmany(timeout_ms=1000, max_records=max_records))
    await asyncio.wait((fetched, stopping), return_when=asyncio.FIRST_COMPLETED)
    if not fetched.done():
        fetched.cancel()
        return None
    return fetched.result()


async def quietly(step: Awaitable[object]) -> None:
    try:
        await step
    except Exception as exc:  # shutting down: report, do not mask the original error
        log.warning("while stopping: %s", exc)


def run_until_stopped(state_dir: Path, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Make ``state_dir`` and run ``run(stop)`` until it returns; SIGINT and SIGTERM set ``stop``."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"cannot create state folder {state_dir}: {exc.strerror}") from exc

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        await run(stop)

    asyncio.run(main())
