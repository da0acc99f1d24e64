"""The Faust alternative, measured (numbers for docs/kafka.md); not a test.

    python -m benchmarks.kafka_faust [--persons 20000 --days 5 --cases 40 --partitions 4]

A Faust agent over the same events topic, taking batches (``stream.take_events``) and applying them
with the same ``PartitionTask`` the aiokafka worker uses, but delivering nothing (so it is the upper
bound of a Faust worker); its registry store stays empty (the agent reads the events topic only).
Also a bare agent that only decodes, and aiokafka's ``getmany`` alone.
Each runs in its own process on the same topic, one core each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from connectors.kafka.publish import publish
from connectors.kafka.settings import KafkaSettings
from tests.kafka.conftest import ROOT, TEST_TIMINGS
from tests.kafka.tansu import city_arguments, scratch_broker
from tracer.settings import load_settings

SETTINGS = load_settings()


def main() -> None:
    parser = argparse.ArgumentParser()
    city_arguments(parser)
    args = parser.parse_args()
    with scratch_broker("tracer-faust-") as (folder, url):
        from tracer.simulate import generate

        generate(args.persons, args.days, args.cases, 1, folder / "city", truth=False, followups=False)
        kafka = replace(KafkaSettings(), broker=url, **{**TEST_TIMINGS, "events_partitions": args.partitions})
        summary = publish([str(folder / "city" / "events.jsonl")], SETTINGS, kafka)
        for mode in ("aiokafka", "faust-decode", "faust-engine"):
            done = subprocess.run([sys.executable, "-m", "benchmarks.kafka_faust", "--child", mode, url,
                                   str(summary.records - summary.events["person"]), str(args.partitions),
                                   str(folder / mode)],
                                  cwd=ROOT, capture_output=True, timeout=900)
            output = (done.stdout + done.stderr).decode()  # Faust logs what its agents print
            found = [x.split("RESULT ", 1)[1].strip() for x in output.splitlines() if "RESULT " in x]
            print(found[-1] if found else f"{mode}: failed\n{output[-2000:]}")


def child(mode: str, url: str, total: int, partitions: int, state: Path) -> None:
    kafka = replace(KafkaSettings(), broker=url, **{**TEST_TIMINGS, "events_partitions": partitions})
    if mode == "aiokafka":
        asyncio.run(_aiokafka(kafka, total))
    else:
        _faust(kafka, mode, total, state)


async def _aiokafka(kafka: KafkaSettings, total: int) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(kafka.events_topic, bootstrap_servers=kafka.bootstrap, group_id="bench-aiokafka",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                session_timeout_ms=6000, heartbeat_interval_ms=2000,
                                max_partition_fetch_bytes=4 << 20, fetch_max_bytes=32 << 20)
    await consumer.start()
    count, started = 0, None
    while count < total:
        batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
        started = started or (time.perf_counter() if batch else None)
        count += sum(len(records) for records in batch.values())
    print(f"RESULT aiokafka getmany alone: {count / (time.perf_counter() - started):,.0f} records/s", flush=True)
    await consumer.stop()


def _faust(kafka: KafkaSettings, mode: str, total: int, state: Path) -> None:
    import faust
    import orjson

    from streams.kafka.partition import PartitionTask
    from streams.kafka.registry import RegistryTable

    app = faust.App(f"bench-{mode}", broker=kafka.broker, store="memory://", web_enabled=False,
                    web_bind="127.0.0.1", broker_session_timeout=6.0, broker_heartbeat_interval=2.0,
                    consumer_auto_offset_reset="earliest", topic_partitions=kafka.events_partitions,
                    broker_max_poll_records=5000, stream_buffer_maxsize=20000, datadir=str(state))
    topic = app.topic(kafka.events_topic, value_type=bytes, value_serializer="raw", key_serializer="raw")
    tasks: dict[int, PartitionTask] = {}
    registry = RegistryTable(state, kafka.registry_partitions, SETTINGS, kafka)  # left empty: no homes to read
    progress = {"count": 0, "started": 0.0}

    @app.agent(topic)
    async def apply(stream: faust.Stream) -> None:
        async for events in stream.take_events(2000, within=0.5):
            progress["started"] = progress["started"] or time.perf_counter()
            if mode == "faust-decode":
                for event in events:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        orjson.loads(event.value)
            else:
                by_partition: dict[int, list] = {}
                for event in events:
                    by_partition.setdefault(event.message.partition, []).append(event.message)
                for number, records in by_partition.items():
                    if number not in tasks:
                        tasks[number] = PartitionTask(state, kafka.events_topic, number, kafka.events_partitions,
                                                      SETTINGS, kafka, registry.store)
                    tasks[number].process(records)
                    tasks[number].commit()
            progress["count"] += len(events)
            if progress["count"] >= total:
                rate = progress["count"] / (time.perf_counter() - progress["started"])
                what = "decode only" if mode == "faust-decode" else "PartitionTask.process, no delivery"
                print(f"RESULT Faust take_events, {what}: {rate:,.0f} records/s", flush=True)
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), Path(sys.argv[6]))
    else:
        main()
