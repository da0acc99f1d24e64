"""Kafka-mode measurements on a local Tansu broker (numbers for docs/kafka.md); not a test.

    python -m benchmarks.kafka_mode [--persons 20000 --days 5 --cases 40 --partitions 4]
    python -m benchmarks.kafka_mode --trips 300000   # a steady stream of trips instead of a city

1. the embedded runner on the city (the engine's own speed, one core);
2. ``publish``; then one worker process on the whole backlog, then two (a fresh group each):
   records/s per worker while it has a backlog;
3. latency: with a worker idle and caught up, case reports published one at a time; the time
   until their first alert reaches a subscriber (two broker hops and the worker), against a bare
   one-hop probe (producer -> broker -> consumer, same client settings) in the same run, and the
   worker's own time for the batch that held the case.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import threading
import time
from dataclasses import replace
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer

from benchmarks.common import trips_file
from connectors.kafka.publish import publish
from connectors.kafka.settings import KafkaSettings
from streams.embedded import run_embedded
from streams.kafka.worker import Worker
from tests.kafka.cluster import WorkerProcess, wait_caught_up
from tests.kafka.conftest import TEST_TIMINGS
from tests.kafka.harness import write_config
from tests.kafka.tansu import city_arguments, scratch_broker
from tracer.settings import load_settings

SETTINGS = load_settings()
_RATE = re.compile(r"worker stopped: ([\d,]+) records \(([\d,]+)/s\).*; registry ([\d,]+) records in ([\d.]+) s")


def main() -> None:
    parser = argparse.ArgumentParser()
    city_arguments(parser)
    parser.add_argument("--probes", type=int, default=12)
    parser.add_argument("--trips", type=int, default=0, help="instead of a city: this many simulated trips only")
    args = parser.parse_args()
    with scratch_broker("tracer-bench-") as (folder, url):
        _bench(args, folder, url)


def _bench(args: argparse.Namespace, folder: Path, url: str) -> None:
    from tracer.simulate import generate

    if args.trips:  # a steady stream: trips only (the registry loaded once is not the load to size for)
        events = trips_file(folder, args.trips)
    else:
        generate(args.persons, args.days, args.cases, 1, folder / "city", truth=False, followups=False)
        events = folder / "city" / "events.jsonl"
    summary = run_embedded([str(events)], folder / "run", SETTINGS)
    print(f"embedded       {summary.lines:,} lines in {summary.seconds:.1f} s: {summary.lines_per_second:,.0f}/s")
    kafka = replace(KafkaSettings(), broker=url, **{**TEST_TIMINGS, "events_partitions": args.partitions})
    published = publish([str(events)], SETTINGS, kafka)
    print(f"publish        {sum(published.events.values()):,} events -> {published.records:,} records "
          f"in {published.seconds:.1f} s ({sum(published.events.values()) / published.seconds:,.0f} events/s, "
          f"{published.records / published.seconds:,.0f} records/s)")
    for count in (1, 2):
        group = replace(kafka, group_id=f"bench-{count}")
        config = write_config(group, folder / f"group{count}.toml")
        workers = [WorkerProcess(f"g{count}w{i}", config, folder / f"g{count}s{i}", folder).start()
                   for i in range(count)]
        started = time.monotonic()
        done = wait_caught_up(group, workers, timeout=900)
        rates = []  # per worker: events records, their records/s, registry records, registry seconds
        for worker in workers:
            worker.stop()
            found = _RATE.search(worker.text())
            rates.append((_int(found.group(1)), _int(found.group(2)), _int(found.group(3)), float(found.group(4)))
                         if found else (0, 0, 0, 0.0))
        total = sum(r for r, *_ in rates)
        busy = max(r / rate + seconds for r, rate, _, seconds in rates if rate) if any(r[1] for r in rates) else 0.0
        events_rate = sum(published.events.values()) / busy if busy else 0.0
        print(f"{count} worker(s)   {total:,} events-topic records (fan-out and ride copies included) caught up "
              f"{done - started:.1f} s after start (group join included); per worker while busy: "
              f"{', '.join(f'{rate:,} records/s' for _, rate, _, _ in rates)}; registry read by each: "
              f"{', '.join(f'{n:,} in {t:.1f} s' for _, _, n, t in rates)}; "
              f"input events/s (registry included): {events_rate:,.0f}")
    _latency(replace(kafka, group_id="bench-1"), folder, events, args.probes)


def _latency(kafka: KafkaSettings, folder: Path, events: Path, probes: int) -> None:
    """Case report -> first alert at a subscriber, against a one-hop probe; the worker in-process."""
    worker = Worker(SETTINGS, kafka, folder / "g1s0")
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=lambda: loop.run_until_complete(worker.run(stop)), daemon=True)
    runner.start()
    seen: dict[str, float] = {}
    counts: dict[str, int] = {}
    last: dict[str, float] = {}
    watchers = [_watch(kafka, kafka.contacts_topic, seen, "case_id", counts, last),
                _watch(kafka, "bench-probe", seen, "probe", counts, last)]
    time.sleep(12)  # group join and fetch positions
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=0, acks="all")
    people = travellers(events, probes)
    two_hops, one_hop, own, settled = [], [], [], []
    for index, (person, onset) in enumerate(people):
        case_id = f"LAT{index}"
        record = {"type": "case", "case_id": case_id, "person_id": person, "status": "confirmed", "onset": onset,
                  "isolated_at": None, "reported_at": f"{onset}T23:00:00+08:00"}
        before = len(worker.stats.recent)
        sent = time.time()
        for partition in range(kafka.events_partitions):
            producer.send(kafka.events_topic, orjson.dumps(record), key=case_id.encode(), partition=partition)
        producer.flush()
        if not _wait(seen, case_id, 20):
            continue
        two_hops.append(seen[case_id] - sent)
        case_sent = sent
        batches = list(worker.stats.recent)[before:]
        own.append((case_id, max((a for _, a, _ in batches), default=0.0),
                    max((d for _, _, d in batches), default=0.0)))
        sent = time.time()
        producer.send("bench-probe", orjson.dumps({"probe": f"p{index}"}))
        producer.flush()
        if _wait(seen, f"p{index}", 20):
            one_hop.append(seen[f"p{index}"] - sent)
        time.sleep(4)  # secondary contacts come after the interest and ride-copy hops
        settled.append(last[case_id] - case_sent)
    loop.call_soon_threadsafe(stop.set)
    runner.join(60)
    for watcher in watchers:
        watcher.set()
    if two_hops and one_hop:
        median2, median1 = statistics.median(two_hops), statistics.median(one_hop)
        print(f"latency        case -> first alert: median {median2 * 1000:.0f} ms (n={len(two_hops)}); "
              f"one-hop probe median {median1 * 1000:.0f} ms; two hops {2 * median1 * 1000:.0f} ms")
        applies, delivers = [a for _, a, _ in own], [d for _, _, d in own]
        slowest = max(own, key=lambda row: row[1])
        print(f"cases          alert changes per case: {sorted(counts.get(c, 0) for c, _, _ in own)}; the slowest "
              f"apply ({1000 * slowest[1]:.0f} ms) was a case with {counts.get(slowest[0], 0)}")
        print(f"settled        case -> last alert change (secondary contacts included): median "
              f"{1000 * statistics.median(settled):.0f} ms, max {1000 * max(settled):.0f} ms")
        print(f"by difference  {1000 * (median2 - 2 * median1):.0f} ms (hops vary by their fetch phase)")
        print(f"engine share   the worker's apply time for the batch holding the case: median "
              f"{1000 * statistics.median(applies):.1f} ms, max {1000 * max(applies):.1f} ms; delivery and "
              f"commits after it: median {1000 * statistics.median(delivers):.1f} ms, "
              f"max {1000 * max(delivers):.1f} ms")


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def travellers(events: Path, count: int) -> list[tuple[str, str]]:
    """People with rides, and a date to put their onset on."""
    found: dict[str, str] = {}
    for line in events.read_bytes().splitlines():
        if b'"trip"' in line:
            try:
                trip = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            found.setdefault(trip.get("person_id"), trip.get("date"))
            if len(found) >= count * 50:
                break
    people = sorted(found.items())[::50]
    return [(p, d) for p, d in people if isinstance(p, str) and isinstance(d, str)][:count]


def _watch(kafka: KafkaSettings, topic: str, seen: dict[str, float], field: str,
           counts: dict[str, int], last: dict[str, float]) -> threading.Event:
    done = threading.Event()

    def run() -> None:
        consumer = KafkaConsumer(topic, bootstrap_servers=kafka.bootstrap, group_id=f"watch-{topic}",
                                 auto_offset_reset="latest", fetch_max_wait_ms=kafka.fetch_max_wait_ms,
                                 session_timeout_ms=6000, heartbeat_interval_ms=2000)
        while not done.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                now = time.time()
                for record in records:
                    key = orjson.loads(record.value)[field]
                    seen.setdefault(key, now)
                    counts[key] = counts.get(key, 0) + 1
                    last[key] = now
        consumer.close()

    threading.Thread(target=run, daemon=True).start()
    return done


def _wait(seen: dict[str, float], key: str, seconds: float) -> bool:
    deadline = time.time() + seconds
    while key not in seen and time.time() < deadline:
        time.sleep(0.005)
    return key in seen


if __name__ == "__main__":
    main()
