"""How fast an alert reaches the view side, plain aiokafka against Faust (numbers for docs/kafka.md);
not a test.

    python -m benchmarks.kafka_views [--persons 20000 --days 5 --cases 40 --partitions 4 --probes 10]
    python -m benchmarks.kafka_views --trip-cost 300000   # reading trips for event time, no broker

The outbreak city of ``benchmarks.kafka_mode``, published and traced by one ``tracer worker``
process, which keeps running. Then each view side in turn, in a process of its own, on the same
topics with a status topic of its own: it reads the topics from the beginning (the time until its
status topic goes quiet is printed), then, caught up, case reports are published one at a time.
Per case, a subscriber of the contacts and status topics sees:

* **view hop**: from the worker's first contacts record of the case (the record's CreateTime, set
  when the worker sends it) to the first status record naming the case (consume, apply, commit,
  produce, and the subscriber's fetch): what the console's "alert on the office page" waits for
  after the alert exists;
* **end to end**: from publishing the case to that status record (two hops more, and the worker);
* **every status of a case**: to the last status record naming it, from the case's first contacts
  record and from its last (a case's alert changes come in several worker batches: secondary
  contacts follow the ride copies);
* a one-hop probe (producer -> broker -> consumer) in the same run, the baseline of a hop.

The sides:

* ``plain``: ``tracer views`` (streams/kafka/view_process.py), a plain aiokafka consumer;
* ``faust-task``: a Faust agent over the same three topics (``take_events``) driving the same
  ``ViewTask`` (its store, its commit), sending the outbox through Faust's producer and waiting for
  the acknowledgements: Faust's stream machinery against the plain loop, the work being the same;
* ``faust-tables``: the design the issue proposed: a Faust agent over the contacts topic keeping
  RocksDB-backed Faust tables keyed by person (their live alerts) and by office (their residents)
  and the status (``tracer.views.health``), each change sent to the status topic. It does less than
  the others: no event time (its "now" stays unset) and no cases or follow-ups.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from benchmarks.kafka_mode import travellers
from connectors.kafka.publish import publish
from connectors.kafka.settings import KafkaSettings
from connectors.kafka.topics import TopicSpec, base_topics, ensure_topics
from tests.kafka.cluster import WorkerProcess, wait_caught_up
from tests.kafka.conftest import ROOT, TEST_TIMINGS
from tests.kafka.harness import write_config
from tests.kafka.tansu import city_arguments, scratch_broker
from tracer.settings import load_settings

SETTINGS = load_settings()
SIDES = ("plain", "faust-task", "faust-tables")
PROBE_TOPIC = "bench-probe"


def main() -> None:
    parser = argparse.ArgumentParser()
    city_arguments(parser)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--fetch-max-wait-ms", type=int, default=TEST_TIMINGS["fetch_max_wait_ms"],
                        help="every view side's (Tansu answers a fetch only after about this long)")
    parser.add_argument("--rounds", type=int, default=1, help="the sides in turn, this many times")
    parser.add_argument("--trip-cost", type=int, metavar="TRIPS",
                        help="instead: the view task's reading of this many trips (event time), no broker")
    args = parser.parse_args()
    if args.trip_cost:
        _trip_cost(args.trip_cost)
        return
    with scratch_broker("tracer-views-") as (folder, url):
        _bench(args, folder, url)


def _trip_cost(trips: int) -> None:
    """What reading the trips for event time costs the view task, against a bare ``orjson.loads``."""
    from benchmarks.common import trips_file
    from streams.kafka.views import ViewTask
    from tests.kafka.harness import Rec

    with tempfile.TemporaryDirectory(prefix="tracer-views-") as scratch:
        lines = trips_file(Path(scratch), trips).read_bytes().splitlines()
        kafka = replace(KafkaSettings(), **TEST_TIMINGS)
        task = ViewTask(Path(scratch) / "views", SETTINGS, kafka, kafka.events_partitions)
        started = time.perf_counter()
        for start in range(0, len(lines), kafka.batch_max_records):
            chunk = lines[start:start + kafka.batch_max_records]
            task.apply({(kafka.events_topic, 0): [Rec(start + i, line) for i, line in enumerate(chunk)]})
            task.commit()
        views = time.perf_counter() - started
        task.close()
        started = time.perf_counter()
        for line in lines:
            orjson.loads(line)
        bare = time.perf_counter() - started
    count = len(lines)
    print(f"{count:,} trips: the view task {1e6 * views / count:.1f} us a trip ({count / views:,.0f}/s); "
          f"a bare orjson.loads {1e6 * bare / count:.1f} us")


def _bench(args: argparse.Namespace, folder: Path, url: str) -> None:
    from tracer.simulate import generate

    generate(args.persons, args.days, args.cases, 1, folder / "city", truth=False)
    events = folder / "city" / "events.jsonl"
    kafka = replace(KafkaSettings(), broker=url, **{**TEST_TIMINGS, "events_partitions": args.partitions})
    published = publish([str(events)], SETTINGS, kafka)
    print(f"city           {sum(published.events.values()):,} events published")
    worker = WorkerProcess("worker", write_config(kafka, folder / "worker.toml"), folder / "worker", folder).start()
    statuses = [f"status.{side}" for side in SIDES]
    compact = {"cleanup.policy": "compact"}
    ensure_topics(kafka, [*base_topics(kafka), TopicSpec(PROBE_TOPIC, 1),
                          *(TopicSpec(name, kafka.status_partitions, compact) for name in statuses)])
    watcher = Watcher(kafka, statuses)
    try:
        wait_caught_up(kafka, [worker], timeout=900)
        turns = [(r, side) for r in range(args.rounds) for side in args.sides.split(",")]
        people = travellers(events, args.probes * len(turns))
        for number, (round_, side) in enumerate(turns):
            own = replace(kafka, status_topic=f"status.{side}", fetch_max_wait_ms=args.fetch_max_wait_ms)
            process = _start(side, own, folder)
            try:
                started, count = time.monotonic(), watcher.counts[own.status_topic]
                if not watcher.wait_quiet(own.status_topic, 5.0, 600, count, process):
                    lines = (folder / f"{side}.log").read_text("utf-8", errors="replace").splitlines()
                    problem = next((line for line in lines if "Error" in line), lines[-1] if lines else "")
                    print(f"{side:14} stopped (round {round_ + 1}): {problem.strip()[:300]}")
                    continue
                print(f"{side:14} status topic quiet {time.monotonic() - started - 5:.1f} s after start "
                      f"({watcher.counts[own.status_topic] - count:,} records; round {round_ + 1})")
                _probe_cases(f"{side}-{round_}", own, watcher, people[number * args.probes:(number + 1) * args.probes])
            finally:
                process.terminate()
                process.wait(60)
    finally:
        watcher.stop()
        worker.stop()


def _start(side: str, kafka: KafkaSettings, folder: Path) -> subprocess.Popen:
    log = open(folder / f"{side}.log", "ab")  # noqa: SIM115 (the child keeps it)
    if side == "plain":
        config = write_config(kafka, folder / f"{side}.toml")
        command = [sys.executable, "-m", "tracer.cli", "views", "--config", str(config), "--state",
                   str(folder / side)]
    else:
        command = [sys.executable, "-m", "benchmarks.kafka_views_faust", side, str(write_config(kafka, folder /
                                                                                                f"{side}.toml")),
                   str(folder / side)]
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _probe_cases(side: str, kafka: KafkaSettings, watcher: Watcher, people: list[tuple[str, str]]) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=0, acks="all")
    hop, end_to_end, probe, settled = [], [], [], []
    for index, (person, onset) in enumerate(people):
        case_id = f"LAT-{side}-{index}"
        record = {"type": "case", "case_id": case_id, "person_id": person, "status": "confirmed", "onset": onset,
                  "isolated_at": None, "reported_at": f"{onset}T23:00:00+08:00"}
        sent = time.time()
        for partition in range(kafka.events_partitions):
            producer.send(kafka.events_topic, orjson.dumps(record), key=case_id.encode(), partition=partition)
        producer.flush()
        seen = watcher.wait_for(kafka.status_topic, case_id, 20)
        created = watcher.created.get(case_id)
        if seen is not None and created is not None:
            hop.append(seen - created)
            end_to_end.append(seen - sent)
        sent = time.time()
        producer.send(PROBE_TOPIC, orjson.dumps({"probe": f"{side}-{index}"}))
        producer.flush()
        arrived = watcher.wait_for(PROBE_TOPIC, f"{side}-{index}", 20)
        if arrived is not None:
            probe.append(arrived - sent)
        time.sleep(3)  # secondary contacts come after the interest and ride-copy hops
        last = watcher.last[kafka.status_topic].get(case_id)
        if last is not None and created is not None:
            count, made = watcher.made[case_id]
            settled.append((last - created, made - created, count, last - made))
    producer.close()
    if hop and probe:
        print(f"{side:16} view hop (contacts record -> status record at a subscriber): median "
              f"{1000 * statistics.median(hop):.0f} ms, max {1000 * max(hop):.0f} ms (n={len(hop)}); end to end "
              f"(case published -> status record): median {1000 * statistics.median(end_to_end):.0f} ms, max "
              f"{1000 * max(end_to_end):.0f} ms; one-hop probe median {1000 * statistics.median(probe):.0f} ms")
        worst = max(settled)
        print(f"{side:16} every status of a case (first contacts record -> last status record): median "
              f"{1000 * statistics.median(s[0] for s in settled):.0f} ms, max {1000 * worst[0]:.0f} ms, a case of "
              f"{worst[2]:,} alert changes that the worker sent over {1000 * worst[1]:.0f} ms; after the worker's "
              f"last record: median {1000 * statistics.median(s[3] for s in settled):.0f} ms, max "
              f"{1000 * max(s[3] for s in settled):.0f} ms")
    else:
        print(f"{side:16} no status record named a case within 20 s (see {side}.log)")


class Watcher:
    """A subscriber of the contacts, status and probe topics in a thread: when each case's first
    contacts record was made (CreateTime), and when the first status record naming it arrived."""

    def __init__(self, kafka: KafkaSettings, status_topics: list[str]) -> None:
        self.created: dict[str, float] = {}  # case -> its first contacts record's CreateTime
        self.made: dict[str, list[Any]] = defaultdict(lambda: [0, 0.0])  # case -> [records, last CreateTime]
        self.arrived: dict[str, dict[str, float]] = defaultdict(dict)  # topic -> case or probe -> first arrival
        self.last: dict[str, dict[str, float]] = defaultdict(dict)  # topic -> case -> last arrival
        self.counts: dict[str, int] = defaultdict(int)
        self._kafka, self._topics = kafka, [kafka.contacts_topic, *status_topics, PROBE_TOPIC]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        consumer = KafkaConsumer(bootstrap_servers=self._kafka.bootstrap, fetch_max_wait_ms=10,  # Tansu: see docs
                                 enable_auto_commit=False, auto_offset_reset="earliest")
        consumer.assign([TopicPartition(topic, p) for topic in self._topics
                         for p in sorted(consumer.partitions_for_topic(topic) or ())])
        while not self._done.is_set():
            for tp, records in consumer.poll(timeout_ms=100).items():
                now = time.time()
                for record in records:
                    self._note(tp.topic, record, now)
        consumer.close()

    def _note(self, topic: str, record: Any, now: float) -> None:
        value = orjson.loads(record.value)
        self.counts[topic] += 1
        if topic == self._kafka.contacts_topic:
            self.created.setdefault(value["case_id"], record.timestamp / 1000)
            made = self.made[value["case_id"]]
            made[0], made[1] = made[0] + 1, max(made[1], record.timestamp / 1000)
        elif topic == PROBE_TOPIC:
            self.arrived[topic].setdefault(value["probe"], now)
        else:
            for reason in value["reasons"]:
                if reason["kind"] == "contact":
                    self.arrived[topic].setdefault(reason["case_id"], now)
                    self.last[topic][reason["case_id"]] = now

    def wait_for(self, topic: str, key: str, seconds: float) -> float | None:
        deadline = time.time() + seconds
        while key not in self.arrived[topic] and time.time() < deadline:
            time.sleep(0.005)
        return self.arrived[topic].get(key)

    def wait_quiet(self, topic: str, quiet: float, seconds: float, before: int, process: subprocess.Popen) -> bool:
        """Until ``topic`` has more than ``before`` records and none came for ``quiet`` seconds; False
        if ``process`` (the view side) stops first."""
        deadline, last, count = time.monotonic() + seconds, time.monotonic(), -1
        while time.monotonic() < deadline and process.poll() is None:
            if self.counts[topic] != count:
                count, last = self.counts[topic], time.monotonic()
            elif count > before and time.monotonic() - last >= quiet:
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self._done.set()
        self._thread.join(10)


if __name__ == "__main__":
    main()
