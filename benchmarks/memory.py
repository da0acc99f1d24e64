"""Memory: RSS over a long stream with a short retention. It must level off once retention starts
dropping state: bounded by the RocksDB caches and the write batch, not by the stream's length."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.common import rss_mb, save, table
from streams.embedded import run_embedded
from tracer.progress import Progress
from tracer.settings import load_settings
from tracer.simulate import generate


def run(persons: int, days: int, retention: int) -> dict[str, Any]:
    settings = load_settings()
    settings = replace(
        settings,
        rules=replace(settings.rules, retention_days=retention),
        runtime=replace(settings.runtime, progress_every_seconds=1.0),
    )
    root = Path(tempfile.mkdtemp(prefix="tracer-bench-"))
    samples: list[dict[str, float]] = []
    try:
        generate(persons=persons, days=days, cases=max(1, persons // 5000), seed=11, out_dir=root, truth=False,
                 followups=False)

        def sample(summary: Progress) -> None:
            samples.append({"lines": summary.lines, "rss_mb": rss_mb(), "rocksdb_mb": summary.state_memory_mb})
            if len(samples) % 30 == 0:  # a long run shows its curve as it goes
                last = samples[-1]
                print(
                    f"  {summary.lines:>12,} lines  {last['rss_mb']:6.0f} MB  RocksDB {last['rocksdb_mb']:4.0f} MB",
                    flush=True,
                )

        summary = run_embedded([str(root / "events.jsonl")], root / "out", settings, root / "state", sample)
        sample(summary)
        step = max(1, len(samples) // 12)
        shown = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
        print(f"{summary.lines:,} lines over {days} days, retention {retention} days")
        rows = [[f"{s['lines']:,}", f"{s['rss_mb']:.0f}", f"{s['rocksdb_mb']:.0f}"] for s in shown]
        print(table(rows, ["lines read", "RSS MB", "RocksDB's own MB"]))
        half = samples[len(samples) // 2 :]
        return {
            "lines": summary.lines,
            "days": days,
            "retention_days": retention,
            "samples": samples,
            "rss_second_half_min_mb": min(s["rss_mb"] for s in half),
            "rss_second_half_max_mb": max(s["rss_mb"] for s in half),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(args: Any) -> None:
    result = run(args.persons, args.days, args.retention)
    print(f"RSS over the second half: {result['rss_second_half_min_mb']:.0f}-{result['rss_second_half_max_mb']:.0f} MB")
    print(f"results: {save('memory', result)}")
