"""CPU per alert change of the engine applying one case report: issue 17's "a case with 600 direct
contacts: <= 7 us per alert change".

``python -m benchmarks lookup`` times the same case shape (20 rides, 30 co-riders each) by wall
clock, as a latency against store size; a shared machine moves wall time by far more than the
target's margin. This one measures only the engine, by CPU (``time.thread_time``: RocksDB's
background threads are not the engine), warm: a store holds the rides of every benchmark case
(``lookup._bench_events``: nothing else, since the lookup curve shows the store's size does not
matter), then each case's report is applied alone by ``Engine.process`` and its CPU divided by the
alert changes it made (600 adds, direct contacts only: ``rules.trace_secondary`` off unless
``--secondary``). The runner's commit after each case is timed apart (it writes what the engine
staged). Then each case is excluded (600 retracts), timed the same way. The baseline, in the same
run: the thread's CPU for a bare read and decode of the case's co-riders (``lookup._bare_read``),
which no lookup can skip; the ratio moves less with a shared machine's load than the microseconds
do. ``--rounds`` groups of ``--cases`` new cases each give one figure, so the table shows the
spread; a few warm-up cases come first and are not counted.
"""

from __future__ import annotations

import gc
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import save, table
from benchmarks.lookup import _bare_read, _bench_events
from graph.store import RocksStore
from tracer.engine import Engine
from tracer.events import parse_line
from tracer.settings import load_settings

_MAX_RIDE_US = 72 * 3_600_000_000
_WARMUP = 5


def _excluded(report: bytes) -> bytes:
    return orjson.dumps({**orjson.loads(report), "status": "excluded"})


def _timed(engine: Engine, line: bytes) -> tuple[float, float, int]:
    """CPU seconds of applying one line, of the commit after it, and its alert changes."""
    event = parse_line(line, _MAX_RIDE_US)
    started = time.thread_time()
    changes = engine.process(event)
    applied = time.thread_time()
    engine.store.commit()
    return applied - started, time.thread_time() - applied, len(changes)


def measure(cases: int, rounds: int, secondary: bool) -> dict[str, Any]:
    settings = load_settings()
    rules = settings.rules if secondary else replace(settings.rules, trace_secondary=False)
    root = Path(tempfile.mkdtemp(prefix="tracer-alert-cost-"))
    store = RocksStore(root / "state")
    engine = Engine(store, rules)
    numbers = range(_WARMUP + cases * rounds)
    try:
        for number in numbers:
            rides, _ = _bench_events(number)
            engine.apply([parse_line(line, _MAX_RIDE_US) for line in rides])
            store.commit()
        gc.collect()
        gc.freeze()  # as `tracer run` does (tracer/cli): the rides built above are not garbage
        gc.set_threshold(50_000, 50, 100)
        for number in range(_WARMUP):
            _timed(engine, _bench_events(number)[1])
        out = []
        for first in range(_WARMUP, len(numbers), cases):
            group = range(first, first + cases)
            point: dict[str, Any] = {}
            for name, line_of in (("report", lambda n: _bench_events(n)[1]),
                                  ("exclusion", lambda n: _excluded(_bench_events(n)[1]))):
                lines = [line_of(number) for number in group]
                timed = [_timed(engine, line) for line in lines]
                changes = sum(count for _, _, count in timed)
                point[name] = {
                    "changes_per_case": changes / cases,
                    "us_per_change": 1e6 * sum(cpu for cpu, _, _ in timed) / changes,
                    "median_us_per_change": 1e6 * statistics.median(cpu / count for cpu, _, count in timed),
                    "commit_us_per_change": 1e6 * sum(cpu for _, cpu, _ in timed) / changes,
                }
            bare = []
            for number in group:
                started = time.thread_time()
                _bare_read(engine.store, number)
                bare.append(time.thread_time() - started)
            point["bare_read_us_per_change"] = 1e6 * sum(bare) / (point["report"]["changes_per_case"] * cases)
            out.append(point)
        return {"cases": cases, "rounds": rounds, "secondary": secondary, "points": out}
    finally:
        gc.unfreeze()
        store.close()
        shutil.rmtree(root, ignore_errors=True)


def main(args: Any) -> None:
    result = measure(args.cases, args.rounds, args.secondary)
    rows = [
        [
            str(index + 1),
            f"{point['report']['changes_per_case']:,.0f}",
            f"{point['report']['us_per_change']:.2f}",
            f"{point['report']['median_us_per_change']:.2f}",
            f"{point['report']['commit_us_per_change']:.2f}",
            f"{point['exclusion']['changes_per_case']:,.0f}",
            f"{point['exclusion']['us_per_change']:.2f}",
            f"{point['exclusion']['commit_us_per_change']:.2f}",
            f"{point['bare_read_us_per_change']:.2f}",
            f"{point['report']['us_per_change'] / point['bare_read_us_per_change']:.1f}",
        ]
        for index, point in enumerate(result["points"])
    ]
    header = ["round", "changes/report", "CPU us/change", "median", "commit us/change",
              "changes/exclusion", "CPU us/change", "commit us/change", "bare read", "report / bare"]
    print(table(rows, header))
    reports = [point["report"]["us_per_change"] for point in result["points"]]
    print(f"a case report, CPU per alert change: {min(reports):.2f}-{max(reports):.2f} us "
          f"(median of rounds {statistics.median(reports):.2f}; target 7)")
    print(f"results: {save('alert-cost', result)}")
