"""`tracer demo`: a small city day, generated, traced and checked against the oracle in seconds.

It shows what an epidemiologist wants to see first, and leaves every file in one folder.
"""

from __future__ import annotations

import argparse
import shutil
from collections import Counter
from pathlib import Path

import orjson

from streams.embedded import run_embedded
from tracer.alerts import UNASSIGNED, fold
from tracer.places import subdistricts
from tracer.rules import Level
from tracer.settings import load_settings


def add_demo(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="generate a small city day, trace it, check it against the oracle")
    demo.add_argument("--out", type=Path, default=Path("tracer-demo"), help="folder for every file")
    demo.add_argument("--persons", type=int, default=20_000, help="residents (default 20,000)")
    demo.add_argument("--days", type=int, default=2, help="days of travel (default 2)")
    demo.add_argument("--cases", type=int, default=25, help="cases reported (default 25)")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from tracer.simulate import generate

    root: Path = args.out
    for part in ("input", "output", "state"):
        shutil.rmtree(root / part, ignore_errors=True)
    stats = generate(args.persons, args.days, args.cases, args.seed, root / "input", truth=True)
    summary = run_embedded([str(root / "input" / "events.jsonl")], root / "output", load_settings(), root / "state")
    live = fold(map(orjson.loads, (root / "output" / "contacts.jsonl").read_bytes().splitlines()))
    truth = {a["alert_id"]: a for a in map(orjson.loads, (root / "input" / "truth.jsonl").read_bytes().splitlines())}
    agree = sum(1 for key, alert in live.items() if truth.get(key) == alert)
    levels = Counter(a["level"] for a in live.values())
    traced = {a["case_id"] for a in live.values()}
    per_queue = Counter(a["subdistrict"] or UNASSIGNED for a in live.values() if a["level"] == Level.CLOSE)
    names = subdistricts()

    print(f"tracer demo: {args.persons:,} residents, {args.days} day(s), seed {args.seed}")
    kinds = ", ".join(f"{n:,} {kind}" for kind, n in sorted(summary.events.items()))
    print(
        f"  events         {kinds}; {summary.dead_letters:,} lines went to the dead letters "
        f"({stats['malformed']:,} malformed on purpose)"
    )
    trips = ", ".join(f"{n:,} {mode}" for mode, n in sorted(stats["trips"].items()))
    print(f"  trips          {trips}")
    written = stats["followups"]["outcomes"]
    outcomes = ", ".join(f"{n:,} {outcome}" for outcome, n in written.items())
    print(f"  follow-ups     {sum(written.values()):,} by {stats['followups']['offices']} street offices: {outcomes}")
    print(f"  speed          {summary.lines_per_second:,.0f} events/s ({summary.seconds:.2f} s)")
    print(f"  cases traced   {len(traced)} with contacts")
    print(
        f"  contacts       {levels['close']:,} close, {levels['secondary']:,} secondary, "
        f"{levels['general']:,} general (live, after retractions)"
    )
    print(
        f"  oracle         precision {_ratio(agree, len(live))}, recall {_ratio(agree, len(truth))} "
        f"({agree:,} of {len(truth):,} expected alerts match field for field)"
    )
    print("  close contacts by street office (top 10):")
    for code, count in per_queue.most_common(10):
        place = names.get(code)
        print(f"    {count:6,}  {code}  {place.name if place else ''}")
    print(
        f"  files          {root}/input/events.jsonl, {root}/output/contacts.jsonl, "
        f"{root}/output/alerts/<code>.jsonl, {root}/output/dead-letter.jsonl"
    )
    return 0 if agree == len(live) == len(truth) else 1


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.4f}" if whole else "n/a"
