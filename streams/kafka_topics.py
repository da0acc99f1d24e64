"""Output topics for the worker, created on first use, and tracked by its producer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from connectors.kafka import TOPIC_ALREADY_EXISTS, TopicSpec, queue_spec
from streams.kafka_partition import Output
from streams.kafka_settings import KafkaSettings
from tracer.errors import OutputError


class Topics:
    """Creates output topics on first use (queue topics appear as subdistricts get alerts), and makes
    the producer track every topic it writes to.

    The tracking works around an aiokafka behaviour: a topic found in the producer's first, full
    metadata answer is never added to the set it refreshes, so the next refresh for another topic
    drops it, and its batches then wait for a leader until they fail (NotLeaderForPartition).
    """

    def __init__(self, admin: AIOKafkaAdminClient, producer: AIOKafkaProducer, kafka: KafkaSettings) -> None:
        self._admin, self._producer, self._kafka = admin, producer, kafka
        self._known: set[str] = set()
        self._tracked: set[str] = set()

    async def start(self, specs: Sequence[TopicSpec]) -> None:
        self._known = set(await self._admin.list_topics())
        await self.ensure(specs)

    async def ensure(self, specs: Iterable[TopicSpec]) -> None:
        missing = [s for s in specs if s.name not in self._known]
        if not missing:
            return
        new = [NewTopic(s.name, s.partitions, self._kafka.replication_factor, topic_configs=s.configs)
               for s in missing]
        response = await self._admin.create_topics(new)
        for topic, code, *rest in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise OutputError(f"cannot create topic {topic}: error {code} {rest[0] if rest else ''}".rstrip())
        self._known.update(s.name for s in missing)

    async def ensure_outputs(self, outputs: Iterable[Output]) -> None:
        names = {o.topic for o in outputs} - self._tracked
        if not names:
            return
        prefix = self._kafka.queue_topic_prefix
        await self.ensure([queue_spec(self._kafka, n[len(prefix):]) for n in names - self._known
                           if n.startswith(prefix)])
        for name in sorted(names):
            await self._producer.client.add_topic(name)
            self._tracked.add(name)
