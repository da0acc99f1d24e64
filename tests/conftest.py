"""Fixtures shared by the pure tests: both store backends, and an engine driver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from graph.store import MemoryStore, RocksStore, Store
from tracer.alerts import Change, fold, record_of, route
from tracer.engine import Engine
from tracer.errors import InvalidEvent
from tracer.events import parse_line
from tracer.settings import RuleSettings, Settings
from tracer.views import Views


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    backend: Store = MemoryStore() if request.param == "memory" else RocksStore(tmp_path / "state")
    yield backend
    backend.close()


class Driver:
    """Feeds events to an engine and its views, keeps every output record, folds the contacts stream."""

    def __init__(
        self, store: Store, rules: RuleSettings | None = None, batch: int = 1, settings: Settings | None = None
    ) -> None:
        self.rules = rules or (settings.rules if settings else RuleSettings())
        self.settings = settings or Settings(rules=self.rules)
        self.store = store
        self.engine = Engine(store, self.rules)
        self.views = Views(store, self.settings)
        self.statuses: list[dict[str, Any]] = []  # every status change, as status.jsonl holds them
        self.batch = batch  # events per Engine.apply (1: one at a time, through Engine.process)
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.dead: list[str] = []

    def feed(self, *events: dict[str, Any]) -> list[Change]:
        changes: list[Change] = []
        parsed = []
        for event in events:
            try:
                parsed.append(parse_line(orjson.dumps(event), 72 * 3_600_000_000))
            except InvalidEvent as exc:
                self.dead.append(exc.reason)
        while parsed:
            if self.batch == 1:
                applied_events = parsed[:1]
                try:
                    found = self.engine.process(parsed.pop(0))
                except InvalidEvent as exc:
                    self.dead.append(exc.reason)
                    continue
            else:
                applied = self.engine.apply(parsed[: self.batch])
                self.dead += applied.refused.values()
                applied_events = [e for i, e in enumerate(parsed[: applied.consumed]) if i not in applied.refused]
                found, parsed = applied.changes, parsed[applied.consumed :]
            changes += found
            records = [record_of(change) for change in found]
            self.statuses += self.views.apply(applied_events, records, self.engine.event_time)
            for change in found:
                for destination, record in route(change):
                    self.records.setdefault(destination, []).append(orjson.loads(record))
        return changes

    def live(self, destination: str = "contacts") -> dict[str, dict[str, Any]]:
        return fold(self.records.get(destination, []))

    def levels(self) -> dict[str, str]:
        """contact person -> level of the live direct alerts (not secondary)."""
        return {a["contact_person_id"]: a["level"] for a in self.live().values() if a["via_person_id"] is None}

    def secondary(self) -> set[tuple[str, str]]:
        """(via person, contact person) of the live secondary alerts."""
        return {(a["via_person_id"], a["contact_person_id"]) for a in self.live().values() if a["via_person_id"]}

    def direct(self, destination: str = "contacts") -> dict[str, dict[str, Any]]:
        return {k: a for k, a in self.live(destination).items() if a["via_person_id"] is None}




@pytest.fixture
def driver(store: Store) -> Driver:
    return Driver(store)
