"""The views read back from a store: one office's call list, one person's status, the KPIs.

"Now" is the store's event time unless the caller names another (``--at``): a call list for
tomorrow morning shows who will be overdue by then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from graph.keys import CASE_FACTS, FOLLOWUPS, META, OBSERVED, OFFICES, VIEW_TIME, WATERMARK, group
from graph.store import SEP, Store
from tracer.alerts import Alert
from tracer.events import Followup
from tracer.settings import Settings
from tracer.views.facts import AlertFact, Facts, FollowupFact
from tracer.views.health import health, status_record
from tracer.views.rows import Row, call_row, kpis, next_call_first

_FACTS, _CASES, _META = (group(family) for family in (OBSERVED, CASE_FACTS, META))


def event_time(store: Store) -> int | None:
    """The views' now: the engine's event time (embedded), or the view worker's (Kafka)."""
    mark = store.get(_META, WATERMARK) or store.get(_META, VIEW_TIME)
    return int(mark) if mark else None


def statuses(store: Store) -> dict[str, dict[str, Any]]:
    """Every person's status as last emitted (without its ``at``), of those who are not green."""
    found = {}
    for person, value in store.scan(_FACTS):
        shown = Facts.decode(value).status
        if shown is not None:
            found[person] = shown
    return found


def offices(store: Store) -> list[str]:
    """The offices with a resident who has a live alert (``unassigned`` among them)."""
    return sorted({key.split(SEP, 1)[0] for key, _ in store.scan(group(OFFICES))})


def call_list(store: Store, settings: Settings, office: str, now: int | None,
              include_general: bool = False) -> list[dict[str, Any]]:
    """The office's rows, the next call first."""
    persons = [suffix for suffix, _ in store.scan(group(OFFICES, office))]
    return [row.shown for row in next_call_first(_rows(store, settings, persons, now, include_general, office))]


def status(store: Store, settings: Settings, person: str, now: int | None) -> dict[str, Any]:
    """A person's health status at ``now`` (green when nothing is known of them)."""
    facts = Facts.decode(store.get(_FACTS, person))
    found = health(facts, now, settings.status, settings.rules.zone)
    return status_record(person, found, now, settings.rules.zone)


def tracing_kpis(store: Store, settings: Settings, now: int | None, office: str | None = None) -> dict[str, Any]:
    """Every office's KPIs and the city's, offices slowest first; given ``office``, that office's
    alone (its "city" is the office), at the cost of its own residents."""
    rows: list[Row] = []
    by_office: dict[str, list[str]] = {}
    if office is not None:
        by_office[office] = [suffix for suffix, _ in store.scan(group(OFFICES, office))]
    else:
        for key, _ in store.items(group(OFFICES)):
            listed, person = key[2:].split(SEP, 1)
            by_office.setdefault(listed, []).append(person)
    for listed, persons in by_office.items():
        rows += _rows(store, settings, persons, now, False, listed)
    return kpis(rows, now, settings.rules.zone)


def listed_in(store: Store, person: str) -> set[str]:
    """The offices whose list holds ``person``: those of their live alerts."""
    return Facts.decode(store.get(_FACTS, person)).offices()


def has_followup(store: Store, event: Followup) -> bool:
    """Whether the views hold ``event``: the run has applied it (identical follow-ups are one)."""
    return store.get(group(FOLLOWUPS, event.person_id), FollowupFact.of(event).key()) is not None


def hold(store: Store, changes: Sequence[Alert]) -> list[bool]:
    """Whether the views hold each alert change (a contacts or queue record): an add, when they hold
    its alert as it is; a retraction, when they hold anything but the alert it retracts (none, or a
    later version)."""
    persons = sorted({change["contact_person_id"] for change in changes})
    facts = {person: Facts.decode(data) for person, data in store.get_many(_FACTS, persons).items()}
    return [(facts[change["contact_person_id"]].alerts.get(change["alert_id"]) == AlertFact.of(change))
            == (change["action"] == "add") for change in changes]


def _rows(store: Store, settings: Settings, persons: list[str], now: int | None, include_general: bool,
          office: str) -> list[Row]:
    records = store.get_many(_FACTS, persons)
    facts = {person: Facts.decode(records[person]) for person in persons}
    cases = {fact.case_id for found in facts.values() for fact in found.alerts.values() if fact.source_kind == "case"}
    reported = {case: orjson.loads(data)[2] for case, data in store.get_many(_CASES, cases).items() if data is not None}
    rows = []
    for person in persons:
        row = call_row(person, office, facts[person], _followups(store, person), reported, now,
                       settings.status, settings.rules.zone, include_general)
        if row is not None:
            rows.append(row)
    return rows


def _followups(store: Store, person: str) -> list[FollowupFact]:
    return [FollowupFact.decode(value) for _, value in store.scan(group(FOLLOWUPS, person))]
