"""Latency on a live feed: a city piped into `tracer run -` at a steady rate (or, with ``--follow``,
appended to a file that `tracer run FILE --follow` reads as it grows); for each case report, the
time from writing its line to the moment the direct alerts it makes are in contacts.jsonl.

Batches must not trade latency away: a batch ends when the pipe has nothing more to read yet, so
a case report is traced as soon as it arrives, whatever `runtime.batch_events` is. The baseline is
the same feed's one-line round trip: the time from writing a line that is refused to the moment
its dead letter is written (a pipe, a read, a parse and a file write, no tracing).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import percentile_row, percentiles, save, table
from graph.store import RocksStore
from tracer.engine import Engine
from tracer.errors import InvalidEvent
from tracer.events import Case
from tracer.intake import Intake
from tracer.settings import load_settings
from tracer.simulate import generate

PROBE = b'{"type":"probe"}\n'  # an unknown type: refused at once, its dead letter is the round trip


def _alerts_per_case(events: list[bytes], root: Path) -> dict[str, int]:
    """Direct alert changes each case line makes when it is applied (later trips may add more)."""
    settings = load_settings()
    intake, store = Intake(settings), RocksStore(root / "reference")
    engine, counts = Engine(store, settings.rules), {}
    try:
        for line in events:
            try:
                event, _ = intake.decode(line.rstrip(b"\n"))
                changes = engine.process(event)
            except InvalidEvent:
                continue
            if type(event) is Case:
                counts[event.case_id] = sum(1 for c in changes if (c.after or c.before)["via_person_id"] is None)
    finally:
        store.close()
    return counts


def run(persons: int, rate: int, probes: int, follow: bool = False) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="tracer-live-"))
    generate(persons=persons, days=1, cases=max(4, persons // 2000), seed=3, out_dir=root, truth=False,
             followups=False)
    events = [line + b"\n" for line in (root / "events.jsonl").read_bytes().splitlines()]
    expected = _alerts_per_case(events, root)
    out, fed = root / "out", root / "fed.jsonl"
    source = [str(fed), "--follow"] if follow else ["-"]
    process = subprocess.Popen([sys.executable, "-m", "tracer.cli", "run", *source, "--out", str(out), "--quiet"],
                               stdin=None if follow else subprocess.PIPE)
    feed = fed.open("ab") if follow else process.stdin
    assert feed is not None
    sent: dict[str, float] = {}  # case id -> when its line was written
    probe_sent: list[float] = []
    seen: dict[str, float] = {}  # case id -> when its last expected alert was read
    probe_seen: list[float] = []
    done = threading.Event()

    def watch() -> None:
        """Poll the outputs every millisecond; count each case's alerts and each probe's dead letter."""
        counts: dict[str, int] = {}
        offsets = {"contacts.jsonl": 0, "dead-letter.jsonl": 0}
        while not done.is_set():
            now = time.perf_counter()
            for name in offsets:
                path = out / name
                if not path.exists():
                    continue
                data = path.read_bytes()[offsets[name]:]
                whole = data[: data.rfind(b"\n") + 1]
                offsets[name] += len(whole)
                for line in whole.splitlines():
                    record = orjson.loads(line)
                    if name == "dead-letter.jsonl":
                        if '"probe"' in record["raw"]:
                            probe_seen.append(now)
                    elif record.get("case_id") and record["via_person_id"] is None:
                        case = record["case_id"]
                        counts[case] = counts.get(case, 0) + 1
                        if counts[case] == expected.get(case) and case in sent:
                            seen[case] = now
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    every = max(1, len(events) // probes)
    chunk = max(1, rate // 100)  # 100 writes a second
    started = time.perf_counter()
    for index in range(0, len(events), chunk):
        for offset, line in enumerate(events[index : index + chunk]):
            if line.startswith(b'{"type":"case"'):
                case = orjson.loads(line)["case_id"]
                if expected.get(case):
                    sent[case] = time.perf_counter()
            feed.write(line)
            if (index + offset) % every == 0:
                feed.write(PROBE)
                probe_sent.append(time.perf_counter())
        feed.flush()
        pause = started + (index + chunk) / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    time.sleep(2)
    done.set()
    watcher.join()
    feed.close()
    if follow:
        process.send_signal(signal.SIGINT)  # a followed run stops when asked
    process.wait()
    cases = sorted((seen[c] - sent[c]) * 1000 for c in sent if c in seen)
    trips = [(b - a) * 1000 for a, b in zip(probe_sent, probe_seen, strict=False)]
    result = {"lines": len(events), "rate": rate, "follow": follow, "cases": len(sent), "cases_complete": len(cases),
              "case_ms": percentiles(cases), "round_trip_ms": percentiles(trips)}
    print(f"{len(events):,} lines at {rate:,}/s; {len(cases)} of {len(sent)} cases with direct alerts complete")
    print(table([["a case to the alerts it makes", *percentile_row(cases)],
                 ["a line to its dead letter", *percentile_row(trips)]], ["", "p50 ms", "p99 ms", "max ms"]))
    return result


def main(args: Any) -> None:
    result = run(args.persons, args.rate, args.probes, args.follow)
    print(f"results: {save('live-follow' if args.follow else 'live', result)}")
