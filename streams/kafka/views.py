"""Kafka mode's views in one store: health status, call lists and KPIs of the whole deployment,
equal to ``tracer run``'s on the same events (docs/kafka.md, "The views").

No Kafka client here (so it is tested without a broker); the view process (streams/kafka/view_process.py)
feeds it records of three topics and sends what it returns. What it takes from each:

* the **contacts topic**: every alert change of every partition, with the contact's real id. When the
  workers pseudonymise that topic (``tracer worker --pseudonymize``), its records are recognised (their
  ``alert_id`` is not the hash of their own fields) and skipped, and the real-id copies the workers then
  write to the **private contacts topic** are taken instead;
* the **events topic**, every partition: the published trips (not the ride copies workers make), which
  move event time by the engine's own rule (``tracer.clock.EventClock``: the same quorum, the same
  service-date and horizon checks), so that "now" is what ``tracer run`` would have on the same events;
  and the cases and follow-ups, which every partition holds, from partition 0 only, in publish order.

Every fetched batch is one ``Views.apply`` step, with event time after it. The store is the
``--state`` folder itself, so ``tracer calllist``, ``status`` and ``kpis`` read it as they read a run's
state (event time under META ``VIEW_TIME``).

Crash safety: the next offset of every topic partition, the views and the *outbox* (the status
records of the step) are one RocksDB write batch (``commit``); the process sends the outbox only
after that commit, and a restart sends it again before going on (streams/kafka/outbox.py says why:
sent before the commit, a step that adds an alert would send red, and after a crash that step and
the next, which retracts the alert, may come as one step that sends nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from connectors.kafka.routing import COPY_HEADER
from connectors.kafka.settings import KafkaSettings
from graph.keys import KAFKA_POSITION, META, POSITION, VIEW_TIME, WATERMARK, group
from graph.store import RocksStore
from streams.kafka.outbox import Output, outputs, rows
from streams.kafka.partition import Record
from tracer.alerts import Alert, alert_id
from tracer.clock import EventClock
from tracer.errors import InvalidEvent, StateError
from tracer.events import Case, Event, Followup, Trip
from tracer.intake import Intake
from tracer.rules import onset_problem
from tracer.settings import Settings
from tracer.views import Views

log = logging.getLogger(__name__)
_META = (group(META), KAFKA_POSITION)
CASES_PARTITION = 0  # every partition holds every case and follow-up: the views read them here


class ViewTask:
    """The views' store, its event time and how far each topic partition has been read."""

    def __init__(self, state_dir: Path, settings: Settings, kafka: KafkaSettings, partitions: int) -> None:
        self.kafka, self.partitions = kafka, partitions  # ``partitions``: of the events topic
        self.path = state_dir
        self._intake = Intake(settings)
        self._zone = settings.rules.zone
        self.pseudonymised = 0  # contacts-topic records skipped: their real twins are on the private topic
        self.store = RocksStore(state_dir, settings.runtime.store_options())
        try:
            meta = self._meta()
            self.positions: dict[str, int] = meta["next"] if meta else {}
            self.outbox = outputs(meta["outbox"]) if meta else []
            self.clock = EventClock(self.store, settings.rules, mark=VIEW_TIME)
            self.views = Views(self.store, settings)
        except BaseException:
            self.store.close()
            raise
        self.store.commit_hooks.append(self._checkpoint)

    def _meta(self) -> dict[str, Any] | None:
        """The stored positions and outbox; refuses a store that is not this deployment's views."""
        meta = orjson.loads(self.store.get(*_META) or b"null")
        run = any(self.store.get(group(META), name) is not None for name in (WATERMARK, POSITION))
        if run or (meta is not None and "views" not in meta):
            raise StateError(f"{self.path} holds the state of a run or a partition, not views: "
                             "give tracer views a folder of its own")
        if meta is not None and [meta["views"], meta["partitions"]] != [self.kafka.events_topic, self.partitions]:
            raise StateError(f"{self.path} holds the views of {meta['views']} ({meta['partitions']} "
                             f"partitions), not of {self.kafka.events_topic} ({self.partitions}): give another --state")
        return meta  # type: ignore[no-any-return]

    def _checkpoint(self) -> None:
        meta = {"views": self.kafka.events_topic, "partitions": self.partitions, "next": self.positions,
                "outbox": rows(self.outbox)}
        self.store.put(*_META, orjson.dumps(meta))

    def position(self, topic: str, partition: int) -> int:
        """The next offset to read in a topic partition."""
        return self.positions.get(f"{topic}/{partition}", 0)

    def alert_topics(self) -> list[str]:
        """The topics of alert changes it reads (every partition of each), besides the events topic."""
        return [self.kafka.contacts_topic, self.kafka.private_contacts_topic]

    def apply(self, batch: Mapping[Any, Sequence[Record]]) -> list[Output]:
        """One step over fetched records (``(topic, partition) -> records`` in offset order, as
        aiokafka's ``getmany`` gives them); returns the status records it adds to the outbox."""
        events: list[Event] = []
        alerts: list[Alert] = []
        for (topic, partition), records in batch.items():
            start = self.position(topic, partition)
            fresh = [record for record in records if record.offset >= start]
            if not fresh:
                continue  # read already (fetched again after a seek)
            if topic == self.kafka.events_topic:
                self._events(partition, fresh, events)
            else:
                alerts += self._alerts(topic, fresh)
            self.positions[f"{topic}/{partition}"] = fresh[-1].offset + 1
        found = self.views.apply(events, alerts, self.clock.event_time)
        statuses = [Output(self.kafka.status_topic, record["person_id"].encode(), orjson.dumps(record))
                    for record in found]
        self.outbox += statuses
        return statuses

    def _events(self, partition: int, records: Iterable[Record], events: list[Event]) -> None:
        """Trips move event time, as in the engine (refused ones do not); partition 0's cases (the
        ones the engine accepts) and follow-ups are the views' events."""
        clock, decode = self.clock, self._intake.decode
        for record in records:
            if record.value is None or any(name == COPY_HEADER for name, _ in record.headers or ()):
                continue  # a worker's ride copy or interest note: not a published event
            try:
                event = decode(record.value).event
                if type(event) is Trip:
                    clock.check(event)
            except InvalidEvent:
                continue  # a dead letter (a partition reports it): counts for nothing, as in tracer run
            if type(event) is Trip:
                clock.advance(event.board)
            elif partition == CASES_PARTITION and (type(event) is Followup or (
                    type(event) is Case and onset_problem(event, self._zone) is None)):
                events.append(event)

    def _alerts(self, topic: str, records: Iterable[Record]) -> list[Alert]:
        alerts = []
        for record in records:
            alert = orjson.loads(record.value)
            if topic == self.kafka.contacts_topic and not is_real(alert):
                if not self.pseudonymised:
                    log.info("the contacts topic is pseudonymised: the views take alerts from %s",
                             self.kafka.private_contacts_topic)
                self.pseudonymised += 1
                continue
            alerts.append(alert)
        return alerts

    def commit(self) -> None:
        """The step's views, positions and outbox, in one write batch."""
        self.store.commit()

    def delivered(self) -> None:
        """The outbox is acknowledged; the next commit writes it empty."""
        self.outbox = []

    def close(self) -> None:
        """Drop uncommitted work and release the store."""
        self.store.close()


def is_real(alert: Alert) -> bool:
    """Whether an alert record names real persons: its id is the hash of its own fields (a
    pseudonymised one's is keyed, and its person ids too; tracer/privacy.py)."""
    return alert["alert_id"] == alert_id(alert["source_kind"], alert["case_id"], alert["contact_person_id"],
                                         alert["mode"], alert["service"], alert["date"], alert["via_person_id"])
