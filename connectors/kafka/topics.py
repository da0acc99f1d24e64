"""Kafka topics: what each is (``TopicSpec``), and the two clients that create them.

``ensure_topics`` (kafka-python, blocking) sets topics up for ``tracer publish``; ``Topics``
(aiokafka) is the worker's: it creates street-office queue topics on first use and makes the
worker's producer track every topic it writes to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from connectors.kafka.settings import KafkaSettings
from tracer.errors import OutputError
from tracer.registry import Subdistricts
from tracer.settings import Settings

_DAY_MS = 86_400_000
TOPIC_ALREADY_EXISTS = 36  # Kafka's error code


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def base_topics(kafka: KafkaSettings, queues: Iterable[str] = ()) -> list[TopicSpec]:
    """The events, registry, contacts, dead-letter, status and private contacts topics, and the
    queue topics of ``queues``.

    The registry is compacted: Kafka keeps the last record of every person id for good, so the
    registry outlives the events topic's retention and a new worker reads each person once. So is
    the status topic, a changelog keyed by person: the last record of each is their status. The
    private contacts topic (real-id alert changes for the views, written when workers pseudonymise
    the contacts topic) is partitioned as the contacts topic."""
    insync = {"min.insync.replicas": str(kafka.min_insync_replicas)}
    specs = [
        TopicSpec(kafka.events_topic, kafka.events_partitions,
                  {**insync, "cleanup.policy": "delete",
                   "retention.ms": str(kafka.events_retention_days * _DAY_MS)}),
        TopicSpec(kafka.registry_topic, kafka.registry_partitions, {**insync, "cleanup.policy": "compact"}),
        TopicSpec(kafka.contacts_topic, kafka.contacts_partitions, insync),
        TopicSpec(kafka.dead_letter_topic, kafka.dead_letter_partitions, insync),
        TopicSpec(kafka.status_topic, kafka.status_partitions, {**insync, "cleanup.policy": "compact"}),
        TopicSpec(kafka.private_contacts_topic, kafka.contacts_partitions, insync),
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
        self._tracked: dict[str, int] = {}  # topic -> its partition count

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

    async def ensure_outputs(self, topics: Iterable[str]) -> dict[str, int]:
        """Create and track the topics a batch of outputs is about to be sent to; returns the
        partition count of every topic tracked (keyed records are placed by the caller)."""
        names = set(topics) - self._tracked.keys()
        if names:
            prefix = self._kafka.queue_topic_prefix
            await self.ensure([queue_spec(self._kafka, n[len(prefix):]) for n in names - self._known
                               if n.startswith(prefix)])
            for name in sorted(names):
                await self._producer.client.add_topic(name)
                self._tracked[name] = len(await self._producer.partitions_for(name))
        return self._tracked
