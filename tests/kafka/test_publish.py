"""``tracer publish`` and ``tracer replay`` on the broker: keys, partitions, dead letters, replay = run."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka.publish import publish
from connectors.kafka.replay import download_events
from connectors.kafka.routing import SEQ_HEADER, partition_of
from connectors.kafka.settings import KafkaSettings
from streams.embedded import run_embedded
from tests.builders import at, case, person, trip
from tests.kafka.conftest import ROOT, tracer_command
from tests.kafka.synth import city_events
from tracer.settings import load_settings

pytestmark = pytest.mark.broker
SETTINGS = load_settings()


def read_topic(kafka: KafkaSettings, topic: str) -> dict[int, list]:
    """Every record of ``topic`` by partition (reads until each partition's high watermark)."""
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        found: dict[int, list] = {tp.partition: [] for tp in tps}
        while any(consumer.highwater(tp) is None or consumer.position(tp) < consumer.highwater(tp) for tp in tps):
            for tp, records in consumer.poll(timeout_ms=300).items():
                found[tp.partition] += records
        return found
    finally:
        consumer.close()


def _events(tmp_path: Path) -> Path:
    quarantine = {"type": "quarantine", "person_id": "P2", "at": at("20:00")}
    exposure = {"type": "exposure", "exposure_id": "E1", "mode": "train", "service": "G7", "date": "2020-01-20"}
    events = [person("P1", "310101002"), person("P2", "310101013"),
              trip("P1", seat="30A", trip_id="t1"), trip("P2", seat="31A", trip_id="t2"),
              trip("P3", mode="metro", service="L1-001", trip_id="t3"),
              trip("P4", mode="train", service="G7", trip_id="t4", carriage="3"),
              case("C1", "P1"), quarantine, exposure]
    lines = [orjson.dumps(e) for e in events]
    lines.insert(3, b'{"type": "trip", "person_id": "P9"}')
    lines.insert(6, b"not json at all")
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_publish_keys_trips_by_service_day_sends_persons_once_to_the_registry_and_the_rest_everywhere(
        kafka: KafkaSettings, tmp_path: Path) -> None:
    summary = publish([str(_events(tmp_path))], SETTINGS, kafka)
    assert summary.dead_letters == 2
    by_line: dict[bytes, list[tuple[str, int, bytes, bytes]]] = defaultdict(list)
    for topic in (kafka.events_topic, kafka.registry_topic):
        for partition, found in read_topic(kafka, topic).items():
            for record in found:
                by_line[record.value].append((topic, partition, record.key, dict(record.headers)[SEQ_HEADER]))
    assert summary.records == sum(len(copies) for copies in by_line.values())
    everywhere = {(kafka.events_topic, p) for p in range(kafka.events_partitions)}
    for line, copies in by_line.items():
        event = orjson.loads(line)
        placed = {(topic, p) for topic, p, _, _ in copies}
        assert len({seq for _, _, _, seq in copies}) == 1  # one line, one sequence number
        if event["type"] == "trip":
            key = "\x1f".join((event["date"], event["mode"], event["service"])).encode()
            assert [c[2] for c in copies] == [key]
            assert placed == {(kafka.events_topic, partition_of(key, kafka.events_partitions))}
        elif event["type"] == "person":  # once, in the registry, keyed by person id
            key = event["person_id"].encode()
            assert [c[2] for c in copies] == [key]
            assert placed == {(kafka.registry_topic, partition_of(key, kafka.registry_partitions))}
        else:
            assert placed == everywhere
            key = event.get("case_id") or event.get("exposure_id") or event["person_id"]
            assert {c[2] for c in copies} == {key.encode()}
    assert len(by_line) == 9
    # the train exposure reaches every partition, so also the one of its riders on G7
    train = {p for line, copies in by_line.items() for _, p, _, _ in copies if b'"G7"' in line and b'"trip"' in line}
    exposure = {p for line, copies in by_line.items() for _, p, _, _ in copies if b'"exposure"' in line}
    assert len(train) == 1 and train < exposure
    letters = [orjson.loads(r.value) for found in read_topic(kafka, kafka.dead_letter_topic).values() for r in found]
    assert sorted(letter["line"] for letter in letters) == [4, 7]
    assert all(letter["source"].endswith("events.jsonl") and letter["reason"] for letter in letters)
    assert "missing field" in next(x for x in letters if x["line"] == 4)["reason"]


def test_publish_says_a_csv_is_not_json_lines_and_names_its_importer(kafka: KafkaSettings, tmp_path: Path) -> None:
    source = tmp_path / "manifest.csv"
    source.write_text("flight_no,date,id_number,seat\nMU5101,2020-01-20,310101199001011234,12A\n")
    assert publish([str(source)], SETTINGS, kafka).dead_letters == 2
    letters = [orjson.loads(r.value) for found in read_topic(kafka, kafka.dead_letter_topic).values() for r in found]
    assert sorted(letter["line"] for letter in letters) == [1, 2]
    assert all("`tracer import manifest FILE --out events.jsonl`" in letter["reason"] for letter in letters)


def test_replay_equals_run_on_the_same_events(kafka: KafkaSettings, config_file: Path, tmp_path: Path) -> None:
    events = city_events(tmp_path / "city", persons=1200, days=2, cases=5, seed=3)
    publish([str(events)], SETTINGS, kafka)
    run_embedded([str(events)], tmp_path / "run", SETTINGS)
    replay = subprocess.run(tracer_command("replay", "--config", str(config_file), "--out", str(tmp_path / "replay"),
                                           "--quiet"), cwd=ROOT, capture_output=True, timeout=120)
    assert replay.returncode == 0, replay.stderr.decode()[-2000:]
    for name in ["contacts.jsonl", *(f"alerts/{p.name}" for p in (tmp_path / "run" / "alerts").glob("*.jsonl"))]:
        assert (tmp_path / "replay" / name).read_bytes() == (tmp_path / "run" / name).read_bytes(), name
    assert (tmp_path / "replay" / "contacts.jsonl").stat().st_size > 0


def test_replay_reads_back_the_published_lines_in_order(kafka: KafkaSettings, tmp_path: Path) -> None:
    source = _events(tmp_path)
    publish([str(source)], SETTINGS, kafka)
    copy = tmp_path / "copy.jsonl"
    count = download_events(kafka, copy)
    good = [line for line in source.read_bytes().splitlines() if line.startswith(b"{") and b'"P9"' not in line]
    assert count == len(good)
    assert copy.read_bytes().splitlines() == good


def test_publish_reports_an_unreachable_broker(tmp_path: Path) -> None:
    source = _events(tmp_path)
    config = tmp_path / "impatient.toml"
    config.write_text("[kafka]\nrequest_timeout_ms = 2000\n")
    done = subprocess.run(tracer_command("publish", "--broker", "kafka://127.0.0.1:1", "--config", str(config),
                                         str(source)), cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 2
    assert b"tracer: error:" in done.stderr
