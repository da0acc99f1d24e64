"""The bare loop: the practical ceiling of this design, a per-line Python loop with per-key RocksDB writes.

It parses each line with orjson and writes the keys tracer cannot do without, in batches of the
runner's size, and does nothing else (no validation, no dedupe read, no tracing, no outputs):

    a trip      its three keys (trip, rider of the service day, itinerary), the line as value
    a person    the home (``S|person``), as the registry does
    a case      its source record (``C|c:case``)

``python -m benchmarks ingest`` runs it in process on a trip stream; ``python -m benchmarks
city-day`` runs it as a whole process on the day (``python -m benchmarks.bare_loop EVENTS --state
DIR``), so that both of the engine's ratios are taken on the same lines as the engine's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import orjson
from rocksdict import Options, Rdict, WriteBatch

from graph.keys import HOMES, ITINERARIES, RIDERS, SOURCES, TRIPS
from graph.store import SEP


def bare_loop(path: Path, state: Path, batch_size: int) -> float:
    """Seconds to parse and write every line of ``path`` into a new RocksDB at ``state``."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    db = Rdict(str(state), options)
    started = time.perf_counter()
    batch, pending = WriteBatch(raw_mode=True), 0
    with open(path, "rb") as lines:
        for line in lines:
            try:
                _put(batch, orjson.loads(line), line, pending)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                continue  # the day's malformed lines: tracer dead-letters them, at a higher cost
            pending += 1
            if pending == batch_size:
                db.write(batch)
                batch, pending = WriteBatch(raw_mode=True), 0
    db.write(batch)
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def _put(batch: WriteBatch, event: dict, line: bytes, pending: int) -> None:
    kind = event["type"]
    if kind == "trip":
        day = f"{event['date']}{SEP}{event['mode']}{SEP}{event['service']}"
        trip_id, person = event.get("trip_id") or str(pending), event["person_id"]
        batch.put(f"{TRIPS}{SEP}{trip_id}".encode(), line)
        batch.put(f"{RIDERS}{SEP}{day}{SEP}{person}{SEP}{trip_id}".encode(), line)
        batch.put(f"{ITINERARIES}{SEP}{person}{SEP}{event['date']}{SEP}{trip_id}".encode(), b"")
    elif kind == "person":
        batch.put(f"{HOMES}{SEP}{event['person_id']}".encode(), str(event.get("subdistrict")).encode())
    elif kind == "case":
        batch.put(f"{SOURCES}{SEP}c:{event['case_id']}".encode(), line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=Path)
    parser.add_argument("--state", type=Path, required=True, help="a new RocksDB folder")
    parser.add_argument("--batch", type=int, default=5000, help="lines per WriteBatch (runtime.commit_every)")
    args = parser.parse_args()
    print(f"{bare_loop(args.events, args.state, args.batch):.3f}")


if __name__ == "__main__":
    main()
