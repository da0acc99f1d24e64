"""How much of the truth's metro the documented imports reach: docs/import.md's commands, run as
written on a simulated city, against the oracle's ``truth.jsonl``.

The path is ``tracer import registry``, ``cases``, ``manifest``, ``tickets``, then ``taps`` (or
``carriage-codes``) with the card-holder list, and ``tracer run`` on them all (a secondary metro
contact may be of a close contact made on a train), each a ``tracer`` command as a data engineer types it. A metro
alert is compared by (case, contact, service, date) for taps (their rides are on the truth's runs)
and by (case, contact, date, level) for carriage codes (whose service is the train set). The
figures: the truth's alerts reached, those *reachable* (the case's card has a known holder: no feed
ties another case's rides to the case) and any alert the truth lacks. tests/test_review_importers.py
holds a small city to it; docs/import.md states the figures of ``python -m benchmarks metro-reach``.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import save, table
from connectors.importers.identity import PersonIds
from tracer.alerts import fold
from tracer.simulate import generate
from tracer.simulate.feeds.documents import document
from tracer.simulate.feeds.transit import card

HELP = "the share of the truth's metro alerts docs/import.md's commands reach on a simulated city"
KEY = "metro-reach-key-0123456789abcdef"


def reach(city: Path, work: Path, kind: str = "taps") -> dict[str, Any]:
    """The documented imports of ``city`` (``tracer generate --feeds city/feeds``, with its truth)
    traced in ``work``; the counts of the truth's metro alerts reached."""
    feeds = city / "feeds"
    travel = ["--timetable", str(feeds / "gtfs.zip")] if kind == "taps" else ["--taps", str(feeds / "taps.csv")]
    timetable = ["--timetable", str(feeds / "gtfs.zip")]
    imports = {"registry": [str(feeds / "registry.csv")], "cases": [str(feeds / "cases.csv")],
               "manifest": [str(feeds / "manifests.csv")], "tickets": [str(feeds / "tickets.csv"), *timetable],
               kind: [str(feeds / f"{kind}.csv"), *travel, "--card-holders", str(feeds / "card-holders.csv")]}
    reports = {name: tracer("import", name, *arguments, "--out", str(work / f"{name}.jsonl"))
               for name, arguments in imports.items()}
    tracer("run", *(str(work / f"{name}.jsonl") for name in imports), "--out", str(work / "out"), "--quiet")
    truth = [orjson.loads(line) for line in (city / "truth.jsonl").read_bytes().splitlines()]
    alerts = fold(orjson.loads(line) for line in (work / "out" / "contacts.jsonl").read_bytes().splitlines())
    ids = PersonIds(KEY.encode())
    people = {alert[role] for alert in truth for role in ("case_person_id", "contact_person_id")}
    back = {ids.person_id(*document(p)): p for p in people} | {ids.person_id("card", card(p)): p for p in people}
    if kind == "taps":  # no carriage: general contacts of the truth's direct ones, on the truth's runs
        key = lambda alert, contact: (alert["case_id"], contact, alert["service"], alert["date"])  # noqa: E731
        expected = {key(a, a["contact_person_id"]) for a in truth if a["mode"] == "metro" and a["level"] != "secondary"}
    else:
        key = lambda alert, contact: (alert["case_id"], contact, alert["date"], alert["level"])  # noqa: E731
        expected = {key(a, a["contact_person_id"]) for a in truth if a["mode"] == "metro"}
    got = {key(a, back.get(a["contact_person_id"])) for a in alerts.values() if a["mode"] == "metro"}
    with open(feeds / "card-holders.csv", encoding="utf-8", newline="") as rows:
        held = {row["card"] for row in csv.DictReader(rows)}
    cases = {alert["case_id"]: alert["case_person_id"] for alert in truth}
    reachable = {k for k in expected if card(cases[k[0]]) in held}
    return {"kind": kind, "metro_alerts": sum(a["mode"] == "metro" for a in truth), "expected": len(expected),
            "reachable": len(reachable), "reached": len(got & expected), "reached_reachable": len(got & reachable),
            "wrong": len(got - expected), "report": reports[kind]}


def tracer(*arguments: str) -> str:
    """``tracer ARGUMENTS`` under the identity key; its standard error (the import's report)."""
    done = subprocess.run([sys.executable, "-m", "tracer.cli", *arguments], capture_output=True, text=True,
                          env=os.environ | {"TRACER_ID_KEY": KEY}, check=False)
    if done.returncode:
        raise RuntimeError(f"tracer {arguments[0]} failed: {done.stderr[-2000:]}")
    return done.stderr


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--seed", type=int, default=3)
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        city = Path(folder) / "city"
        generate(args.persons, args.days, args.cases, args.seed, city, truth=True, feeds=city / "feeds")
        results = []
        for kind in ("taps", "carriage-codes"):
            (Path(folder) / kind).mkdir()
            results.append(reach(city, Path(folder) / kind, kind))
    rows = [[r["kind"], r["metro_alerts"], r["expected"], r["reached"], f"{r['reached'] / r['expected']:.3f}",
             r["reachable"], f"{r['reached_reachable'] / r['reachable']:.3f}", r["wrong"]] for r in results]
    print(table(rows, ["import", "truth metro", "compared", "reached", "share", "reachable", "share", "wrong"]))
    save("metro-reach", {"args": {k: v for k, v in vars(args).items() if k != "run"},
                         "results": [{k: v for k, v in r.items() if k != "report"} for r in results]})
