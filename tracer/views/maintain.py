"""Keeping the views in the store: each engine step's alert changes, cases and follow-ups update
the facts of the persons they concern, whose health status is then recomputed; a status whose
``until`` event time passes is recomputed then. Every status change comes back as a record to emit.

The views depend only on what they are given, never on arrival order: facts are sets (live alerts
by id, follow-ups by content) and the status is a function of them and of now. So the embedded
runner hands them its engine's steps, and Kafka's view process the topics, and both arrive at the
same state (docs/rules.md, "Follow-up and health status").

A step reads and writes each person's record once (``Facts``: alerts, cases, release, status), so
the views cost a read and a write per person an engine step touches.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from graph.keys import CASE_FACTS, FOLLOWUPS, OBSERVED, OFFICES, group
from graph.store import SEP, Store
from tracer.alerts import Alert
from tracer.events import Case, Event, Followup, local_midnight, next_midnight
from tracer.rules import retention_horizon
from tracer.settings import Settings
from tracer.views.facts import RELEASED, AlertFact, Facts, FollowupFact
from tracer.views.health import health, status_record

_FACTS, _CASES = group(OBSERVED), group(CASE_FACTS)
VIEWED_EVENTS = (Case, Followup)  # the events the views take besides alert changes


class Views:
    """The views of one store. ``apply`` takes a step; it returns the status records to emit."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.status, self.rules = settings.status, settings.rules
        self.zone = settings.rules.zone
        # When each status changes next: (time, person), rebuilt from the store (a scan, not
        # ``items``, which would commit: a runner may hold a step's writes uncommitted). An entry may
        # be stale (the person changed since); recomputing a person is idempotent, so it does no harm.
        self._expiries: list[tuple[int, str]] = []
        for person, value in store.scan(_FACTS):
            upcoming = orjson.loads(value)["n"]
            if upcoming is not None:
                self._expiries.append((upcoming, person))
        heapq.heapify(self._expiries)
        self._horizon: str | None = None
        self._next_day = -(1 << 62)  # when event time leaves the day of the last retention check

    def apply(self, events: Sequence[Event], alerts: Iterable[Alert], now: int | None) -> list[dict[str, Any]]:
        """Take a step: ``events`` applied by it (of ``VIEWED_EVENTS``; others are passed over),
        ``alerts`` the records of its alert changes in order (add or retract), ``now`` event time after it."""
        step = _Step(self.store)
        for event in events:
            if type(event) is Followup:
                self._followup(event, step)
            elif type(event) is Case:
                self._case(event, step)
        for alert in alerts:
            facts = step.facts(alert["contact_person_id"])
            if alert["action"] == "add":
                facts.alerts[alert["alert_id"]] = AlertFact.of(alert)
            else:
                facts.alerts.pop(alert["alert_id"], None)
        if now is not None:
            self._forget_old(now, step)
            while self._expiries and self._expiries[0][0] <= now:
                step.facts(heapq.heappop(self._expiries)[1])
        records = [record for person in sorted(step.read) if (record := self._refresh(person, step, now))]
        step.save()
        return records

    def _followup(self, event: Followup, step: _Step) -> None:
        fact = FollowupFact.of(event)
        self.store.put(group(FOLLOWUPS, event.person_id), fact.key(), fact.encode())
        if event.outcome == RELEASED:
            facts = step.facts(event.person_id)
            facts.released = max(facts.released or event.at, event.at)

    def _case(self, case: Case, step: _Step) -> None:
        """Record the case's person, status and report time; move it between persons if its person changed."""
        old = self.store.get(_CASES, case.case_id)
        if old is not None:
            step.facts(orjson.loads(old)[0]).cases.pop(case.case_id, None)
        self.store.put(_CASES, case.case_id, orjson.dumps((case.person_id, case.status, case.reported_at)))
        step.facts(case.person_id).cases[case.case_id] = case.status

    def _forget_old(self, now: int, step: _Step) -> None:
        """The views' retention (docs/rules.md): once a day of event time, forget alerts whose exposure
        ended before the horizon, and the follow-ups older than it of persons with nothing else kept."""
        if now < self._next_day:
            return  # the horizon moves with the day of event time: nothing to do within a day
        self._next_day = next_midnight(now, self.zone)
        horizon = retention_horizon(now, self.rules)
        if horizon == self._horizon:
            return
        self._horizon, start = horizon, local_midnight(horizon, self.zone)
        for person, value in self.store.scan(_FACTS):
            kept = Facts.decode(value)
            if (kept.released is not None and kept.released < start) or any(
                    fact.exposure_end < start for fact in kept.alerts.values()):
                facts = step.facts(person)
                facts.alerts = {key: fact for key, fact in facts.alerts.items() if fact.exposure_end >= start}
                if facts.released is not None and facts.released < start:
                    facts.released = None  # it releases no alert still kept
        cut = f"{start:020d}"
        for key, _ in self.store.scan(group(FOLLOWUPS)):  # every person's: the committed ones suffice
            person, suffix = key.split(SEP, 1)
            if suffix < cut and person not in step.read and self.store.get(_FACTS, person) is None:
                self.store.delete(group(FOLLOWUPS, person), suffix)

    def _refresh(self, person: str, step: _Step, now: int | None) -> dict[str, Any] | None:
        """Recompute a person's status; the record to emit when it changed, else None."""
        facts = step.read[person]
        found = health(facts, now, self.status, self.zone)
        record = status_record(person, found, now, self.zone)
        shown = {name: value for name, value in record.items() if name != "at"} if found.reasons else None
        if found.next_change is not None and found.next_change != facts.next_change:
            heapq.heappush(self._expiries, (found.next_change, person))
        facts.next_change = found.next_change
        if shown == facts.status:
            return None
        facts.status = shown
        return record


class _Step:
    """The persons a step touches: each record read once, written once at the end, and the office
    index (``OFFICES``) moved with it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.read: dict[str, Facts] = {}
        self._offices: dict[str, set[str]] = {}  # the offices each person was listed in before the step

    def facts(self, person: str) -> Facts:
        found = self.read.get(person)
        if found is None:
            found = self.read[person] = Facts.decode(self.store.get(_FACTS, person))
            self._offices[person] = found.offices()
        return found

    def save(self) -> None:
        for person, facts in self.read.items():
            before, after = self._offices[person], facts.offices()
            for office in before - after:
                self.store.delete(group(OFFICES, office), person)
            for office in after - before:
                self.store.put(group(OFFICES, office), person, b"")
            self.store.put(_FACTS, person, facts.encode())
