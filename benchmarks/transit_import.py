"""Rail tickets, metro taps and carriage codes: records/s of ``tracer import``, and journeys/s of the
tap-to-run inference, against a bare CSV read of the same file in the same run.

The feeds are the simulator's (``tracer generate --feeds``), grown to ``--records`` rows each by
copies whose people are other people (each copy's ID numbers and cards are new ones), so every
row costs what a real row costs: a new person to hash, a ride to time, a line to validate and
write. The import runs in-process through ``run_import`` exactly as ``tracer import KIND`` does
(the columnar fast path), and again row by row (``columnar=False``, the reference path; for taps
since 2026-12-03: before, their only path); the baseline is ``csv.reader`` over the same file,
doing nothing with the rows. The inference is
timed alone: routing and fitting runs for already paired journeys (``connectors.importers.taps.fits``;
before 2026-12-03 ``taps.rides``, which also built each ride's event as a dict, as the import no
longer does: its lines are built valid by construction).
Rates are per CPU second of the process, as in ``benchmarks.import_feeds`` (polars on one thread:
one core), so that the machine's other work moves them less than it moves wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import shutil
import tempfile
import time
import zlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import save, table
from benchmarks.import_feeds import bare
from connectors.importers import taps
from connectors.importers.base import run_import
from connectors.importers.gtfs import read_timetable
from connectors.importers.identity import PersonIds
from connectors.importers.journeys import Network
from connectors.importers.kinds import KINDS
from connectors.importers.report import NotTraced, Rejected
from tracer.documents import check_digit
from tracer.settings import Settings
from tracer.simulate import generate

HELP = "tracer import tickets / taps / carriage-codes: records/s against a bare CSV read; tap-to-run journeys/s"
KEY = b"benchmark-identity-key-0123456789"
FEEDS = {"tickets": "tickets.csv", "taps": "taps.csv", "carriage-codes": "carriage-codes.csv"}
MOVED = "taps, times moved"  # the grown taps, each card's times moved (``moved``): about one fit per journey


def grown(source: Path, target: Path, records: int) -> int:
    """``source`` copied until it holds about ``records`` rows; copy ``n`` renames its people."""
    with open(source, encoding="utf-8", newline="") as rows:
        header, *body = list(csv.reader(rows))
    people = [header.index(name) for name in ("id_number", "card") if name in header]
    written = 0
    with open(target, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for copy in range(max(1, -(-records // max(1, len(body))))):
            for row in body:
                row = list(row)
                for at in people:
                    row[at] = _other(row[at], copy)
                writer.writerow(row)
                written += 1
    return written


def _other(number: str, copy: int) -> str:
    """The document or card of the same person in copy ``copy``: another valid one."""
    if copy == 0:
        return number
    plain = number.strip()
    if len(plain) == 18 and plain[:17].isdigit():
        first17 = f"{(int(plain[:6]) + copy) % 900_000 + 100_000:06d}{plain[6:17]}"
        return first17 + check_digit(first17)
    return f"{plain}X{copy}"


def import_seconds(
    kind: str, path: Path, out: Path, options: dict[str, Any], columnar: bool = True
) -> tuple[float, Any]:
    """CPU seconds of one import (the process's: polars has one thread) and its report."""
    started = time.process_time()
    report = run_import(KINDS[kind], [str(path)], str(out), Settings(), PersonIds(KEY), argparse.Namespace(**options),
                        columnar=columnar)
    return time.process_time() - started, report


def inference_rate(path: Path, timetable_path: Path) -> tuple[int, float]:
    """(journeys, CPU seconds) of routing and fitting runs for every journey of a tap file (the
    best of three passes)."""
    timetable = read_timetable(timetable_path)
    network, settings, ids = Network(timetable), taps.TapSettings(), PersonIds(KEY)
    read, reader = [], taps.TapReader(ids, timetable)
    for item in taps.read_taps(str(path), taps.KIND):
        if isinstance(item, tuple):
            with contextlib.suppress(Rejected, NotTraced):
                read.append(reader.read(item[1], item[0], ""))
    journeys = [item for item in taps.pair(read, settings) if isinstance(item, taps.Journey)]
    passes = []
    for _ in range(3):
        started = time.process_time()
        for journey in journeys:
            with contextlib.suppress(Rejected):
                taps.fits(journey, timetable, network, settings)
        passes.append(time.process_time() - started)
    return len(journeys), min(passes)


def moved(source: Path, target: Path) -> None:
    """``source``'s taps with each card's times moved by 0 to 49 s (the same for all its taps, by a
    digest of the card): the grown file's copies ride at the same seconds, a real feed's riders do not."""
    with open(source, encoding="utf-8", newline="") as rows, open(target, "w", encoding="utf-8", newline="") as out:
        reader, writer = csv.reader(rows), csv.writer(out, lineterminator="\n")
        header = next(reader)
        writer.writerow(header)
        card, at = header.index("card"), header.index("time")
        for row in reader:
            moment = datetime.fromisoformat(row[at]) + timedelta(seconds=zlib.crc32(row[card].encode()) % 50)
            writer.writerow([*row[:at], moment.strftime("%Y-%m-%d %H:%M:%S"), *row[at + 1:]])


def measure(
    result: dict[str, Any], label: str, kind: str, path: Path, count: int, options: dict[str, Any]
) -> list[str]:
    """Import ``path`` (``count`` rows) both ways and read it bare; its entry in ``result``, its table row."""
    root = path.parent
    baseline = bare(path)
    seconds, report = import_seconds(kind, path, root / f"{kind}.jsonl", options)
    by_row = import_seconds(kind, path, root / f"{kind}-rows.jsonl", options, False)[0]
    result["feeds"][label] = {"records": count, "seconds": round(seconds, 3), "records_per_s": round(count / seconds),
                              "row_path_records_per_s": round(count / by_row),
                              "bare_csv_records_per_s": round(count / baseline), "written": report.written}
    return [label, f"{count:,}", f"{count / seconds:,.0f}", f"{count / by_row:,.0f}", f"{count / baseline:,.0f}",
            f"{baseline / seconds:.2f}"]


def run(persons: int, records: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="tracer-transit-"))
    try:
        generate(persons, 2, 5, 7, root / "city", truth=False, followups=False, feeds=root / "feeds")
        feeds, result = root / "feeds", {"persons": persons, "records": records, "feeds": {}}
        rows, notes = [], []
        for kind, name in FEEDS.items():
            path = root / f"big-{name}"
            count = grown(feeds / name, path, records)
            options: dict[str, Any] = {"timetable": feeds / "gtfs.zip"}
            if kind == "carriage-codes":  # every copy's cards tap out: a tap-in and a tap-out per scan
                taps = grown(feeds / "taps.csv", root / "scan-taps.csv", 2 * count)
                options = {"taps": [root / "scan-taps.csv"]}
            rows.append(measure(result, kind, kind, path, count, options))
            if kind == "carriage-codes":  # the adapter reads and checks every tap too (each bad one is reported)
                entry = result["feeds"][kind]
                entry["taps_read"] = taps
                entry["records_read_per_s"] = round((count + taps) / entry["seconds"])
                notes.append(f"carriage codes read {count:,} scans and the {taps:,} taps that end them: "
                             f"{entry['records_read_per_s']:,} records read per CPU second")
            if kind == "taps":
                moved(path, root / "moved-taps.csv")
                rows.append(measure(result, MOVED, kind, root / "moved-taps.csv", count, options))
        journeys, seconds = inference_rate(root / "big-taps.csv", feeds / "gtfs.zip")
        result["inference"] = {"journeys": journeys, "journeys_per_s": round(journeys / seconds)}
        rows.append(["tap-to-run inference", f"{journeys:,} journeys", f"{journeys / seconds:,.0f}", "", "", ""])
        print("per CPU second")
        print(table(rows, ["feed", "records", "imported/s", "row path/s", "bare csv read/s", "import / bare"]))
        print("\n".join(notes))
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--persons", type=int, default=20_000, help="residents of the simulated city")
    parser.add_argument("--records", type=int, default=200_000, help="rows of each feed (copies of the city's)")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> None:
    save("transit-import", run(args.persons, args.records))
