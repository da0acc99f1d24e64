"""Shared pieces of the benchmarks: simulated input, timing, RSS, result files."""

from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

from tracer.errors import InvalidEvent
from tracer.events import parse_line
from tracer.simulate import generate

RESULTS = Path(__file__).resolve().parent / "results"


def trips_file(root: Path, trips: int, seed: int = 7) -> Path:
    """A file of about ``trips`` simulated trip events (persons sized so that 2 days give that many)."""
    target = root / f"trips-{trips}.jsonl"
    if target.exists():
        return target
    persons = max(2000, int(trips / 0.9))  # the simulator gives about 0.45 trips per resident a day
    city = root / f"city-{trips}"
    generate(persons=persons, days=2, cases=1, seed=seed, out_dir=city, truth=False)
    with open(city / "events.jsonl", "rb") as source, open(target, "wb") as out:
        for line in source:
            if line.startswith(b'{"type":"trip"'):
                try:
                    parse_line(line, 72 * 3_600_000_000)
                except InvalidEvent:
                    continue  # the simulator's deliberately malformed lines
                out.write(line)
    shutil.rmtree(city)  # at 50M trips the whole city (registry included) is 16 GB of disk
    return target


def rss_mb() -> float:
    """Current resident set size of this process (not the peak)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def machine() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **result}, indent=2) + "\n")
    return path


def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
