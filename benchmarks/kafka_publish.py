"""``tracer publish`` on a generated city, against a local Tansu broker (numbers for docs/kafka.md);
not a test.

    python -m benchmarks.kafka_publish [--persons 200000 --days 2 --cases 20 --partitions 12 --repeat 2]

Each run publishes the whole file into fresh topics (the registry topic with its default partition
count, the events topic with ``--partitions``) and prints lines/s and records/s; the fan-out of
cases, exposures and quarantines to every events partition makes records a little more than lines.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from connectors.kafka.publish import publish
from connectors.kafka.settings import KafkaSettings
from tests.kafka.conftest import TEST_TIMINGS
from tests.kafka.tansu import scratch_broker
from tracer.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with scratch_broker("tracer-publish-") as (folder, url):
        from tracer.simulate import generate

        generate(args.persons, args.days, args.cases, 1, folder / "city", truth=False, followups=False)
        events = str(folder / "city" / "events.jsonl")
        for run in range(args.repeat):
            kafka = replace(KafkaSettings(), broker=url, **{**TEST_TIMINGS, "events_partitions": args.partitions},
                            events_topic=f"events{run}", registry_topic=f"registry{run}",
                            dead_letter_topic=f"dead-letter{run}")
            done = publish([events], load_settings(), kafka)
            print(f"publish {run + 1}: {done.lines:,} lines -> {done.records:,} records in {done.seconds:.1f} s: "
                  f"{done.lines / done.seconds:,.0f} lines/s, {done.records / done.seconds:,.0f} records/s")


if __name__ == "__main__":
    main()
