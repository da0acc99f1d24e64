"""Records sent in whole batches: one aiokafka ``BatchBuilder`` per topic partition, handed to the
producer when full, so a record costs an append to a buffer, not a future and a trip through the
producer's accumulator (``send``). ``tracer publish`` and the worker's delivery use it."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder


class Batches:
    """One open record batch per topic partition; full ones go to the producer whole.

    The producer keeps at most one queued batch per partition and sends a partition's batches in
    order, one in flight at a time, so each partition keeps the order records were added in. A
    batch the broker refuses raises at the next hand-over or at ``close``."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._open: dict[tuple[str, int], BatchBuilder] = {}
        self._full: list[tuple[tuple[str, int], BatchBuilder]] = []
        self._sent: list[asyncio.Future] = []

    @property
    def full(self) -> bool:
        return bool(self._full)

    def add(self, topic: str, partition: int, key: bytes, value: bytes,
            headers: list[tuple[str, bytes]]) -> None:
        where = (topic, partition)
        batch = self._open.get(where)
        if batch is None or batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
            if batch is not None:
                self._full.append((where, batch))
            batch = self._open[where] = self._producer.create_batch()
            batch.append(timestamp=None, key=key, value=value, headers=headers)  # a batch takes its first, always

    async def send_full(self) -> None:
        full, self._full = self._full, []
        for (topic, partition), batch in full:
            self._sent.append(await self._producer.send_batch(batch, topic, partition=partition))
        self._check()

    async def close(self) -> None:
        """Send every open batch and wait for every acknowledgement."""
        self._full += list(self._open.items())
        self._open.clear()
        await self.send_full()
        for future in self._sent:
            await future

    def _check(self) -> None:
        """Raise the error of a batch the broker refused; forget the acknowledged ones."""
        pending = []
        for future in self._sent:
            if not future.done():
                pending.append(future)
            elif future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        self._sent = pending
