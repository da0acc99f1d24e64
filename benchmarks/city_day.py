"""A realistic day: `tracer run` on a simulated Shanghai day against a DuckDB self-join of it.

Scale 1 is a whole day of the city (25M residents, 1,000 cases); the default 0.1 is
`tracer generate --persons 2500000 --days 1 --cases 100 --seed 9 --no-truth --no-followups`
(3.6M lines). Both run as whole processes on the same file, fresh outputs and state each time, and
both must give the same direct contacts: tracer's contacts stream folded to its live direct alerts
of cases (secondary alerts and exposures left out) against the peer's rows, compared by (case,
contact, mode, service, date), then by level and home subdistrict. A mismatch ends the run with
status 1. The bare loop (benchmarks/bare_loop.py) runs on the same file as a third process: the
ceiling of a per-line Python loop writing per-key to RocksDB, against which tracer's CPU is given,
for the whole day and for what follows the registry block.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import RESULTS, Measured, measure, save, table
from tracer.alerts import fold
from tracer.rules import Level
from tracer.simulate import generate

ROOT = Path(__file__).resolve().parents[1]  # the checkout whose tracer is measured
CITY_PERSONS, CITY_CASES, SEED = 25_000_000, 1_000, 9
DEFAULT_DATA = RESULTS / "city-day"  # generated days are kept here and reused (a tenth of the city: 470 MB)
# dead letters of the engine's event-time checks, which the peer does not mirror (a one-day city has none)
EVENT_TIME_REASONS = ("retention horizon", "too far from service date")

Key = tuple[str, str, str, str, str]  # case, contact, mode, service, date


def day_file(data: Path, scale: float, cases: int | None = None) -> tuple[Path, dict[str, Any]]:
    """The day's events, generated once per set of parameters and kept under ``data``. Also the
    byte offset where the leading registry block ends, to tell the registry's time from the trips'.
    ``cases`` overrides the city's rate (a dense outbreak: a small day with flight and train contacts)."""
    cases = cases or max(1, round(CITY_CASES * scale))
    params = {"persons": round(CITY_PERSONS * scale), "days": 1, "cases": cases, "seed": SEED}
    folder = data / "day-{persons}-persons-{cases}-cases-seed-{seed}".format(**params)
    marker = folder / "generated.json"  # written last: a day cut short by ^C is generated again
    if marker.exists() and json.loads(marker.read_text())["params"] == params:
        return folder / "events.jsonl", json.loads(marker.read_text())
    print(f"generating {params['persons']:,} residents, {params['cases']:,} cases in {folder} ...", flush=True)
    summary = generate(**params, out_dir=folder, truth=False, followups=False)
    info = {"params": params, "summary": summary, "registry_bytes": _registry_bytes(folder / "events.jsonl")}
    marker.write_text(json.dumps(info, indent=2) + "\n")
    return folder / "events.jsonl", info


def _registry_bytes(path: Path) -> int:
    """Where the first line that is not a registry line starts (the simulator writes people first)."""
    offset = 0
    with open(path, "rb") as lines:
        for line in lines:
            if line.startswith((b'{"type":"trip"', b'{"type":"case"')):
                break
            offset += len(line)
    return offset


def run(scale: float, data: Path, repeat: int, tracer_args: str, cases: int | None = None) -> dict[str, Any]:
    events, info = day_file(data, scale, cases)
    extra = shlex.split(tracer_args)
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config")
    rules_file = config.parse_known_args(extra)[0].config  # the peer reads the same rules
    attempts, compared = [], []
    for _ in range(repeat):
        work = Path(tempfile.mkdtemp(prefix="run-", dir=data))
        try:
            engine = measure(
                [sys.executable, "-m", "tracer.cli", "run", str(events), "--out", str(work / "out"),
                 "--state", str(work / "state"), *extra],
                ROOT, work / "tracer", watch=events,
            )
            peer = measure(
                [sys.executable, "-m", "benchmarks.duckdb_peer", str(events), "--out", str(work / "duckdb.jsonl"),
                 *(["--config", rules_file] if rules_file else [])],
                ROOT, work / "duckdb",
            )
            bare = measure(
                [sys.executable, "-m", "benchmarks.bare_loop", str(events), "--state", str(work / "bare")],
                ROOT, work / "bare", watch=events,
            )
            found = compare(tracer_contacts(work / "out"), peer_contacts(work / "duckdb.jsonl"))
            found["event_time_dead_letters"] = event_time_dead_letters(work / "out" / "dead-letter.jsonl")
            compared.append(found)
            attempts.append(_attempt(engine, peer, bare, info["registry_bytes"] / events.stat().st_size))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "scale": scale,
        "params": info["params"],
        "generated": info["summary"],
        "tracer_args": tracer_args,
        "lines": info["summary"]["lines"],
        "attempts": attempts,
        "contacts": compared[-1],
        "same_contact_set": all(c["mismatches"] == 0 for c in compared),
        "tracer_s": min(a["tracer"]["seconds"] for a in attempts),
        "duckdb_s": min(a["duckdb"]["seconds"] for a in attempts),
    }
    result["ratio"] = result["duckdb_s"] / result["tracer_s"]
    # CPU, not wall: the bare loop and tracer each use one core, and the machine is often shared
    result["bare_ratio"] = max(a["bare"]["cpu_s"] / a["tracer"]["cpu_s"] for a in attempts)
    result["bare_ratio_trips"] = max(_after_registry(a["bare"]) / _after_registry(a["tracer"]) for a in attempts)
    _print(result)
    return result


def _attempt(engine: Measured, peer: Measured, bare: Measured, registry_share: float) -> dict[str, Any]:
    return {
        "tracer": _split(engine, registry_share),
        "bare": _split(bare, registry_share),
        "duckdb": {"seconds": peer.seconds, "cpu_s": peer.cpu_seconds, "peak_rss_mb": peer.peak_rss_mb,
                   "samples": peer.samples, "steps": orjson.loads(peer.stdout.splitlines()[-1])},
    }


def _split(run: Measured, registry_share: float) -> dict[str, Any]:
    """A run's wall and CPU seconds, and those up to the first sample that has read past the
    registry block (bounded by the sampling step)."""
    registry = next((s for s in run.samples if s["input"] > registry_share), {"s": run.seconds, "cpu": run.cpu_seconds})
    return {"seconds": run.seconds, "cpu_s": run.cpu_seconds, "registry_s": registry["s"],
            "registry_cpu_s": registry["cpu"], "peak_rss_mb": run.peak_rss_mb, "samples": run.samples}


def _after_registry(run: dict[str, Any]) -> float:
    """CPU seconds of the trips and cases after the registry block."""
    return run["cpu_s"] - run["registry_cpu_s"]


def tracer_contacts(out: Path) -> dict[Key, tuple[str, str | None]]:
    """The live direct alerts of cases in tracer's contacts stream: key -> (level, subdistrict)."""
    with open(out / "contacts.jsonl", "rb") as lines:
        live = fold(map(orjson.loads, lines))
    return {
        (a["case_id"], a["contact_person_id"], a["mode"], a["service"], a["date"]): (a["level"], a["subdistrict"])
        for a in live.values()
        if a["source_kind"] == "case" and a["via_person_id"] is None
    }


def peer_contacts(path: Path) -> dict[Key, tuple[str, str | None]]:
    with open(path, "rb") as lines:
        rows = map(orjson.loads, lines)
        return {(r["case_id"], r["person_id"], r["mode"], r["service"], r["date"]): (r["level"], r["subdistrict"])
                for r in rows}


def compare(engine: dict[Key, tuple[str, str | None]], peer: dict[Key, tuple[str, str | None]]) -> dict[str, int]:
    both = engine.keys() & peer.keys()
    found = {
        "direct": len(engine),
        "close": sum(level == Level.CLOSE for level, _ in engine.values()),
        "cases": len({key[0] for key in engine}),
        "by_mode": dict(Counter(f"{key[2]}.{level}" for key, (level, _) in sorted(engine.items()))),
        "only_tracer": len(engine.keys() - peer.keys()),
        "only_duckdb": len(peer.keys() - engine.keys()),
        "level_differs": sum(engine[k][0] != peer[k][0] for k in both),
        "subdistrict_differs": sum(engine[k][1] != peer[k][1] for k in both),
    }
    found["mismatches"] = sum(found[name] for name in ("only_tracer", "only_duckdb", "level_differs",
                                                        "subdistrict_differs"))
    return found


def event_time_dead_letters(path: Path) -> int:
    """Lines the engine refused for event time or retention: the peer keeps them."""
    if not path.exists():
        return 0
    with open(path, "rb") as lines:
        reasons = Counter(orjson.loads(line)["reason"] for line in lines)
    return sum(n for reason, n in reasons.items() if any(r in reason for r in EVENT_TIME_REASONS))


def _print(result: dict[str, Any]) -> None:
    lines = result["lines"]
    rows = []
    for n, attempt in enumerate(result["attempts"], 1):
        engine, peer = attempt["tracer"], attempt["duckdb"]
        rows.append([n, f"{engine['seconds']:.1f}", f"{lines / engine['seconds']:,.0f}", f"{engine['registry_s']:.1f}",
                     f"{engine['peak_rss_mb']:,.0f}", f"{peer['seconds']:.1f}", f"{peer['peak_rss_mb']:,.0f}",
                     f"{peer['seconds'] / engine['seconds']:.3f}"])
    counts = result["generated"]["events"]
    print(f"{lines:,} lines ({result['params']['persons']:,} residents, {counts['trip']:,} trips, {counts['case']:,} "
          f"case events); tracer run {result['tracer_args'] or 'with its defaults'}")
    print(table(rows, ["run", "tracer s", "lines/s", "registry s", "RSS MB", "DuckDB s", "RSS MB", "DuckDB / tracer"]))
    cpu = []
    for n, attempt in enumerate(result["attempts"], 1):
        engine, bare, peer = attempt["tracer"], attempt["bare"], attempt["duckdb"]
        cpu.append([n, f"{engine['registry_cpu_s']:.1f} + {_after_registry(engine):.1f}",
                    f"{bare['registry_cpu_s']:.1f} + {_after_registry(bare):.1f}", f"{bare['seconds']:.1f}",
                    f"{peer['cpu_s']:.1f}", f"{bare['cpu_s'] / engine['cpu_s']:.2f}",
                    f"{_after_registry(bare) / _after_registry(engine):.2f}"])
    print("CPU seconds (user + system), the registry block + the rest:")
    print(table(cpu, ["run", "tracer CPU s", "bare loop CPU s", "bare loop wall s", "DuckDB CPU s",
                      "bare / tracer", "after the registry"]))
    last = result["attempts"][-1]
    steps = last["duckdb"]["steps"]
    print("DuckDB steps (s): " + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in steps.items() if k != "seconds"))
    print("tracer RSS (MB) by input read: " + _rss_by_input(last["tracer"]["samples"]))
    c = result["contacts"]
    print(f"{c['direct']:,} direct contacts ({c['close']:,} close) of {c['cases']:,} cases; same contact set: "
          f"{result['same_contact_set']} (only tracer {c['only_tracer']}, only DuckDB {c['only_duckdb']}, "
          f"level differs {c['level_differs']}, subdistrict differs {c['subdistrict_differs']}); "
          f"event-time dead letters of the engine: {c['event_time_dead_letters']}")
    print(f"DuckDB / tracer: {result['ratio']:.3f} (best of {len(result['attempts'])} each; issue 17's target >= 0.5)")
    print(f"bare loop / tracer in CPU: {result['bare_ratio']:.2f}, after the registry {result['bare_ratio_trips']:.2f} "
          "(best of the runs; issue 17's target for the day's trips >= 0.6)")


def _rss_by_input(samples: list[dict[str, float]]) -> str:
    """RSS when the input was a tenth, a quarter, ... read: flat over the day or not."""
    shown = []
    for share in (0.1, 0.25, 0.5, 0.75, 1.0):
        sample = next((s for s in samples if s["input"] >= share * 0.999), None)
        if sample is not None:
            shown.append(f"{share:.0%} {sample['rss_mb']:,.0f}")
    median = statistics.median(s["rss_mb"] for s in samples) if samples else 0
    return ", ".join(shown) + f" (median {median:,.0f})"


def main(args: Any) -> None:
    args.data.mkdir(parents=True, exist_ok=True)
    result = run(args.scale, args.data, args.repeat, args.tracer_args, args.cases)
    print(f"results: {save('city-day', result)}")
    if not result["same_contact_set"]:
        raise SystemExit(1)
