"""How fast an alert reaches an open office page in Kafka mode (numbers for docs/console.md); not a test.

    python -m benchmarks.kafka_console [--probes 12 --fetch-max-wait-ms 500]

The small city of tests/console.py, published to a scratch Tansu broker and traced by one ``tracer
worker``; ``tracer views`` and ``tracer serve --broker`` run as processes beside it, and office A's
page listens to its event stream. Then, one at a time, a new close contact of office A is
published (a person and a ride beside the case), and the page's first event after which its rows
hold that contact is timed:

* from the worker's queue record of the alert (its CreateTime, set when the worker sends it): the
  console's own share, with the view process's, the number issue 15 sets at 1 s;
* from ``tracer publish``'s acknowledgement (the worker's hop besides).

Also counted: probes whose first event was another change of the same list (an earlier contact's
new secondary alert, say), the contact's own coming next. Tansu answers a fetch only after about
``fetch_max_wait_ms`` (docs/kafka.md, quirks), so the wait is a flag.
"""

from __future__ import annotations

import argparse
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import orjson
from kafka import KafkaConsumer, TopicPartition

from benchmarks.common import percentile_row, save, table
from connectors.kafka.publish import publish
from connectors.kafka.settings import KafkaSettings
from tests.builders import lines, person, trip
from tests.console import CONFIG, FLIGHT_A, TIMEOUT, A, login, make_world, process, wait_for
from tests.kafka.cluster import WorkerProcess, wait_caught_up, wait_views_caught_up
from tests.kafka.conftest import TEST_TIMINGS, fresh_settings
from tests.kafka.harness import write_config
from tests.kafka.tansu import scratch_broker
from tracer.settings import Settings, load_settings

SEATS = [f"{row}{letter}" for row in (19, 21) for letter in "ABDEF"] + ["20A", "20B", "20D"]  # close to 20C


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=12, help=f"new close contacts, at most {len(SEATS)}")
    parser.add_argument("--fetch-max-wait-ms", type=int, default=TEST_TIMINGS["fetch_max_wait_ms"])
    args = parser.parse_args()
    if not 1 <= args.probes <= len(SEATS):
        parser.error(f"--probes takes 1 to {len(SEATS)}")
    with scratch_broker("tracer-kafka-console-") as (folder, url):
        kafka = replace(fresh_settings(url), fetch_max_wait_ms=args.fetch_max_wait_ms)
        world = make_world(folder, traced=False)
        world.config.write_text(write_config(kafka, folder / "kafka.toml").read_text() + CONFIG)
        settings = load_settings(world.config)
        worker = WorkerProcess("worker", world.config, folder / "worker", folder).start()
        views = WorkerProcess("views", world.config, folder / "views", folder, "views").start()
        try:
            publish([str(world.feed)], settings, kafka)
            wait_caught_up(kafka, [worker])
            wait_views_caught_up(kafka, views)
            serve = ["serve", "--broker", kafka.broker, "--state", str(views.state), "--users", str(world.users),
                     "--config", str(world.config), "--port", "0"]
            with process(serve, folder / "serve.err") as console:
                log = folder / "serve.err"
                wait_for(lambda: "Uvicorn running on" in log.read_text() or console.poll() is not None, "the console")
                found = re.search(r"Uvicorn running on (http://\S+)", log.read_text())
                assert found is not None, log.read_text()
                shown, acked, others = _probe(found.group(1), folder, settings, kafka, args.probes)
            created = _created(kafka, args.probes)
        finally:
            views.stop()
            worker.stop()
    from_queue = [1000 * (shown[pid] - created[pid]) for pid in shown]
    from_publish = [1000 * (shown[pid] - acked[pid]) for pid in shown]
    print(f"fetch_max_wait_ms={args.fetch_max_wait_ms}, {args.probes} probes; an event for another change "
          f"came first in {others}")
    print(table([["queue record -> page event", *percentile_row(from_queue)],
                 ["publish acknowledged -> page event", *percentile_row(from_publish)]], ["ms", "p50", "p99", "max"]))
    path = save("kafka_console", {"fetch_max_wait_ms": args.fetch_max_wait_ms, "probes": args.probes,
                                  "another_change_first": others, "from_queue_ms": from_queue,
                                  "from_publish_ms": from_publish})
    print(f"saved {path}")


def _probe(url: str, folder: Path, settings: Settings, kafka: KafkaSettings,
           probes: int) -> tuple[dict[str, float], dict[str, float], int]:
    """Publish the probes one at a time: when the page showed each (wall clock, to compare with the
    records' CreateTime), when its publish was acknowledged, and how many times another change came first."""
    events: list[float] = []
    listening = threading.Event()

    def listen() -> None:
        with httpx.Client(base_url=url, timeout=TIMEOUT) as page:
            login(page, "office-a")
            with page.stream("GET", f"/office/{A}/events") as answer:
                for line in answer.iter_lines():
                    if line == ": listening":
                        listening.set()
                    elif line == "event: changed":
                        events.append(time.time())

    threading.Thread(target=listen, daemon=True).start()
    assert listening.wait(TIMEOUT), "the page did not listen"
    shown, acked, others = {}, {}, 0
    with httpx.Client(base_url=url, timeout=TIMEOUT) as office:
        login(office, "office-a")
        for number in range(probes):
            pid = f"PROBE{number}"
            path = folder / f"{pid}.jsonl"
            path.write_bytes(lines([person(pid, A), trip(pid, seat=SEATS[number], trip_id=f"t-{pid}", **FLIGHT_A)]))
            heard = len(events)
            publish([str(path)], settings, kafka)
            acked[pid] = time.time()
            while pid not in shown:
                wait_for(lambda seen=heard: len(events) > seen, "an event")
                heard = len(events)
                if pid in {row["person_id"] for row in office.get(f"/office/{A}/rows").json()["rows"]}:
                    shown[pid] = events[heard - 1]
                else:
                    others += 1
            time.sleep(1.0)  # the probe's later changes (secondary alerts, statuses) settle
    return shown, acked, others


def _created(kafka: KafkaSettings, probes: int) -> dict[str, float]:
    """The CreateTime of each probe's first record in office A's queue topic (seconds)."""
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(kafka.queue_topic(A), 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        found: dict[str, float] = {}
        deadline = time.monotonic() + TIMEOUT
        while len(found) < probes and time.monotonic() < deadline:
            for records in consumer.poll(500).values():
                for record in records:
                    pid = orjson.loads(record.value)["contact_person_id"]
                    if pid.startswith("PROBE"):
                        found.setdefault(pid, record.timestamp / 1000)
        return found
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
