"""Small builders for input events, so tests state only what matters to them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import orjson

from graph.store import RocksStore
from streams.embedded import run_embedded
from tracer.analysis.network import contact_graph
from tracer.settings import RuleSettings, Settings

DAY = "2020-01-20"


def at(clock: str, day: str = DAY) -> str:
    """``'08:00'`` -> ISO time on ``day`` in Shanghai time."""
    if len(clock) == 5:
        clock += ":00"
    return f"{day}T{clock}+08:00"


def trip(
    person: str,
    *,
    mode: str = "flight",
    service: str = "MU5101",
    day: str = DAY,
    board: str = "08:00",
    alight: str = "10:00",
    **extra: Any,
) -> dict[str, Any]:
    event = {
        "type": "trip",
        "person_id": person,
        "mode": mode,
        "service": service,
        "date": day,
        "board_time": at(board, day),
        "alight_time": at(alight, day),
    }
    event.update(extra)
    return event


def case(
    case_id: str,
    person: str,
    *,
    status: str = "confirmed",
    onset: str = "2020-01-21",
    isolated_at: str | None = None,
    reported_at: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "case",
        "case_id": case_id,
        "person_id": person,
        "status": status,
        "onset": onset,
        "isolated_at": isolated_at,
        "reported_at": reported_at or at("12:00", "2020-01-22"),
    }


def person(person_id: str, subdistrict: str) -> dict[str, Any]:
    return {"type": "person", "person_id": person_id, "subdistrict": subdistrict}


def lines(events: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def traced_state(root: Path, events: list[dict[str, Any]], settings: Settings | None = None) -> Path:
    """The state of `tracer run` (embedded) over ``events``, none of them a dead letter."""
    (root / "events.jsonl").write_bytes(lines(events))
    summary = run_embedded([str(root / "events.jsonl")], root / "out", settings or Settings(), root / "state")
    assert summary.dead_letters == 0
    return root / "state"


def state_graph(state: Path) -> nx.MultiDiGraph:
    """The contact graph of a state, read as `tracer graph` reads it."""
    store = RocksStore(state, read_only=True)
    try:
        return contact_graph(store, RuleSettings())
    finally:
        store.close()
