"""Keeping the views in the store: each engine step's alert changes, cases and follow-ups update
the facts of the persons they concern, whose health status is then recomputed; a status whose
``until`` event time passes is recomputed then. Every status change comes back as a record to emit.

The views depend only on what they are given, never on arrival order: facts are sets (live alerts
by id, follow-ups by content) and the status is a function of them and of now. So the embedded
runner hands them its engine's steps, and Kafka's view worker the contacts topic, and both arrive
at the same state (docs/rules.md, "Follow-up and health status").
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from graph.keys import CASE_FACTS, FOLLOWUPS, HEALTH, OBSERVED, OFFICES, group
from graph.store import SEP, Store
from tracer.alerts import Alert
from tracer.events import Case, Event, Followup, local_midnight
from tracer.rules import retention_horizon
from tracer.settings import Settings
from tracer.views.facts import AlertFact, Facts, FollowupFact
from tracer.views.health import RELEASED, health, released_at, status_record

_FACTS, _HEALTH, _CASES = (group(family) for family in (OBSERVED, HEALTH, CASE_FACTS))


class Views:
    """The views of one store. ``apply`` takes a step; it returns the status records to emit."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.status, self.rules = settings.status, settings.rules
        self.zone = settings.rules.zone
        # When each status changes next: (time, person), rebuilt from the store. An entry may be
        # stale (the person changed since); recomputing a person is idempotent, so it does no harm.
        self._expiries: list[tuple[int, str]] = []
        # Scans, not ``items``: those commit, and a runner may hold a step's writes uncommitted.
        for person, value in store.scan(_HEALTH):
            upcoming = orjson.loads(value)["next"]
            if upcoming is not None:
                self._expiries.append((upcoming, person))
        heapq.heapify(self._expiries)
        self._horizon: str | None = None

    def apply(self, events: Sequence[Event], alerts: Iterable[Alert], now: int | None) -> list[dict[str, Any]]:
        """Take a step: ``events`` applied by it (cases and follow-ups count), ``alerts`` the records
        of its alert changes in order (add or retract), ``now`` event time after it."""
        changed: dict[str, Facts] = {}  # person -> facts, read once per step
        offices: dict[str, set[str]] = {}  # person -> the offices they were listed in before the step
        dirty: set[str] = set()  # persons whose status may have changed

        def facts_of(person: str) -> Facts:
            if person not in changed:
                changed[person] = Facts.decode(self.store.get(_FACTS, person))
                offices[person] = changed[person].offices()
            return changed[person]

        for event in events:
            if type(event) is Followup:
                self._followup(event, dirty)
            elif type(event) is Case:
                self._case(event, facts_of, dirty)
        for alert in alerts:
            person, facts = alert["contact_person_id"], facts_of(alert["contact_person_id"])
            if alert["action"] == "add":
                facts.alerts[alert["alert_id"]] = AlertFact.of(alert)
            else:
                facts.alerts.pop(alert["alert_id"], None)
            dirty.add(person)
        if now is not None:
            self._forget_old(now, changed, facts_of, dirty)
            while self._expiries and self._expiries[0][0] <= now:
                dirty.add(heapq.heappop(self._expiries)[1])
        for person, facts in changed.items():
            self._save(person, facts, offices[person])
        return [record for person in sorted(dirty) if (record := self._refresh(person, changed, now))]

    # -- facts -------------------------------------------------------------------------------
    def _followup(self, event: Followup, dirty: set[str]) -> None:
        fact = FollowupFact.of(event)
        self.store.put(group(FOLLOWUPS, event.person_id), fact.key(), fact.encode())
        if event.outcome == RELEASED:
            dirty.add(event.person_id)

    def _case(self, case: Case, facts_of: Any, dirty: set[str]) -> None:
        """Record the case's person, status and report time; move it between persons if its person changed."""
        old = self.store.get(_CASES, case.case_id)
        if old is not None:
            person = orjson.loads(old)[0]
            facts_of(person).cases.pop(case.case_id, None)
            dirty.add(person)
        self.store.put(_CASES, case.case_id, orjson.dumps((case.person_id, case.status, case.reported_at)))
        facts_of(case.person_id).cases[case.case_id] = case.status
        dirty.add(case.person_id)

    def _save(self, person: str, facts: Facts, before: set[str]) -> None:
        """Store a person's facts and keep the office index in step with them."""
        after = facts.offices()
        for office in before - after:
            self.store.delete(group(OFFICES, office), person)
        for office in after - before:
            self.store.put(group(OFFICES, office), person, b"")
        self.store.put(_FACTS, person, facts.encode())

    def _forget_old(self, now: int, changed: dict[str, Facts], facts_of: Any, dirty: set[str]) -> None:
        """The views' retention (docs/rules.md): once a day of event time, forget alerts whose exposure
        ended before the horizon, and the follow-ups older than it of persons with no alert left."""
        horizon = retention_horizon(now, self.rules)
        if horizon == self._horizon:
            return
        self._horizon, start = horizon, local_midnight(horizon, self.zone)
        for person, value in self.store.scan(_FACTS):
            old = {alert_id for alert_id, fact in Facts.decode(value).alerts.items() if fact.exposure_end < start}
            if old:
                facts = facts_of(person)
                for alert_id in old:
                    facts.alerts.pop(alert_id, None)
                dirty.add(person)
        cut = f"{start:020d}"
        for key, _ in self.store.scan(group(FOLLOWUPS)):  # every person's: the committed ones suffice
            person, suffix = key.split(SEP, 1)
            if suffix < cut and person not in changed and self.store.get(_FACTS, person) is None:
                self.store.delete(group(FOLLOWUPS, person), suffix)

    # -- status ------------------------------------------------------------------------------
    def _refresh(self, person: str, changed: dict[str, Facts], now: int | None) -> dict[str, Any] | None:
        """Recompute a person's status; the record to emit when it changed, else None."""
        facts = changed.get(person) or Facts.decode(self.store.get(_FACTS, person))
        followups = [FollowupFact.decode(value) for _, value in self.store.scan(group(FOLLOWUPS, person))]
        found = health(facts, released_at(followups), now, self.status, self.zone)
        record = status_record(person, found, now, self.zone)
        shown = {name: value for name, value in record.items() if name != "at"}
        stored = self.store.get(_HEALTH, person)
        if stored is not None and orjson.loads(stored)["status"] == shown:
            return None
        if stored is None and found.reasons == []:
            return None  # green, as it was
        if found.next_change is not None:
            heapq.heappush(self._expiries, (found.next_change, person))
        if found.reasons:
            self.store.put(_HEALTH, person, orjson.dumps({"status": shown, "next": found.next_change}))
        else:
            self.store.delete(_HEALTH, person)
        return record
