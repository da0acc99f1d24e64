"""The Kafka-mode console's clients (aiokafka), in a thread with an event loop of their own, so the
pages' blocking ``ConsoleData`` calls reach them from any thread and the server's loop never waits
on the broker.

* A reader of no group, by manual assignment, of the **status topic** and every **street-office
  queue topic** (``alerts.<code>``), from their ends at start: what it hears, the console's poll
  takes (``take``). Queue topics are made by the workers on an office's first alert, so the topic
  list is read again every ``REFRESH_SECONDS``; a queue topic found later is read from its
  beginning (all of it came after the start).
* Before that, the same reader reads the follow-ups of events partition 0 from where the views
  stopped to its end: published, and not yet in the views, they count as written already.
* The producer of ``tracer publish``: a follow-up goes out as a publish run of one line, with its
  placement and header (``connectors.kafka.publish.add_event``), and ``publish`` returns once every
  events partition has acknowledged it (``acks=all``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from connectors.kafka.batches import Batches
from connectors.kafka.publish import add_event, open_publisher, partition_count, publish_run
from connectors.kafka.routing import COPY_HEADER
from connectors.kafka.settings import KafkaSettings
from streams.kafka.clients import fetch, open_reader, quietly
from tracer.alerts import UNASSIGNED, Alert
from tracer.errors import InvalidEvent, OutputError
from tracer.events import SUBDISTRICT_CODE, Followup
from tracer.intake import Intake

log = logging.getLogger(__name__)
T = TypeVar("T")
REFRESH_SECONDS = 1.0  # how often the topic list is read for new queue topics
_MAX_RECORDS = 5000


@dataclass
class Heard:
    """What the reader has read since the last ``take``."""

    alerts: list[tuple[str, Alert]] = field(default_factory=list)  # (office, queue record), in order
    persons: list[str] = field(default_factory=list)  # whose status changed


class BrokerLink:
    """The clients, started at once; ``since``: the next offset of events partition 0 the views read."""

    def __init__(self, kafka: KafkaSettings, intake: Intake, since: int) -> None:
        self.kafka, self.intake = kafka, intake
        self.unread: list[Followup] = []  # published, and not read by the views at start
        self._heard = Heard()
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(since),), name="console-kafka",
                                        daemon=True)
        self._thread.start()
        if not self._started.wait(kafka.request_timeout_ms / 1000 + 30) or self._error is not None:
            self.close()
            raise OutputError(f"cannot read or write the topics on {kafka.broker}: {self._error or 'no answer'}")

    async def _run(self, since: int) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._producer = open_publisher(self.kafka)
        reader = open_reader(self.kafka, "console")
        try:
            await self._producer.start()
            await reader.start()
            self._counts = [await partition_count(self._producer, topic)
                            for topic in (self.kafka.events_topic, self.kafka.registry_topic)]
            self.unread = await self._followups_since(reader, since)
            await self._listen(reader)
            self._started.set()
            await self._read(reader)
        except BaseException as exc:  # reported by ``take`` (or at start), whatever it was
            self._error = exc
            if not self._started.is_set():
                self._started.set()
            else:
                log.error("the console's Kafka reader stopped: %s", exc)
        finally:
            await quietly(reader.stop())
            await quietly(self._producer.stop())

    async def _followups_since(self, reader: AIOKafkaConsumer, since: int) -> list[Followup]:
        """The follow-ups of events partition 0 from ``since`` to its end (the high watermark a fetch
        returns: some brokers answer ``end_offsets`` early)."""
        tp = TopicPartition(self.kafka.events_topic, 0)
        reader.assign([tp])
        reader.seek(tp, since)
        found, read = [], 0
        while True:
            fetched = await reader.getmany(tp, timeout_ms=1000, max_records=_MAX_RECORDS)
            read += len(fetched.get(tp, ()))
            for record in fetched.get(tp, ()):
                if record.value is None or any(name == COPY_HEADER for name, _ in record.headers or ()):
                    continue
                with contextlib.suppress(InvalidEvent):
                    event = self.intake.decode(record.value).event
                    if type(event) is Followup:
                        found.append(event)
            end = reader.highwater(tp)
            if end is not None and await reader.position(tp) >= end:
                log.info("%s/0 past the views' position: %d records, %d follow-ups", tp.topic, read, len(found))
                return found

    async def _listen(self, reader: AIOKafkaConsumer) -> None:
        """The status and queue topics, from their ends."""
        await reader.seek_to_end(*self._assign(reader, await self._topics(), {}))

    async def _topics(self) -> dict[str, int]:
        """Every topic and its partition count, fresh (the consumer's ``topics`` gives names only, and
        leaves its own metadata as it was)."""
        cluster = await self._producer.client.fetch_all_metadata()
        return {name: len(cluster.partitions_for_topic(name) or ()) for name in cluster.topics()}

    def _assign(self, reader: AIOKafkaConsumer, topics: dict[str, int],
                at: dict[TopicPartition, int]) -> list[TopicPartition]:
        """Assign every partition of the status topic and the queue topics among ``topics``; those in
        ``at`` at the offsets it gives. Returns the others, for the caller to seek."""
        tps = [TopicPartition(name, number) for name in sorted(self._listened(set(topics)))
               for number in range(topics[name])]
        reader.assign(tps)
        for tp, offset in at.items():
            reader.seek(tp, offset)
        return [tp for tp in tps if tp not in at]

    def _listened(self, topics: set[str]) -> set[str]:
        """The status topic and the street-office queue topics, of ``topics``."""
        prefix = self.kafka.queue_topic_prefix
        offices = {name: name[len(prefix):] for name in topics if name.startswith(prefix)}
        return {self.kafka.status_topic} & topics | {name for name, office in offices.items()
                                                     if office == UNASSIGNED or SUBDISTRICT_CODE.fullmatch(office)}

    async def _read(self, reader: AIOKafkaConsumer) -> None:
        assert self._stop is not None
        stopping = asyncio.ensure_future(self._stop.wait())
        next_refresh = time.monotonic() + REFRESH_SECONDS
        try:
            while (fetched := await fetch(reader, stopping, _MAX_RECORDS)) is not None:
                self._hear(fetched)
                if time.monotonic() >= next_refresh:
                    await self._refresh(reader)
                    next_refresh = time.monotonic() + REFRESH_SECONDS
        finally:
            stopping.cancel()

    def _hear(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        heard = Heard()
        prefix = self.kafka.queue_topic_prefix
        for tp, records in fetched.items():
            if tp.topic == self.kafka.status_topic:
                heard.persons += [record.key.decode() for record in records if record.key is not None]
            else:
                office = tp.topic[len(prefix):]
                heard.alerts += [(office, orjson.loads(record.value)) for record in records if record.value]
        with self._lock:
            self._heard.alerts += heard.alerts
            self._heard.persons += heard.persons

    async def _refresh(self, reader: AIOKafkaConsumer) -> None:
        """Take the queue topics made since the last look, from their beginnings."""
        topics = await self._topics()
        assigned = reader.assignment()
        if self._listened(set(topics)) <= {tp.topic for tp in assigned}:
            return
        at = {tp: await reader.position(tp) for tp in assigned}
        await reader.seek_to_beginning(*self._assign(reader, topics, at))

    def take(self) -> Heard:
        """What was heard since the last take; OutputError if the reader has stopped."""
        if self._error is not None:
            raise OutputError(f"the console's Kafka reader stopped: {self._error}")
        with self._lock:
            heard, self._heard = self._heard, Heard()
        return heard

    def publish(self, event: Followup, line: bytes) -> None:
        """Publish a follow-up (``line``, read as ``event``) as ``tracer publish`` would; returns once
        acknowledged."""
        async def send() -> None:
            out = Batches(self._producer)
            add_event(out, event, line, self.kafka, *self._counts, publish_run(), 1)
            await out.close()

        try:
            self._call(send(), self.kafka.request_timeout_ms / 1000 + 5)
        except (KafkaError, TimeoutError) as exc:
            raise OutputError(f"cannot publish to {self.kafka.events_topic}: {exc}") from exc

    def _call(self, work: Coroutine[Any, Any, T], seconds: float) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(seconds)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(self.kafka.request_timeout_ms / 1000 + 5)
