"""Shared pieces of the benchmarks: simulated input, timing, RSS, result files."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    generate(persons=persons, days=2, cases=1, seed=seed, out_dir=city, truth=False, followups=False)
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


def rss_mb(pid: int | str = "self") -> float:
    """Current resident set size of a process, this one by default (not the peak)."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass(frozen=True, slots=True)
class Measured:
    """A command timed as a whole process: what a user waits for, interpreter start included."""

    seconds: float
    peak_rss_mb: float  # the largest of the kernel's peak for the child and the sampled sums below
    samples: list[dict[str, float]]  # seconds, RSS and CPU seconds of the process and its children, input read (0-1)
    stdout: str
    cpu_seconds: float  # user + system of the process and the children it waited for: what a shared machine moves least


def measure(command: list[str], cwd: Path, logs: Path, watch: Path | None = None, every: float = 0.25) -> Measured:
    """Run ``command``, sampling its RSS (summed over its child processes, for runners that fork
    workers) and how far it has read ``watch`` (the file offset of its open descriptors), so that a
    reader can judge whether memory stays flat over the input. Stdout and stderr go to ``logs``.out
    and .err; a failed command ends the benchmark with the end of its stderr."""
    out, err = logs.with_suffix(".out"), logs.with_suffix(".err")
    size = watch.stat().st_size if watch else 0
    samples: list[dict[str, float]] = []
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        began = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, stdout=stdout, stderr=stderr)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            tree = _tree(child.pid)
            read = max((_offset(p, watch) for p in tree), default=0) if watch else 0
            now = time.perf_counter() - began
            samples.append({"s": now, "rss_mb": sum(_of(p, rss_mb) for p in tree),
                            "cpu": sum(_of(p, cpu_seconds) for p in tree),
                            "input": read / (size or 1)})
            time.sleep(every)
        seconds = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(command[:4])} failed ({child.returncode}):\n" + err.read_text()[-2000:])
    peak = max([usage.ru_maxrss / 1024, *(s["rss_mb"] for s in samples)])
    return Measured(seconds, peak, samples, out.read_text(), usage.ru_utime + usage.ru_stime)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, as /proc lists them now."""
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        for task in Path(f"/proc/{found[-1]}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                continue  # the thread has ended
    return found


def _of(pid: int, read: Callable[[int], float]) -> float:
    """``read(pid)``, or 0 for a process that ended between the listing and the read."""
    try:
        return read(pid)
    except OSError:
        return 0.0


def _offset(pid: int, path: Path) -> int:
    """How far ``pid`` has read ``path``: the largest offset of its descriptors open on it."""
    target, best = str(path.resolve()), 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                best = max(best, int(Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split()[1]))
    except OSError:
        pass  # ended, or the descriptor closed between the listing and the read
    return best


def machine() -> dict[str, Any]:
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


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of ``values`` (empty: nothing to say)."""
    if not values:
        return {}
    cut = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50": statistics.median(values), "p99": cut[98], "max": max(values)}


def percentile_row(values: list[float]) -> list[str]:
    found = percentiles(values)
    return [f"{found.get(k, float('nan')):.1f}" for k in ("p50", "p99", "max")]
