"""What the views (health status, call lists, KPIs; tracer/views/) cost.

1. ``tracer run``'s own loop with and without the views, in the same process, alternating, on the
   demo city (outbreak: alerts, cases) and on the ingest benchmark's trips (no case at all). The
   run without views swaps ``streams.embedded.Views`` for one that keeps nothing: the same run
   minus the views' work. Issue 14's target: at most 10 % more.
2. ``tracer calllist`` for an office with N residents under observation (default 1,000): one case
   on a metro run, N residents of one office in its carriage, half of them already reached. Timed
   in-process (the query alone, warm) and as a whole command (Python's start-up included).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import save, table, trips_file
from graph.store import RocksStore
from streams import embedded
from tracer.settings import load_settings
from tracer.simulate import generate
from tracer.views import Views, call_list, event_time

OFFICE = "310101002"


class _NoViews:
    """Stands in for ``Views``: keeps nothing, emits nothing."""

    def __init__(self, *_: Any) -> None:
        pass

    def apply(self, *_: Any) -> list[dict[str, Any]]:
        return []


class _TimedViews(Views):
    """``Views`` that adds up the time its steps take: the views' share of the same run, which a
    shared machine's load changes far less than it changes two runs' wall times."""

    spent = 0.0

    def apply(self, *args: Any) -> list[dict[str, Any]]:
        started = time.perf_counter()
        try:
            return super().apply(*args)
        finally:
            _TimedViews.spent += time.perf_counter() - started


def _timed(events: Path, root: Path, name: str, views: type) -> float:
    real = embedded.Views
    embedded.Views = views  # type: ignore[misc]
    try:
        summary = embedded.run_embedded([str(events)], root / f"out-{name}", load_settings(), root / f"state-{name}")
    finally:
        embedded.Views = real  # type: ignore[misc]
    return summary.seconds


def overhead(events: Path, root: Path, repeat: int) -> dict[str, Any]:
    without, with_views, shares = [], [], []
    for attempt in range(repeat):
        without.append(_timed(events, root, f"plain-{attempt}", _NoViews))
        _TimedViews.spent = 0.0
        with_views.append(_timed(events, root, f"views-{attempt}", _TimedViews))
        shares.append(_TimedViews.spent / (with_views[-1] - _TimedViews.spent))
    return {"without_s": without, "with_s": with_views, "ratio_best": min(with_views) / min(without),
            "views_over_rest": shares}


def office_events(residents: int) -> list[dict[str, Any]]:
    """The case rides one metro run after another; ten residents share its carriage on each, so each
    resident is one close contact and a secondary contact through the nine others."""
    day, events = "2020-01-20", []
    for index in range(residents):
        person, run = f"R{index:06d}", index // 10
        minute = f"{day}T{6 + run // 60:02d}:{run % 60:02d}"
        board, alight = f"{minute}:00+08:00", f"{minute}:50+08:00"
        events.append({"type": "person", "person_id": person, "subdistrict": OFFICE})
        events.append({"type": "trip", "person_id": person, "mode": "metro", "service": f"L2-{run}", "date": day,
                       "board_time": board, "alight_time": alight, "carriage": "3", "trip_id": f"t{index}"})
        if index % 10 == 0:
            events.append({"type": "trip", "person_id": "CASE", "mode": "metro", "service": f"L2-{run}", "date": day,
                           "board_time": board, "alight_time": alight, "carriage": "3", "trip_id": f"c{run}"})
    events.append({"type": "case", "case_id": "C1", "person_id": "CASE", "status": "confirmed",
                   "onset": "2020-01-21", "isolated_at": None, "reported_at": "2020-01-22T12:00:00+08:00"})
    for index in range(0, residents, 2):
        events.append({"type": "followup", "person_id": f"R{index:06d}", "outcome": "reached",
                       "at": "2020-01-22T15:00:00+08:00", "by": OFFICE})
    return events


def call_list_latency(root: Path, residents: int, repeat: int) -> dict[str, Any]:
    events = root / "office.jsonl"
    events.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in office_events(residents)))
    state = root / "office-state"
    embedded.run_embedded([str(events)], root / "office-out", load_settings(), state)
    settings = load_settings()
    store = RocksStore(state, read_only=True)
    try:
        now = event_time(store)
        rows = call_list(store, settings, OFFICE, now)
        assert len(rows) == residents, len(rows)
        query = []
        for _ in range(repeat):
            started = time.perf_counter()
            call_list(store, settings, OFFICE, now)
            query.append(time.perf_counter() - started)
    finally:
        store.close()
    command = [sys.executable, "-m", "tracer.cli", "calllist", "--state", str(state), "--subdistrict", OFFICE,
               "--format", "json"]
    whole = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        whole.append(time.perf_counter() - started)
    startup = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tracer.cli", "--help"], check=True, stdout=subprocess.DEVNULL)
        startup.append(time.perf_counter() - started)
    return {"residents": residents, "query_ms": [q * 1000 for q in query], "command_s": whole, "startup_s": startup}


def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="tracer-bench-views-"))
    try:
        generate(persons=args.persons, days=2, cases=args.cases, seed=1, out_dir=root / "city", truth=False)
        inputs = {"demo city": root / "city" / "events.jsonl", "ingest trips": trips_file(root, args.trips)}
        rows, result = [], {}
        for name, path in inputs.items():
            found = result[name] = overhead(path, root, args.repeat)
            rows.append([name, " ".join(f"{s:.2f}" for s in found["without_s"]),
                         " ".join(f"{s:.2f}" for s in found["with_s"]), f"{found['ratio_best']:.3f}",
                         " ".join(f"{share:.3f}" for share in found["views_over_rest"])])
        print(table(rows, ["input", "without views (s)", "with views (s)", "best with / best without",
                           "views / the rest of the same run"]))
        latency = result["call list"] = call_list_latency(root, args.residents, args.repeat * 10)
        print(f"calllist of {latency['residents']:,} residents: query median "
              f"{statistics.median(latency['query_ms']):.1f} ms (min {min(latency['query_ms']):.1f}); whole command "
              f"{min(latency['command_s']):.2f} s, of which Python and imports {min(latency['startup_s']):.2f} s")
        print(f"saved {save('views', result)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
