"""Alerts: their id, their JSON form, and where each change is delivered.

The engine reports *changes* (the alert before and after an event). ``route`` turns a change
into output records: the contacts stream sees every add and retract; a street office's queue
sees the ``close``/``secondary`` alerts of its own residents, and a retraction when one leaves
its queue (retracted, downgraded to ``general``, or the resident moved away).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, NamedTuple

import orjson

from graph.keys import CASE, service_day
from tracer.events import format_time
from tracer.rules import Level, Match
from tracer.sources import Source

SCHEMA_VERSION = 1
QUEUE_LEVELS = frozenset((Level.CLOSE, Level.SECONDARY))
UNASSIGNED = "unassigned"
CONTACTS = "contacts"

Alert = dict[str, Any]


def alert_id(
    kind: str, source_id: str, contact: str, mode: str, service: str, date: str, via: str | None = None
) -> str:
    """Deterministic id of (source kind, source id, contact, mode, service, date[, via person]):
    consumers dedupe by it. The kind (``case`` or ``exposure``) is hashed too, so that a case and an
    exposure with equal ids never share an alert id; ids hold no control characters, so joining
    the parts with one is unambiguous."""
    return AlertIds(kind, source_id, mode, service, date, via)(contact)


try:  # CPython's own SHA-256: the same digest, without OpenSSL's lookup of the algorithm on every
    from _sha256 import sha256 as _sha256  # call (0.58 against 1.0 us an id); 3.12 names it _sha2
except ImportError:  # pragma: no cover - another Python
    try:
        from _sha2 import sha256 as _sha256  # type: ignore[no-redef]
    except ImportError:
        _sha256 = hashlib.sha256


class AlertIds:
    """``alert_id`` of one source on one service day, for any contact: the parts around the contact
    are joined once (a case's recompute makes hundreds of ids of one source and day)."""

    __slots__ = ("_head", "_tail")

    def __init__(self, kind: str, source_id: str, mode: str, service: str, date: str, via: str | None = None) -> None:
        self._head = f"{kind}\x1f{source_id}\x1f"
        self._tail = f"\x1f{mode}\x1f{service}\x1f{date}" + ("" if via is None else f"\x1f{via}")

    def __call__(self, contact: str) -> str:
        return self.many([contact])[0]

    def many(self, contacts: list[str]) -> list[str]:
        """The ids of ``contacts``, in order (one call for all of them)."""
        head, tail, sha256 = self._head, self._tail, _sha256
        return [sha256(f"{head}{contact}{tail}".encode()).hexdigest()[:16] for contact in contacts]


def build_alert(
    identity: str, source: Source, found: Match, level: str, subdistrict: str | None, zone: Any, truncated: bool
) -> Alert:
    """The ``add`` record (schema v1 key order) for the best match between a source and a contact,
    whose ``alert_id`` the caller knows already (it keys the stored alert)."""
    contact = found.contact_trip
    return alert_maker(source, contact.mode, contact.service, contact.date, truncated, zone)(
        identity, found, level, subdistrict)


AlertMaker = Callable[[str, Match, str, str | None], Alert]  # (alert id, match, level, subdistrict) -> alert


def alert_maker(source: Source, mode: str, service: str, date: str, truncated: bool, zone: Any) -> AlertMaker:
    """``build_alert`` for every contact of ``source`` on one service day. What its alerts show
    alike is set once, in schema v1 key order (a copy of it and eleven fields set cost 40 % of the
    whole literal), and each exposure time is formatted once (its contacts share their rides' times)."""
    template = {
        "v": SCHEMA_VERSION,
        "alert_id": None,
        "action": "add",
        "level": None,
        "source_kind": source.kind,
        "case_id": source.case_id,
        "case_person_id": source.case_person_id,
        "contact_person_id": None,
        "via_person_id": source.via_person_id,
        "subdistrict": None,
        "mode": mode,
        "service": service,
        "date": date,
        "case_carriage": None,
        "case_seat": None,
        "contact_carriage": None,
        "contact_seat": None,
        "rule": None,
        "exposure_start": None,
        "exposure_end": None,
        "window_truncated": truncated,
    }
    times: dict[int, str] = {}

    def make(identity: str, found: Match, level: str, subdistrict: str | None) -> Alert:
        _, rule, start, end, case_trip, contact = found  # one unpacking: 0.14 us less than attributes
        alert = template.copy()
        alert["alert_id"] = identity
        alert["level"] = level
        alert["contact_person_id"] = contact.person_id
        alert["subdistrict"] = subdistrict
        alert["case_carriage"] = case_trip.carriage
        alert["case_seat"] = case_trip.seat
        alert["contact_carriage"] = contact.carriage
        alert["contact_seat"] = contact.seat
        alert["rule"] = rule
        alert["exposure_start"] = times.get(start) or times.setdefault(start, format_time(start, zone))
        alert["exposure_end"] = times.get(end) or times.setdefault(end, format_time(end, zone))
        return alert

    return make


class Change(NamedTuple):
    """One alert's state before and after an event; ``None`` means absent.

    A NamedTuple: the engine makes one per alert change, and a frozen dataclass's ``__init__``
    cost 8 % of a case lookup."""

    before: Alert | None
    after: Alert | None
    # ``after`` as JSON, when the engine has encoded it already (it stores that): ``route`` writes
    # it as it is instead of encoding the alert a second time.
    line: bytes | None = None


# ``Change(before, after, line)`` without the Python-level ``__new__`` a NamedTuple has (one an alert
# change); it takes the three fields.
new_change = partial(tuple.__new__, Change)


def fold(records: Iterable[Alert]) -> dict[str, Alert]:
    """The live alerts of a changelog (contacts stream or queue): add inserts or replaces, retract
    deletes. Folding redelivered records gives the same result: how consumers drop duplicates."""
    live: dict[str, Alert] = {}
    for record in records:
        if record["action"] == "add":
            live[record["alert_id"]] = record
        else:
            live.pop(record["alert_id"], None)
    return live


def retraction(alert: Alert) -> Alert:
    return {**alert, "action": "retract"}


def record_of(change: Change) -> Alert:
    """The contacts-stream record of a change: the alert after it, or the retraction of the one before."""
    return change.after if change.after is not None else retraction(change.before)  # type: ignore[arg-type]


def queue_of(alert: Alert) -> str | None:
    """The street-office queue an alert belongs in, or None for the contacts stream only."""
    if alert["level"] not in QUEUE_LEVELS:
        return None
    return alert["subdistrict"] or UNASSIGNED


def route(change: Change, contacts_view: Callable[[Alert], Alert] | None = None) -> list[tuple[str, bytes]]:
    """Output records ``(destination, JSON line)`` for one change, contacts stream first.

    ``contacts_view`` rewrites what the contacts stream shows (pseudonymisation); queues always
    get the alert as it is.
    """
    before, after = change.before, change.after
    record = record_of(change)
    line = change.line if after is not None and change.line is not None else orjson.dumps(record)
    records = [(CONTACTS, orjson.dumps(contacts_view(record)) if contacts_view else line)]
    old_queue = queue_of(before) if before is not None else None
    new_queue = queue_of(after) if after is not None else None
    if old_queue is not None and old_queue != new_queue:
        records.append((old_queue, orjson.dumps(retraction(before))))  # type: ignore[arg-type]
    if new_queue is not None:
        records.append((new_queue, line))
    return records


def alert_day(alert: Alert) -> str:
    """The service day (``graph.keys.service_day``) an alert is about."""
    return service_day(alert["date"], alert["mode"], alert["service"])


def is_case_close(alert: Alert | None) -> bool:
    """A close alert of a case (not of an exposure; a via source's alerts are secondary): secondary
    tracing derives a via source from each (docs/rules.md)."""
    return alert is not None and alert["level"] == Level.CLOSE and alert["source_kind"] == CASE
