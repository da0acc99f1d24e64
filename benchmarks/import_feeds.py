"""`tracer import` records/s per adapter on generated feeds, one core, against a bare CSV read.

Rates are records per CPU second of the process (polars runs on one thread, so one core), which
the other work on a shared machine does not change much; the wall-clock rate is shown beside.
A city is generated with `--feeds` and each feed is grown to ``--records`` rows by giving copies of
its rows other people's documents (every row stays valid, the broken rows stay broken). Each adapter
then imports it three ways in the same run: the bare loop (the csv module reading the rows, nothing
else: what a per-row importer cannot beat), the row path (every row through the kind's ``row``, the
reference), and the columnar path `tracer import` takes. Polars runs on one thread.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # one core: set before polars is first imported

import polars as pl

from benchmarks.common import save, table
from connectors.importers.base import run_import
from connectors.importers.identity import PersonIds
from connectors.importers.kinds import KINDS
from tracer.settings import Settings
from tracer.simulate import generate
from tracer.simulate.feeds.documents import document

ADAPTERS = {"registry": "registry.csv", "manifest": "manifests.csv"}
KEY = b"benchmark-identity-key-0123456789"


def grow(source: Path, target: Path, records: int) -> int:
    """``source``'s rows repeated up to ``records`` rows, copies naming other people; returns the rows."""
    with open(source, encoding="utf-8", newline="") as rows:
        header, *body = list(csv.reader(rows))
    column = header.index("id_number")
    written = 0
    with open(target, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        copy = 0
        while written < records:
            for index, row in enumerate(body[: records - written]):
                if copy and len(row) == len(header):
                    row = [*row[:column], document(f"P{copy * len(body) + index:08d}")[1], *row[column + 1 :]]
                writer.writerow(row)
            written += min(len(body), records - written)
            copy += 1
    return written


def bare(path: Path) -> float:
    started = time.process_time()
    with open(path, encoding="utf-8", newline="") as rows:
        for _ in csv.reader(rows):
            pass
    return time.process_time() - started


def timed(kind: str, path: Path, out: Path, columnar: bool) -> tuple[float, float]:
    """CPU seconds (the process's: polars has one thread) and wall seconds of one import."""
    started, wall = time.process_time(), time.perf_counter()
    run_import(KINDS[kind], [str(path)], str(out), Settings(), PersonIds(KEY), columnar=columnar)
    return time.process_time() - started, time.perf_counter() - wall


def run(persons: int, days: int, records: int, repeat: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="tracer-bench-import-"))
    try:
        generate(persons, days, max(1, persons // 5000), 7, root / "city", truth=False, feeds=root / "feeds")
        results, rows = {}, []
        for kind, name in ADAPTERS.items():
            path = root / f"{kind}.csv"
            count = grow(root / "feeds" / name, path, records)
            samples = []
            for _ in range(repeat):
                fast, fast_wall = timed(kind, path, root / "out.jsonl", True)
                slow, _ = timed(kind, path, root / "out.jsonl", False)
                samples.append({"bare_s": bare(path), "row_s": slow, "columnar_s": fast, "columnar_wall_s": fast_wall})
            best = min(samples, key=lambda s: s["columnar_s"])
            results[kind] = {
                "records": count,
                "samples": samples,
                "columnar_per_s": count / best["columnar_s"],
                "row_per_s": count / best["row_s"],
                "bare_per_s": count / best["bare_s"],
            }
            rows.append([kind, f"{count:,}", f"{count / best['bare_s']:,.0f}", f"{count / best['row_s']:,.0f}",
                         f"{count / best['columnar_s']:,.0f}", f"{count / best['columnar_wall_s']:,.0f}",
                         f"{best['row_s'] / best['columnar_s']:.1f}"])
        print(f"records per CPU second (polars threads: {pl.thread_pool_size()}); best of {repeat}")
        header = ["adapter", "records", "bare csv read", "row path", "columnar", "columnar, wall", "columnar / row"]
        print(table(rows, header))
        return {"persons": persons, "days": days, "threads": pl.thread_pool_size(), "adapters": results}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(args: Any) -> None:
    result = run(args.persons, args.days, args.records, args.repeat)
    print(f"results: {save('import', result)}")
