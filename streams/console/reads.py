"""The console's reads of one RocksDB state: the views (call lists, KPIs, statuses) and the analysis
(cases, contacts, clusters, the chain picture, the lookup), each a ``ConsoleData`` method.

Embedded mode reads both from the run's state (``embedded.EmbeddedData``). Kafka mode reads the
views from ``tracer views``'s store and the analysis, if given one, from a ``tracer replay`` state
(``kafka.KafkaData``): one class for both, so the pages see the same answers in both modes. One lock
keeps reads apart from whoever catches the store up (``catch_up``), so a page never reads half of a
commit.

A secondary instance changes only when it is caught up, so until then a read gives the same answer:
the reads every open page repeats (call lists, KPIs, now) are kept until the next catch-up, and the
pages of one office, told of one change, read it once between them (200 pages over 50 offices
beside a busy run: ``python -m benchmarks console --load``). Callers do not change what they are
given.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from graph.keys import CASE, HOMES, case_key, group
from graph.store import RocksStore
from streams.console.data import Rows
from tracer.alerts import UNASSIGNED
from tracer.analysis.lookup import Answer, lookup
from tracer.analysis.network import case_subgraph, clusters, contact_graph
from tracer.analysis.picture import case_svg
from tracer.analysis.queries import all_sources, case_alerts, live_alerts, source
from tracer.analysis.question import Question
from tracer.events import format_time
from tracer.settings import Settings
from tracer.views import call_list, event_time, listed_in, offices, status, tracing_kpis

T = TypeVar("T")


class StateReads:
    """The reads of ``store`` (opened by the caller, closed by ``close``)."""

    def __init__(self, store: RocksStore, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, ...], Any] = {}  # answers until the next catch-up (``_read_kept``)

    def catch_up(self) -> None:
        """Bring a secondary instance to what its primary has written; the kept answers go. The
        caller holds ``_lock`` (and reads what the catch-up brought under the same hold)."""
        self.store.catch_up()
        self._kept.clear()

    def _read(self, query: Callable[[RocksStore, int | None], T]) -> T:
        """``query(store, now)`` with nothing caught up meanwhile."""
        with self._lock:
            return query(self.store, event_time(self.store))

    def _read_kept(self, key: tuple[str, ...], query: Callable[[RocksStore, int | None], T]) -> T:
        """``_read(query)``, read once until the next catch-up (``key`` names the read: few of them,
        the offices' lists and KPIs)."""
        with self._lock:
            if key not in self._kept:
                self._kept[key] = query(self.store, event_time(self.store))
            return self._kept[key]  # type: ignore[no-any-return]

    def now(self) -> str | None:
        moment = self._read_kept(("now",), lambda _, now: now)
        return format_time(moment, self.settings.rules.zone) if moment is not None else None

    def call_list(self, office: str, include_general: bool = False) -> Rows:
        return self._read_kept(("call_list", office, "general" if include_general else ""),
                               lambda store, now: call_list(store, self.settings, office, now, include_general))

    def office_kpis(self, office: str) -> dict[str, Any]:
        return self._read_kept(("office_kpis", office), lambda store, now: {
            **tracing_kpis(store, self.settings, now, office)["city"], "subdistrict": office})

    def kpis(self) -> dict[str, Any]:
        return self._read_kept(("kpis",), lambda store, now: tracing_kpis(store, self.settings, now))

    def every_row(self) -> Rows:
        return self._read_kept(("every_row",), lambda store, now: [
            row for office in offices(store) for row in call_list(store, self.settings, office, now)])

    def offices_of(self, person: str) -> set[str]:
        """Their home's office (a state that keeps the registry: an embedded run's) and every office
        whose list holds them."""
        def read(store: RocksStore, _: int | None) -> set[str]:
            home = store.get(group(HOMES), person)
            return listed_in(store, person) | ({home.decode() or UNASSIGNED} if home is not None else set())

        return self._read(read)

    def status(self, person: str) -> dict[str, Any]:
        return self._read(lambda store, now: status(store, self.settings, person, now))

    def cases(self) -> Rows:
        def read(store: RocksStore, _: int | None) -> Rows:
            counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
            for alert in live_alerts(store):
                counts[alert["source_kind"], alert["case_id"]][alert["level"]] += 1
            found = []
            for src in all_sources(store, self.settings.rules):
                if src.via_person_id is None:
                    reported = src.reported_at if src.kind == CASE else None
                    found.append({"kind": src.kind, "case_id": src.case_id, "person_id": src.person_id,
                                  "onset": src.onset, "traced": src.window is not None,
                                  "reported_at": format_time(reported, self.settings.rules.zone) if reported else None,
                                  **counts[src.kind, src.case_id]})
            return found

        rows = self._read(read)
        return sorted(rows, key=lambda row: (-row.get("close", 0), -row.get("secondary", 0), row["case_id"]))

    def case_contacts(self, case_id: str) -> Rows | None:
        def read(store: RocksStore, _: int | None) -> Rows | None:
            alerts = case_alerts(store, case_id)
            return alerts if alerts or source(store, case_key(case_id), self.settings.rules) else None

        return self._read(read)

    def clusters(self) -> Rows:
        found, _ = self._read(lambda store, _: clusters(store, self.settings.rules))
        return [{"cases": one.cases, "shared_services": one.shared_services, "links": one.links,
                 "first_onset": one.first_onset} for one in found]

    def case_picture(self, case_id: str) -> str | None:
        graph = self._read(lambda store, _: contact_graph(store, self.settings.rules))
        try:
            return case_svg(case_subgraph(graph, case_id), case_id)
        except KeyError:
            return None

    def lookup(self, question: Question) -> Answer:
        return self._read(lambda store, _: lookup(store, self.settings.rules, question))

    def close(self) -> None:
        with self._lock:
            self.store.close()
