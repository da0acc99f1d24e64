"""``tracer generate``: the command-line face of :func:`tracer.simulate.generate`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from tracer.simulate.generate import MAX_DAYS, generate


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--persons", type=int, default=20_000, help="residents (default 20000)")
    parser.add_argument("--days", type=int, default=7, help=f"days of travel, 1 to {MAX_DAYS} (default 7)")
    parser.add_argument("--cases", type=int, default=20, help="reported cases (default 20)")
    parser.add_argument("--seed", type=int, default=2020, help="same seed, same bytes (default 2020)")
    parser.add_argument("--out", type=Path, default=Path("tracer-demo"), help="output folder")
    parser.add_argument("--start-date", default="2020-01-15", help="first day, YYYY-MM-DD")
    parser.add_argument(
        "--no-truth", dest="truth", action="store_false", help="skip the oracle's truth.jsonl (large runs)"
    )
    parser.add_argument(
        "--no-followups", dest="followups", action="store_false",
        help="no street office follows contacts up: the same events but the followup lines",
    )
    parser.add_argument(
        "--feeds", type=Path, metavar="DIR",
        help="also write the city as raw feeds into DIR (registry, cases, flight manifests with ID numbers, "
        "and feeds.json listing them): the input of `tracer import`, docs/import.md",
    )


def run_generate(args: argparse.Namespace) -> int:
    """Generate, then print the counts as JSON on stdout."""
    stats = generate(
        args.persons, args.days, args.cases, args.seed, args.out, start_date=args.start_date, truth=args.truth,
        followups=args.followups, feeds=args.feeds,
    )
    sys.stdout.write(orjson.dumps(stats, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
