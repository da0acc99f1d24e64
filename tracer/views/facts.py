"""What the views keep of a person: summaries of their live alerts, the cases they are the person
of, their latest release and their status as last emitted; and their follow-ups. The views
(health status, call-list rows, KPIs) are pure functions of these and of "now"
(tracer/views/health.py, rows.py); tracer/views/maintain.py keeps them in the store as alerts,
cases and follow-ups arrive.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from graph.store import SEP
from tracer.alerts import UNASSIGNED, Alert
from tracer.events import Followup, format_time, repeated_time
from tracer.rules import Level

LEVELS = (Level.CLOSE, Level.SECONDARY, Level.GENERAL)  # highest first
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
ANSWERS = frozenset(("reached", "quarantined", "released"))  # a follow-up that answers an alert
RELEASED = "released"


class AlertFact(NamedTuple):
    """What the views need of one live alert."""

    level: str
    source_kind: str
    case_id: str
    exposure_end: int  # epoch microseconds
    office: str  # the contact's subdistrict, or ``unassigned``

    @classmethod
    def of(cls, alert: Alert) -> AlertFact:
        return cls(alert["level"], alert["source_kind"], alert["case_id"], repeated_time(alert["exposure_end"]),
                   alert["subdistrict"] or UNASSIGNED)


@dataclass(slots=True)
class Facts:
    """One record per person, so that a step reads and writes each person once: their alerts
    (alert id -> summary), their cases (case id -> status, for the cases whose person they are),
    the time of their latest ``released`` follow-up, and their status as last emitted (without its
    ``at``) with the time it changes next by itself."""

    alerts: dict[str, AlertFact]
    cases: dict[str, str]
    released: int | None = None
    status: dict[str, Any] | None = None  # None: green
    next_change: int | None = None

    def encode(self) -> bytes | None:
        """The stored form; None when there is nothing to keep (the key is deleted)."""
        if not self.alerts and not self.cases and self.released is None and self.status is None:
            return None
        return orjson.dumps({"a": self.alerts, "c": self.cases, "r": self.released, "s": self.status,
                             "n": self.next_change}, default=tuple)  # an AlertFact as the list it is

    @classmethod
    def decode(cls, data: bytes | None) -> Facts:
        if data is None:
            return cls({}, {})
        stored = orjson.loads(data)
        alerts = {key: AlertFact(*value) for key, value in stored["a"].items()}
        return cls(alerts, stored["c"], stored["r"], stored["s"], stored["n"])

    def offices(self) -> set[str]:
        return {fact.office for fact in self.alerts.values()}


class FollowupFact(NamedTuple):
    """A stored follow-up. Tuples compare field by field, so the greatest is the latest by the
    order docs/rules.md gives (time, then outcome, by, note as text, absent first)."""

    at: int
    outcome: str
    by: tuple[str] | tuple[()]  # () when absent, so that absent sorts first
    note: tuple[str] | tuple[()]

    @classmethod
    def of(cls, event: Followup) -> FollowupFact:
        return cls(event.at, event.outcome, _optional(event.by), _optional(event.note))

    def key(self) -> str:
        """The store suffix under the person: time first (a scan reads them in time order), then a
        digest of the rest, so identical follow-ups are one."""
        digest = hashlib.sha256(self.encode()).hexdigest()[:16]
        return f"{self.at:020d}{SEP}{digest}"  # times are after 1970 (tracer/events.py): never negative

    def encode(self) -> bytes:
        return orjson.dumps(tuple(self))

    @classmethod
    def decode(cls, data: bytes) -> FollowupFact:
        at, outcome, by, note = orjson.loads(data)
        return cls(at, outcome, tuple(by), tuple(note))  # type: ignore[arg-type]

    def show(self, zone: Any) -> dict[str, Any]:
        return {"outcome": self.outcome, "at": format_time(self.at, zone),
                "by": self.by[0] if self.by else None, "note": self.note[0] if self.note else None}


def _optional(value: str | None) -> tuple[str] | tuple[()]:
    return () if value is None else (value,)
