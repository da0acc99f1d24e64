"""`tracer demo`: a small city day, generated, traced and checked against the oracle in seconds.

It shows what an epidemiologist wants to see first, and leaves every file in one folder.
"""

from __future__ import annotations

import argparse
import shutil
from collections import Counter
from pathlib import Path

import orjson

from graph.store import RocksStore
from streams.embedded import run_embedded
from tracer.alerts import UNASSIGNED, fold
from tracer.cli.live import run_live
from tracer.oracle import json_values
from tracer.oracle_views import expected_views
from tracer.places import subdistricts
from tracer.rules import Level
from tracer.settings import Settings, load_settings
from tracer.views import call_list, event_time, offices, statuses, tracing_kpis

_TWO_DAYS = 48 * 3_600_000_000


def add_demo(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="generate a small city day, trace it, check it against the oracle")
    demo.add_argument("--out", type=Path, default=Path("tracer-demo"), help="folder for every file")
    demo.add_argument("--persons", type=int, default=20_000, help="residents (default 20,000)")
    demo.add_argument("--days", type=int, default=2, help="days of travel (default 2)")
    demo.add_argument("--cases", type=int, default=25, help="cases reported (default 25)")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--live", action="store_true",
                      help="the same city as a live feed: tracer run --follow and the web console (tracer serve) "
                      "on it, with demo accounts, until Ctrl-C")
    demo.add_argument("--speed", type=_speed, default=600.0,
                      help="--live: simulated seconds a second (default 600: the feed lasts about four minutes)")
    demo.add_argument("--port", type=int, default=8080, help="--live: the console's port (default 8080)")
    demo.set_defaults(handler=run_demo)


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return value


def run_demo(args: argparse.Namespace) -> int:
    from tracer.simulate import generate

    if args.live:
        return run_live(args)

    root: Path = args.out
    for part in ("input", "output", "state"):
        shutil.rmtree(root / part, ignore_errors=True)
    stats = generate(args.persons, args.days, args.cases, args.seed, root / "input", truth=True)
    settings = load_settings()
    summary = run_embedded([str(root / "input" / "events.jsonl")], root / "output", settings, root / "state")
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
    views, differ = _views(root, settings)
    print(f"  views          {views}")
    print("  close contacts by street office (top 10):")
    for code, count in per_queue.most_common(10):
        place = names.get(code)
        print(f"    {count:6,}  {code}  {place.name if place else ''}")
    _progress(root / "state", settings)
    print(
        f"  files          {root}/input/events.jsonl, {root}/output/contacts.jsonl, "
        f"{root}/output/alerts/<code>.jsonl, {root}/output/status.jsonl, {root}/output/dead-letter.jsonl"
    )
    return 0 if agree == len(live) == len(truth) and not differ else 1


def _views(root: Path, settings: Settings) -> tuple[str, list[str]]:
    """The engine's health statuses, call lists and KPIs against the oracle's, from the same events."""
    events = list(json_values((root / "input" / "events.jsonl").read_bytes().splitlines()))
    expected = expected_views(events, settings)
    store = RocksStore(root / "state", read_only=True)
    try:
        now = event_time(store)
        found = {
            "health status": statuses(store) == expected.status,
            "call lists": {office: call_list(store, settings, office, now) for office in offices(store)}
            == {office: rows for office, rows in expected.calllists.items() if rows}
            | {office: [] for office in offices(store) if office not in expected.calllists},
            "KPIs": tracing_kpis(store, settings, now) == expected.kpis,
        }
    finally:
        store.close()
    differ = [name for name, same in found.items() if not same]
    red = sum(status["color"] == "red" for status in expected.status.values())
    verdict = "agree with the oracle" if not differ else "DIFFER from the oracle: " + ", ".join(differ)
    text = (f"{red:,} red and {len(expected.status) - red:,} yellow, {len(expected.calllists):,} offices' call "
            f"lists and the KPIs {verdict}")
    return text, differ


def _progress(state: Path, settings: Settings) -> None:
    """The city's tracing progress and the slowest offices (排查进度), two days after the last ride
    (the simulated offices go on calling after the rides end; ``tracer kpis --at`` asks the same)."""
    store = RocksStore(state, read_only=True)
    try:
        now = event_time(store)
        kpis = tracing_kpis(store, settings, None if now is None else now + _TWO_DAYS)
    finally:
        store.close()
    print(f"  tracing progress at {kpis['at']}, 48 h after the last ride (alerted, reached within 24 h, "
          "median hours to reach, overdue; the city, then the slowest offices):")
    for row in [kpis["city"], *kpis["offices"][:5]]:
        median = "-" if row["median_hours_to_reach"] is None else f"{row['median_hours_to_reach']:.1f}"
        label = "city" if row["subdistrict"] == "city" else f"{row['subdistrict']}  {row['name'] or ''}"
        print(f"    {row['alerted']:6,} {row['reached_24h']:6,} {median:>6} {row['overdue']:6,}  {label}")


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.4f}" if whole else "n/a"
