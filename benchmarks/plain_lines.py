"""Decoding a day's lines: the fast lane for plain lines against the full parser, in the same process.

A generated day (`tracer generate --persons N --days 1 --cases 20 --seed 9`, malformed lines and
all) is decoded in batches of `runtime.batch_events` by `Intake.decode_many`, once with
`runtime.plain_lines` on and once off (every line through `Intake.decode`), alternating, CPU time
per line by kind of line; both must give the same events, reasons and warnings.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.common import save, table
from tracer.intake import Intake
from tracer.settings import Settings, load_settings
from tracer.simulate import generate

KINDS = {"person": b'{"type":"person"', "trip": b'{"type":"trip"'}


def _lane(settings: Settings, plain: bool) -> Intake:
    return Intake(replace(settings, runtime=replace(settings.runtime, plain_lines=plain)))


def _seconds(intake: Intake, lines: list[tuple[bytes, bool]], size: int) -> float:
    started = time.process_time()
    for start in range(0, len(lines), size):
        intake.decode_many(lines[start:start + size])
    return time.process_time() - started


def run(persons: int, repeat: int) -> dict[str, Any]:
    settings = load_settings()
    size = settings.runtime.batch_events
    root = Path(tempfile.mkdtemp(prefix="tracer-bench-"))
    try:
        generate(persons=persons, days=1, cases=20, seed=9, out_dir=root, truth=False, followups=False)
        everything = [(data, False) for data in (root / "events.jsonl").read_bytes().splitlines() if data.strip()]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    full, lane = _lane(settings, False), _lane(settings, True)
    if full.decode_many(everything) != lane.decode_many(everything):  # also warms the caches of both
        raise SystemExit("the fast lane and the full parser decode the day differently")
    rows, result = [], {}
    for kind, prefix in KINDS.items():
        lines = [line for line in everything if line[0].startswith(prefix)]
        best = {"full": float("inf"), "lane": float("inf")}
        for _ in range(repeat):
            best["full"] = min(best["full"], _seconds(full, lines, size))
            best["lane"] = min(best["lane"], _seconds(lane, lines, size))
        per = {name: seconds / len(lines) * 1e6 for name, seconds in best.items()}
        result[kind] = {"lines": len(lines), "full_us": per["full"], "lane_us": per["lane"]}
        rows.append([kind, f"{len(lines):,}", f"{per['full']:.2f}", f"{per['lane']:.2f}",
                     f"{per['lane'] / per['full']:.2f}"])
    print(f"{len(everything):,} lines of a generated day ({persons:,} residents), batches of {size:,}; "
          f"CPU time per line, best of {repeat}")
    print(table(rows, ["lines", "count", "full parser µs", "fast lane µs", "lane / full"]))
    return result


def main(args: Any) -> None:
    result = run(args.persons, args.repeat)
    print(f"results: {save('plain-lines', result)}")
