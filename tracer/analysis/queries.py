"""Read-only views of the co-travel store, for analysis and lookups (never a full scan per query
where a group scan will do)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from graph.keys import ALERTS, PROBES, SOURCES, case_key, group, service_day, via_key
from graph.store import SEP, Store
from tracer.events import MODES, Trip, decode_trip
from tracer.settings import RuleSettings
from tracer.sources import Source, decode_source


def live_alerts(store: Store) -> Iterator[dict[str, Any]]:
    """Every live alert (all sources), in key order."""
    for _, value in store.items(group(ALERTS)):
        yield orjson.loads(value)


def case_alerts(store: Store, case_id: str) -> list[dict[str, Any]]:
    """The live alerts of one case: its own (direct contacts) and its close contacts' (secondary)."""
    found = [orjson.loads(value) for _, value in store.scan(group(ALERTS, case_key(case_id)))]
    via_prefix = group(ALERTS) + via_key(case_id, "")  # every via source of the case: v:<case>\x1e<person>
    found += [orjson.loads(value) for _, value in store.items(via_prefix)]
    return found


def all_sources(store: Store, rules: RuleSettings) -> Iterator[Source]:
    prefix = group(SOURCES)
    for key, value in store.items(prefix):
        yield decode_source(key[len(prefix) :], value, rules)


def source(store: Store, key: str, rules: RuleSettings) -> Source | None:
    data = store.get(group(SOURCES), key)
    return decode_source(key, data, rules) if data is not None else None


def source_rides(store: Store) -> Iterator[tuple[str, str, Trip]]:
    """``(service day, source key, ride)`` for every stored source ride (probe)."""
    for key, value in store.items(group(PROBES)):
        day, source_key, _ = key[2:].rsplit(SEP, 2)
        yield day, source_key, decode_trip(value)


def rides_on(store: Store, date: str, service: str, mode: str | None = None) -> list[tuple[str, Trip]]:
    """``(source key, ride)`` of the sources that rode ``service`` on ``date``: one group scan per mode."""
    found = []
    for each in [mode] if mode else MODES:
        for suffix, value in store.scan(group(PROBES, service_day(date, each, service))):
            found.append((suffix.split(SEP, 1)[0], decode_trip(value)))
    return found
