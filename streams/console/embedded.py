"""The console's data in embedded mode: a run's --state read beside ``tracer run --follow``.

The state is opened as a RocksDB secondary instance (read-only, beside the run that holds it) and
caught up when the run's outputs grow (``outputs.OutputWatcher``), or while a follow-up the console
appended waits to be applied (an applied follow-up may change no output: "reached" keeps a
status). Follow-ups go into the file the run follows (``followups.FollowupLog``). One lock keeps
catching up and reading apart, so a page never reads half of a commit.

The secondary instance changes only when it catches up, so until then a read gives the same answer:
the reads every open page repeats (call lists, KPIs, now) are kept until the next catch-up. The
pages of one office, told of one change, read it once, and the run is left the CPU (measured with
200 pages over 50 offices: ``python -m benchmarks console --load``). Callers do not change what
they are given.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from connectors.files import display_name
from graph.keys import CASE, HOMES, META, POSITION, case_key, group
from graph.store import RocksStore
from streams.console.data import Changes, Rows
from streams.console.followups import FollowupLog
from streams.console.outputs import OutputWatcher, behind
from streams.embedded import COORDINATOR_DIR
from tracer.alerts import UNASSIGNED
from tracer.analysis.lookup import Answer, lookup
from tracer.analysis.network import case_subgraph, clusters, contact_graph
from tracer.analysis.picture import case_svg
from tracer.analysis.queries import all_sources, case_alerts, live_alerts, source
from tracer.analysis.question import Question
from tracer.errors import StateError
from tracer.events import Followup, format_time
from tracer.intake import Intake
from tracer.settings import Settings
from tracer.views import call_list, event_time, has_followup, listed_in, offices, status, tracing_kpis

log = logging.getLogger(__name__)
T = TypeVar("T")
_MAX_WAITING = 10_000  # follow-ups waiting to be applied that are watched for; the oldest is dropped


class EmbeddedData:
    def __init__(self, state: Path, out: Path, followups: Path, settings: Settings, scratch: Path) -> None:
        if not (state / "CURRENT").exists():
            several = (state / COORDINATOR_DIR).is_dir()
            raise StateError(f"{state} is a state of tracer run --workers N, which the console does not read yet"
                             if several else f"{state} holds no tracer state: start tracer run --follow first")
        self.settings = settings
        self.store = RocksStore(state, secondary=scratch)
        self._lock = threading.Lock()
        meta = self._checkpoint()
        if meta.get("out") != display_name(str(out.resolve())):
            self.store.close()
            raise StateError(f"{state} is the state of the run writing {meta.get('out')}, not {out}")
        _say_if_not_read(meta, followups)
        self.watcher = OutputWatcher(out, meta["outputs"])
        self.log = FollowupLog(followups, Intake(settings))
        self._waiting: OrderedDict[Followup, str] = OrderedDict()  # appended, not yet applied -> office
        self._behind_since: float | None = None
        self._answers: dict[tuple[str, ...], Any] = {}  # reads kept until the next catch-up (``_kept``)

    def _checkpoint(self) -> dict[str, Any]:
        saved = self.store.get(group(META), POSITION)
        if saved is None:
            raise StateError("no run has written this state yet: start tracer run --follow first")
        return orjson.loads(saved)  # type: ignore[no-any-return]

    def _read(self, query: Callable[[RocksStore, int | None], T]) -> T:
        """``query(store, now)`` with nothing caught up meanwhile."""
        with self._lock:
            return query(self.store, event_time(self.store))

    def _kept(self, key: tuple[str, ...], query: Callable[[RocksStore, int | None], T]) -> T:
        """``_read(query)``, answered once until the next catch-up (``key`` names the read: few of them,
        the offices' lists and KPIs)."""
        with self._lock:
            if key not in self._answers:
                self._answers[key] = query(self.store, event_time(self.store))
            return self._answers[key]  # type: ignore[no-any-return]

    def now(self) -> str | None:
        moment = self._kept(("now",), lambda _, now: now)
        return format_time(moment, self.settings.rules.zone) if moment is not None else None

    def call_list(self, office: str, include_general: bool = False) -> Rows:
        return self._kept(("call_list", office, "general" if include_general else ""),
                          lambda store, now: call_list(store, self.settings, office, now, include_general))

    def office_kpis(self, office: str) -> dict[str, Any]:
        return self._kept(("office_kpis", office), lambda store, now: {
            **tracing_kpis(store, self.settings, now, office)["city"], "subdistrict": office})

    def kpis(self) -> dict[str, Any]:
        return self._kept(("kpis",), lambda store, now: tracing_kpis(store, self.settings, now))

    def every_row(self) -> Rows:
        return self._kept(("every_row",), lambda store, now: [row for office in offices(store)
                                                              for row in call_list(store, self.settings, office, now)])

    def offices_of(self, person: str) -> set[str]:
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

    def append_followup(self, record: dict[str, Any]) -> bool:
        event = self.log.append(record)
        if event is None:
            return False
        with self._lock:
            self._waiting[event] = str(record.get("by"))
            while len(self._waiting) > _MAX_WAITING:
                self._waiting.popitem(last=False)
        return True

    def poll(self) -> Changes:
        sizes = self.watcher.sizes()
        if not self.watcher.moved(sizes) and not self._waiting:
            self._behind_since = None  # read to the end: nothing is behind
            return Changes()
        with self._lock:
            self.store.catch_up()
            self._answers.clear()
            checkpoint = self._checkpoint()["outputs"]
            seen = self.watcher.read(sizes, checkpoint)
            offices_changed = set(seen.queues)
            for person in set(seen.persons):
                offices_changed |= listed_in(self.store, person)
            for event, office in list(self._waiting.items()):
                if has_followup(self.store, event):
                    offices_changed.add(office)
                    del self._waiting[event]
        return Changes(offices_changed, seen.alert_changes, len(seen.persons), self._lag(behind(sizes, checkpoint)))

    def _lag(self, is_behind: bool) -> float:
        if not is_behind:
            self._behind_since = None
            return 0.0
        if self._behind_since is None:
            self._behind_since = time.monotonic()
        return time.monotonic() - self._behind_since

    def close(self) -> None:
        with self._lock:
            self.store.close()


def _say_if_not_read(meta: dict[str, Any], followups: Path) -> None:
    """Warn when the run does not name the follow-up file among its inputs (as far as can be told
    from here: the run's input names are as it was given them)."""
    for name in meta.get("inputs", []):
        with contextlib.suppress(OSError):
            if Path(name).resolve() == followups.resolve() or os.path.samefile(name, followups):
                return
    log.warning("the run of this state does not read %s (its inputs: %s): follow-ups will wait until it does",
                followups, ", ".join(meta.get("inputs", [])))
