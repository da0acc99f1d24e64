"""The one interface between the console's pages and the tracing state it shows and feeds.

Embedded mode implements it over a run's --state and --out (``streams.console.embedded``), Kafka
mode over the state of ``tracer views`` and the topics (``streams.console.kafka``), and the pages
do not change. What a mode does not keep raises ``NotKept``, which the pages answer with 503 and
its message. Every method may block (a state read): the pages call them off the event loop. Times
are ISO 8601 strings, as the views show them; "now" is always the state's event time (docs/rules.md:
nothing reads the wall clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from tracer.analysis.lookup import Answer
from tracer.analysis.question import Question
from tracer.errors import TracerError

Rows = list[dict[str, Any]]


class NotKept(TracerError):
    """What this console's data does not hold in its mode; the message says what would."""


@dataclass
class Changes:
    """What one look at the state found since the last one."""

    offices: set[str] = field(default_factory=set)  # whose call list changed
    alert_changes: int = 0
    status_changes: int = 0
    lag_seconds: float = 0.0  # how long the outputs (or queue topics) have held alerts the state read does not


class ConsoleData(Protocol):
    def now(self) -> str | None:
        """The state's event time."""

    def call_list(self, office: str, include_general: bool = False) -> Rows:
        """The office's call list, the next call first (tracer.views.call_list)."""

    def office_kpis(self, office: str) -> dict[str, Any]:
        """The office's tracing KPIs (tracer.views.tracing_kpis of its rows)."""

    def kpis(self) -> dict[str, Any]:
        """Every office's KPIs, slowest first, and the city's."""

    def every_row(self) -> Rows:
        """Every office's call-list rows (close and secondary), for progress over time."""

    def offices_of(self, person: str) -> set[str]:
        """The offices a person belongs to: their home's, and every office whose list holds them."""

    def status(self, person: str) -> dict[str, Any]:
        """A person's health status now."""

    def cases(self) -> Rows:
        """Every case and published exposure with its live contacts counted by level."""

    def case_contacts(self, case_id: str) -> Rows | None:
        """A case's live contacts, direct and secondary, folded (None: no such case)."""

    def clusters(self) -> Rows:
        """Cases linked by shared trips or transmission, largest first."""

    def case_picture(self, case_id: str) -> str | None:
        """SVG of a case's chain (None: no such case)."""

    def lookup(self, question: Question) -> Answer:
        """The same-trip lookup's answer (tracer.analysis.lookup, staff form: the page shows only its
        public part); StateError for a day the state no longer keeps."""

    def append_followup(self, record: dict[str, Any]) -> bool:
        """Write a followup event into the stream; False when an identical one was written before.
        InvalidEvent with the reason when the run would refuse it."""

    def poll(self) -> Changes:
        """Look at the state again: what changed since the last look."""

    def close(self) -> None: ...
