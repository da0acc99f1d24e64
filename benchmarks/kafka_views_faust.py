"""The Faust view sides of ``benchmarks.kafka_views``, each a process of its own:

    python -m benchmarks.kafka_views_faust (faust-task | faust-tables) CONFIG STATE

``faust-task``: an agent over the events, contacts and private contacts topics takes batches
(``take_events``) and hands them to the same ``ViewTask`` as ``tracer views``: step, commit, then the
outbox through Faust's producer, acknowledged before the next batch.

``faust-tables``: an agent over the contacts topic keeps RocksDB-backed Faust tables (changelogged to
Kafka by Faust) keyed by person (their live alerts, as ``tracer.views.facts`` summarises them) and by
office (their residents), and the status of each person; a status that changes goes to the status
topic. No event time, cases or follow-ups: the alert path only.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import faust
import orjson

from connectors.kafka.settings import KafkaSettings, load_all
from connectors.kafka.topics import base_topics, ensure_topics
from streams.kafka.views import ViewTask, is_real
from tracer.settings import Settings
from tracer.views.facts import AlertFact, Facts
from tracer.views.health import health, status_record


def main(side: str, config: Path, state: Path) -> None:
    settings, kafka = load_all(config)
    ensure_topics(kafka, base_topics(kafka))
    _same_fetch_wait(kafka.fetch_max_wait_ms)
    app = faust.App(f"bench-views-{side}", broker=kafka.broker, store="rocksdb://", web_enabled=False,
                    web_bind="127.0.0.1", broker_session_timeout=6.0, broker_heartbeat_interval=2.0,
                    consumer_auto_offset_reset="earliest", topic_partitions=kafka.contacts_partitions,
                    producer_linger=kafka.producer_linger_ms / 1000, producer_acks=-1, datadir=str(state))
    status = app.topic(kafka.status_topic, key_serializer="raw", value_serializer="raw")
    if side == "faust-task":
        _task_agent(app, status, settings, kafka, state)
    else:
        _table_agent(app, status, settings, kafka)
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


def _same_fetch_wait(wait_ms: int) -> None:
    """Faust's driver makes its consumers with ``fetch_max_wait_ms=1500``, fixed; the test broker answers
    a fetch only after about that long, so the Faust sides get the plain side's wait instead."""
    import aiokafka

    made = aiokafka.AIOKafkaConsumer

    def consumer(*args: Any, **kwargs: Any) -> aiokafka.AIOKafkaConsumer:
        return made(*args, **{**kwargs, "fetch_max_wait_ms": wait_ms})

    aiokafka.AIOKafkaConsumer = consumer  # type: ignore[misc]


def _task_agent(app: faust.App, status: faust.TopicT, settings: Settings, kafka: KafkaSettings, state: Path) -> None:
    topics = app.topic(kafka.events_topic, kafka.contacts_topic, kafka.private_contacts_topic,
                       key_serializer="raw", value_serializer="raw")
    task = ViewTask(state / "views", settings, kafka, kafka.events_partitions)

    @app.agent(topics)
    async def views(stream: faust.StreamT) -> None:
        async for events in stream.take_events(kafka.batch_max_records, within=0.01):
            batch: dict[tuple[str, int], list[Any]] = defaultdict(list)
            for event in events:
                batch[(event.message.topic, event.message.partition)].append(event.message)
            task.apply(batch)
            task.commit()
            sent = [await status.send(key=s.key, value=s.value, force=True) for s in task.outbox]
            for future in sent:
                await future
            task.delivered()


def _table_agent(app: faust.App, status: faust.TopicT, settings: Settings, kafka: KafkaSettings) -> None:
    contacts = app.topic(kafka.contacts_topic, key_serializer="raw", value_serializer="raw")
    facts = app.Table("facts", default=dict)  # person -> their live alerts
    offices = app.Table("offices", default=dict)  # office -> its residents with live alerts
    shown = app.Table("status", default=dict)  # person -> their status
    zone = settings.rules.zone

    @app.agent(contacts)
    async def fold(stream: faust.StreamT) -> None:
        async for event in stream.events():
            alert = orjson.loads(event.value)
            if not is_real(alert):
                continue
            person = alert["contact_person_id"]
            alerts = dict(facts[person])
            before = {fact[4] for fact in alerts.values()}
            if alert["action"] == "add":
                alerts[alert["alert_id"]] = list(AlertFact.of(alert))
            else:
                alerts.pop(alert["alert_id"], None)
            facts[person] = alerts
            found = Facts({k: AlertFact(*v) for k, v in alerts.items()}, {})
            for office in before ^ found.offices():
                residents = dict(offices[office])
                if office in before:
                    residents.pop(person, None)
                else:
                    residents[person] = True
                offices[office] = residents
            record = status_record(person, health(found, None, None, settings.status, zone), None, zone)
            if shown[person] != record:
                shown[person] = record
                await status.send(key=person.encode(), value=orjson.dumps(record))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
