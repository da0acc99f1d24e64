"""``tracer views``: the process that keeps Kafka mode's views (streams/kafka/views.py) and sends
every status change to the status topic.

One process, no consumer group: it assigns itself every partition of the events, contacts and
private contacts topics and seeks each to the offset its store holds, so a restart continues
exactly where its last commit stopped, and no rebalance ever moves its work. Two consumers, one for
the alert changes and one for the events topic, so that alerts never wait behind trips. For each
fetched batch:

1. the step, in a thread (the event loop keeps fetching): views, positions and the status records
   to send (the outbox), then one store commit of all of them;
2. the outbox is sent (``acks=all``) and, once acknowledged, emptied in memory; the next commit
   writes it empty. A crash before that sends it again at the restart (duplicates fold by person).

Why a plain aiokafka consumer and not a Faust agent: measured (docs/kafka.md, "The views").
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from connectors.kafka.settings import KafkaSettings
from connectors.kafka.topics import Topics, base_topics
from streams.kafka.clients import open_admin, open_producer, open_reader, quietly, run_until_stopped
from streams.kafka.outbox import send
from streams.kafka.views import ViewTask
from tracer.errors import OutputError, StateError
from tracer.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ViewStats:
    """Progress for the periodic log line and for measurements."""

    records: int = 0  # read, of every topic
    statuses: int = 0  # sent
    batches: int = 0

    def line(self) -> str:
        return f"{self.records:,} records, {self.statuses:,} status changes sent, {self.batches:,} batches"


class ViewProcess:
    """``tracer views``: one ``ViewTask``, the consumer that feeds it and the producer of its outbox."""

    def __init__(self, settings: Settings, kafka: KafkaSettings, state_dir: Path) -> None:
        self.settings, self.kafka, self.state_dir = settings, kafka, state_dir
        self.stats = ViewStats()
        self.task: ViewTask | None = None
        self.producer: AIOKafkaProducer | None = None
        self.topics: Topics | None = None

    async def run(self, stop: asyncio.Event) -> None:
        kafka = self.kafka
        admin = open_admin(kafka)
        self.producer = open_producer(kafka, "views")
        # Two consumers, each with its own fetches: alert changes never wait behind the trips (the
        # bulk of the events topic), in a backlog or in a fetch the broker holds.
        readers = [open_reader(kafka, "views-alerts"), open_reader(kafka, "views-events")]
        try:
            await admin.start()
            self.topics = Topics(admin, self.producer, kafka)
            await self.topics.start(base_topics(kafka))
            await self.producer.start()
            for reader in readers:
                await reader.start()
            await self._assign(*readers)
            await self._send()  # what the last run committed and may not have sent
            await self._loop(readers, stop)
        except KafkaError as exc:
            raise OutputError(f"Kafka error on {kafka.broker}: {exc}") from exc
        finally:
            log.info("stopping: %s", self.stats.line())
            for reader in readers:
                await quietly(reader.stop())
            await quietly(self.producer.stop())
            await quietly(admin.close())
            if self.task is not None:
                self.task.close()

    async def _assign(self, alerts: AIOKafkaConsumer, events: AIOKafkaConsumer) -> None:
        """Open the store, take every partition of the topics it reads, at its positions."""
        await events.topics()  # fresh metadata: the topics may have just been created
        partitions = len(events.partitions_for_topic(self.kafka.events_topic) or ())
        if partitions < 1:
            raise StateError(f"topic {self.kafka.events_topic} has no partitions")
        self.task = task = await asyncio.to_thread(ViewTask, self.state_dir, self.settings, self.kafka, partitions)
        await alerts.topics()
        for reader, topics in ((alerts, task.alert_topics()), (events, [self.kafka.events_topic])):
            tps = [TopicPartition(topic, number) for topic in topics
                   for number in sorted(reader.partitions_for_topic(topic) or ())]
            reader.assign(tps)
            for tp in tps:
                reader.seek(tp, task.position(tp.topic, tp.partition))
        log.info("views: reading %s and %s from the stored positions", self.kafka.events_topic,
                 " and ".join(task.alert_topics()))

    async def _loop(self, readers: list[AIOKafkaConsumer], stop: asyncio.Event) -> None:
        """Step on what either consumer has fetched (and what the other has by then)."""
        every = self.kafka.stats_every_seconds
        next_stats = time.monotonic() + every if every > 0 else float("inf")
        stopping = asyncio.ensure_future(stop.wait())
        fetches: dict[AIOKafkaConsumer, asyncio.Future] = {}
        try:
            while not stopping.done():
                for reader in readers:
                    if reader not in fetches:
                        fetches[reader] = asyncio.ensure_future(
                            reader.getmany(timeout_ms=1000, max_records=self.kafka.batch_max_records))
                await asyncio.wait([*fetches.values(), stopping], return_when=asyncio.FIRST_COMPLETED)
                batch = {}
                for reader in [reader for reader, fetched in fetches.items() if fetched.done()]:
                    batch.update(fetches.pop(reader).result())
                if batch and not stopping.done():
                    await asyncio.to_thread(_step, self.task, batch)
                    sent = await self._send()
                    stats = self.stats
                    stats.records += sum(len(records) for records in batch.values())
                    stats.statuses += sent
                    stats.batches += 1
                if time.monotonic() >= next_stats:
                    log.info("%s", self.stats.line())
                    next_stats = time.monotonic() + every
        finally:
            stopping.cancel()
            for fetched in fetches.values():
                fetched.cancel()

    async def _send(self) -> int:
        """Send the committed outbox; returns how many records it held."""
        assert self.task is not None and self.producer is not None and self.topics is not None
        return await send(self.producer, self.topics, [self.task])


def _step(task: ViewTask | None, batch: dict) -> None:
    assert task is not None
    task.apply(batch)
    task.commit()


def run_views(settings: Settings, kafka: KafkaSettings, state_dir: Path) -> ViewStats:
    """Run the view process until SIGINT or SIGTERM; returns its counters."""
    process = ViewProcess(settings, kafka, state_dir)
    run_until_stopped(state_dir, process.run)
    return process.stats
