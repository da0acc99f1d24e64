"""What a user would pick instead: a batch self-join in SQLite over the same events.

Both must find the same contact set (case, contact, mode, service, date, level) for the direct
contacts; the join is benchmarks/contact_join.py, which the DuckDB peer runs too.
Then time-to-contacts: the streaming engine has a case's alerts when the case event is processed;
the batch way re-runs its join for that case (with indexes, its best streaming imitation) or
waits for the whole batch at the end.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import save, table
from benchmarks.contact_join import direct_contacts
from graph.store import RocksStore
from tracer.engine import Engine
from tracer.errors import InvalidEvent
from tracer.events import Case, Trip, parse_line
from tracer.rules import case_window, seat_row
from tracer.settings import RuleSettings, load_settings
from tracer.simulate import generate

MAX_RIDE = 72 * 3_600_000_000
_BAY = re.compile(r"-?[0-9]+")  # docs/rules.md: bays compare as integers when both parse as integers


def run(persons: int, days: int, cases: int) -> dict[str, Any]:
    rules = replace(load_settings().rules, trace_secondary=False)  # the join finds direct contacts only
    root = Path(tempfile.mkdtemp(prefix="tracer-bench-"))
    try:
        generate(persons=persons, days=days, cases=cases, seed=5, out_dir=root, truth=False, followups=False)
        events = []
        for line in (root / "events.jsonl").read_bytes().splitlines():
            try:
                events.append(parse_line(line, MAX_RIDE))
            except InvalidEvent:
                continue
        store = RocksStore(root / "state")
        engine = Engine(store, rules)
        latencies: list[float] = []
        live: dict[str, dict] = {}
        started = time.perf_counter()
        for event in events:
            began = time.perf_counter()
            changes = engine.process(event)
            if isinstance(event, Case):
                latencies.append(time.perf_counter() - began)
            for change in changes:
                if change.after is not None:
                    live[change.after["alert_id"]] = change.after
                elif change.before is not None:
                    live.pop(change.before["alert_id"], None)
        streaming_total = time.perf_counter() - started
        store.close()
        engine_pairs = {
            (a["case_id"], a["contact_person_id"], a["mode"], a["service"], a["date"], a["level"])
            for a in live.values()
            if a["via_person_id"] is None
        }

        streamed, asked, asked_pairs = _sqlite_streaming(events, rules)

        db = _sqlite()
        began = time.perf_counter()
        for event in events:
            _insert(db, event, rules)
        _index(db)
        load = time.perf_counter() - began
        began = time.perf_counter()
        batch_pairs = set(db.execute(direct_contacts(rules)).fetchall())
        batch_join = time.perf_counter() - began
        per_case = []
        for (case_id,) in db.execute("SELECT case_id FROM cases WHERE traced = 1").fetchall():
            began = time.perf_counter()
            db.execute(direct_contacts(rules, "AND c.case_id = ?"), (case_id,)).fetchall()
            per_case.append(time.perf_counter() - began)
        if not latencies or not per_case or not asked:
            raise SystemExit("the simulated stream has no traced case report: use more --cases or --persons")
        same = engine_pairs == batch_pairs
        print(f"{len(events):,} events, {len(engine_pairs):,} direct contact pairs; same contact set: {same}")
        rows = [
            [
                "tracer (streaming)",
                f"{1000 * statistics.median(latencies):.2f}",
                f"{1000 * max(latencies):.2f}",
                f"{streaming_total:.2f} (everything, as it streams)",
            ],
            [
                "SQLite as trips stream in (indexed), one query per case report",
                f"{1000 * statistics.median(asked):.2f}",
                f"{1000 * max(asked):.2f}",
                f"{streamed:.2f} (inserts + a query per case)",
            ],
            [
                "SQLite per case (indexed), after loading everything",
                f"{1000 * statistics.median(per_case):.2f}",
                f"{1000 * max(per_case):.2f}",
                f"{load:.2f} load + index, then a query per case",
            ],
            ["SQLite batch join", "-", "-", f"{load + batch_join:.2f} (load {load:.2f} + join {batch_join:.2f})"],
        ]
        print(table(rows, ["approach", "case -> contacts p50 ms", "max ms", "total s"]))
        missed, stale = len(batch_pairs - asked_pairs), len(asked_pairs - batch_pairs)
        print(
            f"asking SQLite once at each case report: {missed:,} of {len(batch_pairs):,} final pairs missed "
            f"(trips that arrive after the report) and {stale:,} stale ones (cases later excluded or "
            "corrected); tracer emits and retracts those as they arrive"
        )
        if not same:
            print(f"  only tracer: {len(engine_pairs - batch_pairs)}, only SQLite: {len(batch_pairs - engine_pairs)}")
        return {
            "events": len(events),
            "pairs": len(engine_pairs),
            "same_contact_set": same,
            "tracer_case_ms_p50": 1000 * statistics.median(latencies),
            "tracer_total_s": streaming_total,
            "sqlite_case_ms_p50": 1000 * statistics.median(per_case),
            "sqlite_streaming_case_ms_p50": 1000 * statistics.median(asked),
            "sqlite_streaming_total_s": streamed,
            "sqlite_streaming_missed_pairs": missed,
            "sqlite_streaming_stale_pairs": stale,
            "sqlite_load_s": load,
            "sqlite_join_s": batch_join,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _sqlite() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE trips (trip_id TEXT PRIMARY KEY, person_id, mode, service, date, board, alight, carriage, "
        "seat_row, berth, compartment, bay, sealed, crew, crew_low, crew_high)"
    )
    db.execute("CREATE TABLE cases (case_id TEXT PRIMARY KEY, person_id, traced, window_start, window_end)")
    return db


def _index(db: sqlite3.Connection) -> None:
    db.execute("CREATE INDEX by_service ON trips (mode, service, date)")
    db.execute("CREATE INDEX by_person ON trips (person_id)")


def _insert(db: sqlite3.Connection, event: Any, rules: RuleSettings) -> None:
    if isinstance(event, Trip):
        bay = int(event.compartment) if event.compartment and _BAY.fullmatch(event.compartment) else None
        crew_low, crew_high = event.crew_rows or (None, None)
        db.execute(
            "INSERT OR REPLACE INTO trips VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                *event[:8],
                seat_row(event.seat),
                event.berth,
                event.compartment,
                bay,
                int(event.sealed),
                int(event.role == "crew"),
                crew_low,
                crew_high,
            ),
        )
    elif isinstance(event, Case):
        window = case_window(event, rules)
        db.execute(
            "INSERT OR REPLACE INTO cases VALUES (?,?,?,?,?)",
            (event.case_id, event.person_id, int(event.traced), window.start, window.end),
        )


def _sqlite_streaming(events: list[Any], rules: RuleSettings) -> tuple[float, list[float], set[tuple]]:
    """The batch tool used as a stream: trips inserted as they arrive (indexes kept up), and the
    join asked for each case when its report arrives. Returns the total time, the per-report query
    times, and every pair those queries found (late trips after a report are never found)."""
    db = _sqlite()
    _index(db)
    asked: list[float] = []
    found: set[tuple] = set()
    began = time.perf_counter()
    for event in events:
        _insert(db, event, rules)
        if isinstance(event, Case) and event.traced:
            started = time.perf_counter()
            found.update(db.execute(direct_contacts(rules, "AND c.case_id = ?"), (event.case_id,)).fetchall())
            asked.append(time.perf_counter() - started)
    return time.perf_counter() - began, asked, found


def main(args: Any) -> None:
    result = run(args.persons, args.days, args.cases)
    print(f"results: {save('batch', result)}")
    if not result["same_contact_set"]:
        raise SystemExit(1)


if __name__ == "__main__":
    print(orjson.dumps(run(20000, 2, 20)).decode())
