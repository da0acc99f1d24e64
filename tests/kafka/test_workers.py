"""End to end on the broker: a simulated city published into Kafka, two worker processes, one killed
mid-stream and restarted later on its stale state; the folded contacts stream and street-office
queues equal the embedded runner's and the oracle's."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from connectors.kafka.publish import publish
from connectors.kafka.settings import KafkaSettings
from tests.kafka.cluster import WorkerProcess, read_outputs, wait_caught_up
from tests.kafka.conftest import ROOT, tracer_command
from tests.kafka.harness import embedded_reference, queues_of, read_jsonl
from tests.kafka.synth import city_events
from tracer.alerts import fold
from tracer.settings import load_settings

pytestmark = pytest.mark.broker
SETTINGS = load_settings()


def _chunks(events: Path, folder: Path, parts: int) -> list[Path]:
    lines = events.read_bytes().splitlines(keepends=True)
    size = -(-len(lines) // parts)
    paths = []
    for index in range(parts):
        path = folder / f"part{index}.jsonl"
        path.write_bytes(b"".join(lines[index * size:(index + 1) * size]))
        paths.append(path)
    return paths


def _wait_for(condition: Callable[[], bool], seconds: float, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{worker.name} did not get there:\n{worker.text()[-3000:]}"
        assert worker.process is not None and worker.process.poll() is None, worker.text()[-3000:]
        time.sleep(0.2)


def _subscribe(config: Path, *which: str) -> list[dict]:
    done = subprocess.run(tracer_command("subscribe", "--config", str(config), *which, "--from-beginning",
                                         "--idle-exit", "1"), cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def test_two_workers_one_killed_equal_the_embedded_run(kafka: KafkaSettings, config_file: Path,
                                                       tmp_path: Path) -> None:
    events = city_events(tmp_path / "city", persons=3000, days=3, cases=10, seed=5)
    reference = embedded_reference(events, tmp_path / "run", SETTINGS)
    truth = {a["alert_id"]: a for a in read_jsonl(events.parent / "truth.jsonl")}
    assert reference.contacts == truth  # the embedded runner agrees with the oracle on this city
    assert {a["level"] for a in truth.values()} == {"close", "general", "secondary"}
    parts = _chunks(events, tmp_path, 4)

    first = WorkerProcess("w1", config_file, tmp_path / "state1", tmp_path).start()
    second = WorkerProcess("w2", config_file, tmp_path / "state2", tmp_path).start()
    try:
        publish([str(parts[0])], SETTINGS, kafka)  # persons only: the registry topic
        for worker in (first, second):
            _wait_for(lambda worker=worker: "partitions assigned" in worker.text(), 60, worker)
        wait_caught_up(kafka, [first, second])
        publish([str(parts[1])], SETTINGS, kafka)
        time.sleep(0.3)
        second.kill()  # mid-stream: its partitions are rebuilt from the topic by the other worker
        publish([str(parts[2])], SETTINGS, kafka)
        wait_caught_up(kafka, [first], timeout=120)
        assert "rebuilding" in first.text()
        restarted = WorkerProcess("w2-again", config_file, tmp_path / "state2", tmp_path).start()
        _wait_for(lambda: "partitions assigned" in restarted.text(), 60, restarted)
        publish([str(parts[3])], SETTINGS, kafka)  # the group is two again: both share the rest
        wait_caught_up(kafka, [first, restarted], timeout=120)
        assert "silently from the topic" in restarted.text()  # what it missed, or never had
        time.sleep(1)
        assert first.stop() == 0 and restarted.stop() == 0
    finally:
        first.stop()
        second.stop()

    outputs = read_outputs(kafka)
    assert fold(outputs[kafka.contacts_topic]) == reference.contacts
    assert queues_of(outputs, kafka.queue_topic_prefix) == reference.queues
    # as the users see it: the subscribe command on the contacts stream and on a few queues
    assert fold(_subscribe(config_file, "--contacts")) == reference.contacts
    busiest = sorted(reference.queues, key=lambda code: -len(reference.queues[code]))[:3]
    for code in busiest:
        records = _subscribe(config_file, "--subdistrict", code)
        assert {r["subdistrict"] or "unassigned" for r in records} == {code}
        assert fold(records) == reference.queues[code]


def test_bad_records_from_other_producers_become_dead_letters_and_the_worker_goes_on(
        kafka: KafkaSettings, config_file: Path, tmp_path: Path) -> None:
    """Records that skipped ``tracer publish`` (another producer) are validated by the worker too."""
    from kafka import KafkaProducer

    from tests.builders import case, person, trip
    from tests.kafka.test_publish import read_topic

    publish([str(_write(tmp_path / "registry.jsonl", [person("P1", "310101002"), person("P2", "310101013")]))],
            SETTINGS, kafka)
    worker = WorkerProcess("w", config_file, tmp_path / "state", tmp_path).start()
    try:
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
        for value in (b"{broken", b'{"type": "trip", "person_id": "P1"}', b'{"type": "interest"}'):
            producer.send(kafka.events_topic, value=value, partition=0)
        producer.flush()
        producer.close()
        good = [trip("P1", seat="30A", trip_id="t1"), trip("P2", seat="31A", trip_id="t2"), case("C1", "P1")]
        publish([str(_write(tmp_path / "good.jsonl", good))], SETTINGS, kafka)
        wait_caught_up(kafka, [worker])
        assert worker.stop() == 0
    finally:
        worker.stop()
    letters = [orjson.loads(r.value) for found in read_topic(kafka, kafka.dead_letter_topic).values() for r in found]
    source = f"{kafka.events_topic}/0"
    assert [(x["source"], x["raw"]) for x in letters] == [
        (source, "{broken"), (source, '{"type": "trip", "person_id": "P1"}'), (source, '{"type": "interest"}')]
    assert letters[0]["reason"].startswith("broken JSON") and letters[0]["line"] == letters[0]["offset"] + 1
    alerts = fold(read_outputs(kafka)[kafka.contacts_topic])
    assert [(a["contact_person_id"], a["level"]) for a in alerts.values()] == [("P2", "close")]


def _write(path: Path, events: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def test_a_worker_reads_the_registry_whole_and_a_person_who_moves_moves_their_alerts(
        kafka: KafkaSettings, config_file: Path, tmp_path: Path) -> None:
    from tests.builders import case, person, trip

    home, new_home = "310101002", "310101013"
    registry = [person(f"Q{n}", home) for n in range(500)] + [person("P1", "310104003"), person("P2", home)]
    flight = [trip("P1", seat="30A", trip_id="t1"), trip("P2", seat="31A", trip_id="t2"), case("C1", "P1")]
    publish([str(_write(tmp_path / "before.jsonl", registry + flight))], SETTINGS, kafka)
    worker = WorkerProcess("w", config_file, tmp_path / "state", tmp_path).start()
    try:
        wait_caught_up(kafka, [worker])
        assert "registry read: 502 records" in worker.text()  # whole, before serving
        assert queues_of(read_outputs(kafka), kafka.queue_topic_prefix).keys() == {home}
        publish([str(_write(tmp_path / "move.jsonl", [person("P2", new_home)]))], SETTINGS, kafka)
        _wait_for(lambda: [a["subdistrict"] for a in fold(read_outputs(kafka)[kafka.contacts_topic]).values()]
                  == [new_home], 60, worker)
        assert worker.stop() == 0
    finally:
        worker.stop()
    outputs = read_outputs(kafka)
    assert queues_of(outputs, kafka.queue_topic_prefix).keys() == {new_home}  # retracted from the old one
    assert [r["action"] for r in outputs[kafka.queue_topic(home)]] == ["add", "retract"]


def test_a_worker_killed_mid_registry_resumes_from_its_stored_position(
        kafka: KafkaSettings, config_file: Path, tmp_path: Path) -> None:
    from graph.keys import KAFKA_POSITION, META, group
    from graph.store import RocksStore, StoreError

    total = 300_000
    lines = b"".join(b'{"type":"person","person_id":"P%07d","subdistrict":"310101002"}\n' % n for n in range(total))
    (tmp_path / "registry.jsonl").write_bytes(lines)
    publish([str(tmp_path / "registry.jsonl")], SETTINGS, kafka)
    store = tmp_path / "state" / kafka.registry_topic

    def position() -> int:
        try:
            view = RocksStore(store, read_only=True)
        except StoreError:
            return 0  # not created yet
        try:
            meta = view.get(group(META), KAFKA_POSITION)
            return sum(orjson.loads(meta)["next"].values()) if meta else 0
        finally:
            view.close()

    worker = WorkerProcess("w", config_file, tmp_path / "state", tmp_path).start()
    _wait_for(lambda: position() > 0, 60, worker)
    worker.kill()
    committed = position()
    assert 0 < committed < total
    again = WorkerProcess("w-again", config_file, tmp_path / "state", tmp_path).start()
    try:
        _wait_for(lambda: "registry read" in again.text(), 60, again)
        assert f"registry read: {total - committed:,} records" in again.text()
        assert again.stop() == 0
    finally:
        again.stop()

