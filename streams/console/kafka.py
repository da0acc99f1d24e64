"""The console's data in Kafka mode: the store of ``tracer views`` and the topics (docs/console.md,
"Kafka mode").

* **Reads.** The views' store (call lists, KPIs, statuses, event time) is opened as a RocksDB
  secondary instance, as embedded mode opens a run's, and caught up at every look. The engine's
  families (alerts, sources, rides) live in the workers' partition stores, spread over machines:
  the epidemiologists' pages and the public lookup read a ``tracer replay`` state when given one
  (``replay``), and otherwise answer that they need one (``NotKept``: a 503 with the message).
* **What changed** (``poll``): the status and street-office queue topics, heard by
  ``broker.BrokerLink``. A status record is sent after the views committed its step, so once caught
  up the store holds it: the offices whose list holds that person are told. A queue record comes
  from a worker, and the views take the same change from the contacts topic a little later: its
  office is told once the store holds it (``tracer.views.hold``), so that the rows a page fetches
  then show it, as embedded mode tells an office only of lines the state holds.
* **Actions** (``append_followup``): a followup event checked by the runner's intake and published
  as ``tracer publish`` would (every events partition, a ``tracer-seq`` header), once: an identical
  one is refused when this console published it, when the views hold it, or when it was published
  and not yet read by the views at start (``BrokerLink.unread``). So a double click, or the same
  form sent again after a restart of the console or of the view process, makes one record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson

from connectors.kafka.settings import KafkaSettings
from graph.keys import KAFKA_POSITION, META, POSITION, WATERMARK, group
from graph.store import RocksStore
from streams.console.broker import BrokerLink
from streams.console.data import Changes, NotKept, Rows
from streams.console.followups import Waiting, checked, digest
from streams.console.reads import StateReads
from tracer.alerts import Alert
from tracer.analysis.lookup import Answer
from tracer.analysis.question import Question
from tracer.errors import StateError
from tracer.intake import Intake
from tracer.settings import Settings
from tracer.views import has_followup, hold, listed_in

log = logging.getLogger(__name__)
NEEDS_REPLAY = ("in Kafka mode the cases, their contacts and clusters, the chain picture and the same-trip lookup "
                "read a state of tracer replay (the workers' partition stores hold them in pieces): start "
                "tracer serve with --replay-state DIR, the --state of a tracer replay")
_MAX_QUEUED = 10_000  # queue records waiting for the views; beyond, the oldest's office is told anyway
_GIVE_UP_SECONDS = 300.0  # a queue record the views have not taken by then: its office is told anyway


class KafkaData(StateReads):
    def __init__(self, state: Path, settings: Settings, kafka: KafkaSettings, scratch: Path,
                 replay: Path | None = None) -> None:
        if not (state / "CURRENT").exists():
            raise StateError(f"{state} holds no views: give the --state of tracer views (started first)")
        super().__init__(RocksStore(state, secondary=scratch), settings)
        self.path, self.kafka, self.intake = state, kafka, Intake(settings)
        self.analysis: StateReads | None = None
        try:
            positions = self._positions()
            if replay is not None:
                self.analysis = StateReads(RocksStore(replay, read_only=True), settings)
            self.link = BrokerLink(kafka, self.intake, positions.get(f"{kafka.events_topic}/0", 0))
        except BaseException:
            self._close_stores()
            raise
        self._published = {digest(event) for event in self.link.unread}
        self._publishing = threading.Lock()
        self._waiting = Waiting()  # published by this console, not yet in the views
        self._queued: OrderedDict[tuple[str, str], tuple[Alert, float]] = OrderedDict()  # (office, alert id)
        self._alert_changes = self._contacts_read(positions)

    def _positions(self) -> dict[str, int]:
        """The next offset of every topic partition the views have read; refuses a state that is not
        this deployment's views."""
        meta = self.store.get(group(META), KAFKA_POSITION)
        found = orjson.loads(meta) if meta else None
        if any(self.store.get(group(META), name) is not None for name in (WATERMARK, POSITION)) or (
                found is not None and "views" not in found):
            raise StateError(f"{self.path} is the state of a run or a partition: in Kafka mode, give tracer views's")
        if found is not None and found["views"] != self.kafka.events_topic:
            raise StateError(f"{self.path} holds the views of {found['views']}, not of {self.kafka.events_topic}")
        return found["next"] if found else {}

    def _contacts_read(self, positions: dict[str, int]) -> int:
        """How many contacts-topic records (alert changes) the views have read."""
        prefix = self.kafka.contacts_topic + "/"
        return sum(offset for name, offset in positions.items() if name.startswith(prefix))

    def _analysis(self) -> StateReads:
        if self.analysis is None:
            raise NotKept(NEEDS_REPLAY)
        return self.analysis

    def cases(self) -> Rows:
        return self._analysis().cases()

    def case_contacts(self, case_id: str) -> Rows | None:
        return self._analysis().case_contacts(case_id)

    def clusters(self) -> Rows:
        return self._analysis().clusters()

    def case_picture(self, case_id: str) -> str | None:
        return self._analysis().case_picture(case_id)

    def lookup(self, question: Question) -> Answer:
        return self._analysis().lookup(question)

    def append_followup(self, record: dict[str, Any]) -> bool:
        line, event = checked(record, self.intake)
        identity = digest(event)
        with self._publishing:  # one at a time: the second of a double click finds the first
            if identity in self._published:
                return False
            with self._lock:
                held = has_followup(self.store, event)
            if not held:
                self.link.publish(event, line)
            self._published.add(identity)
        if not held:
            self._waiting.add(event, str(record.get("by")))
        return not held

    def poll(self) -> Changes:
        heard = self.link.take()
        now = time.monotonic()
        for office, alert in heard.alerts:  # of each alert in each queue the latest change, waiting since the first
            key = (office, alert["alert_id"])
            self._queued[key] = (alert, self._queued[key][1] if key in self._queued else now)
        with self._lock:
            self.catch_up()
            offices = self._waiting.applied(self.store)
            for person in set(heard.persons):
                offices |= listed_in(self.store, person)
            offices |= self._shown(now)
            read = self._contacts_read(self._positions())
        changes, self._alert_changes = read - self._alert_changes, read
        lag = now - min(since for _, since in self._queued.values()) if self._queued else 0.0
        return Changes(offices, changes, len(heard.persons), lag)

    def _shown(self, now: float) -> set[str]:
        """The offices of queued records the views now hold (or that waited too long); they wait no more."""
        keys = list(self._queued)
        held = hold(self.store, [self._queued[key][0] for key in keys])
        done = {key for key, shown in zip(keys, held, strict=True) if shown}
        waiting = [key for key in keys if key not in done]  # the first seen first
        late = {key for key in waiting if now - self._queued[key][1] > _GIVE_UP_SECONDS}
        late |= set(waiting[:max(len(waiting) - _MAX_QUEUED, 0)])
        if late:
            log.warning("the views have not taken %d alert changes of the queues: is tracer views running?", len(late))
        for key in done | late:
            del self._queued[key]
        return {office for office, _ in done | late}

    def close(self) -> None:
        self.link.close()
        self._close_stores()

    def _close_stores(self) -> None:
        if self.analysis is not None:
            self.analysis.close()
        super().close()
