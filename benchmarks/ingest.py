"""Embedded ingest: trip events/s of the engine against a bare loop in the same process (wall clock,
and CPU time, which the load of a shared machine moves far less); and the
intake alone (``Intake.decode``: parse, validate, canonical forms) against a bare ``orjson.loads``.

The bare loop (benchmarks/bare_loop.py) is the practical ceiling of this design: it parses each line
with orjson and writes the same three RocksDB keys per trip (trip, rider of the service day,
itinerary) in batches of the same size, and does nothing else.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.bare_loop import bare_loop
from benchmarks.common import save, table, trips_file
from streams.embedded import run_embedded
from tracer.events import parse_line
from tracer.intake import Intake
from tracer.settings import Settings, load_settings


def intake_loop(path: Path, settings: Settings) -> tuple[float, float, float]:
    """Seconds of ``Intake.decode`` over every line, of the parser alone (``parse_line``: the intake
    before canonical forms were checked) and of a bare ``orjson.loads``: what a line costs on its
    way in (tracer/intake.py, tracer/canonical.py) before the engine sees it."""
    with open(path, "rb") as lines:
        data = lines.read().splitlines()
    max_ride_us = int(settings.rules.max_ride_hours * 3_600_000_000)
    timed = []
    for one in (Intake(settings).decode, lambda line: parse_line(line, max_ride_us), orjson.loads):
        started = time.perf_counter()
        for line in data:
            one(line)
        timed.append(time.perf_counter() - started)
    return timed[0], timed[1], timed[2]


def run(trips: int, repeat: int) -> dict[str, Any]:
    settings = load_settings()
    root = Path(tempfile.mkdtemp(prefix="tracer-bench-"))
    try:
        path = trips_file(root, trips)
        with open(path, "rb") as lines:
            count = sum(1 for _ in lines)
        rows, samples, intake_rows = [], [], []
        for attempt in range(repeat):
            intake, parse, loads = intake_loop(path, settings)
            intake_rows.append([attempt + 1, f"{count / loads:,.0f}", f"{count / parse:,.0f}", f"{count / intake:,.0f}",
                                f"{(intake - parse) / count * 1e6:.2f}"])
            started = time.process_time()
            bare = bare_loop(path, root / f"bare-{attempt}", settings.runtime.commit_every)
            bare_cpu = time.process_time() - started
            summary = run_embedded([str(path)], root / f"out-{attempt}", settings, root / f"state-{attempt}")
            engine, engine_cpu = summary.seconds, time.process_time() - started - bare_cpu
            samples.append({"bare_s": bare, "engine_s": engine, "intake_s": intake, "parse_s": parse,
                            "loads_s": loads, "bare_cpu_s": bare_cpu, "engine_cpu_s": engine_cpu})
            rows.append([attempt + 1, f"{count / bare:,.0f}", f"{count / engine:,.0f}", f"{bare / engine:.2f}",
                         f"{bare_cpu / count * 1e6:.2f}", f"{engine_cpu / count * 1e6:.2f}",
                         f"{bare_cpu / engine_cpu:.2f}"])
        best = min(samples, key=lambda s: s["engine_s"])
        print(f"{count:,} trip events, batches of {settings.runtime.commit_every}")
        print(table(rows, ["run", "bare loop ev/s", "engine ev/s", "engine / bare", "bare loop CPU us/trip",
                           "engine CPU us/trip", "engine / bare (CPU)"]))
        print(table(intake_rows, ["run", "orjson.loads lines/s", "parse_line lines/s", "Intake.decode lines/s",
                                  "intake us/line over parse_line"]))
        return {
            "trips": count,
            "samples": samples,
            "engine_per_s": count / best["engine_s"],
            "bare_per_s": count / best["bare_s"],
            "ratio": best["bare_s"] / best["engine_s"],
            # CPU seconds of the process (RocksDB's background threads included), which a loaded
            # machine moves far less than the wall clock
            "cpu_ratio": sum(s["bare_cpu_s"] for s in samples) / sum(s["engine_cpu_s"] for s in samples),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(args: Any) -> None:
    result = run(args.trips, args.repeat)
    print(f"results: {save('ingest', result)}")
