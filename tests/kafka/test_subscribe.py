"""``tracer subscribe``: a street office reads its own queue only; epidemiologists read contacts."""

from __future__ import annotations

import io
import subprocess
import threading
import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from connectors.kafka.settings import KafkaSettings
from connectors.kafka.subscribe import subscribe
from tests.kafka.conftest import ROOT, tracer_command

pytestmark = pytest.mark.broker
HOME, OTHER = "310101002", "310101013"


def _alert(number: int, subdistrict: str | None) -> bytes:
    return orjson.dumps({"v": 1, "alert_id": f"a{number:015d}", "action": "add", "level": "close",
                         "contact_person_id": f"P{number}", "subdistrict": subdistrict})


def _produce(kafka: KafkaSettings, records: dict[str, list[bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    try:
        for topic, values in records.items():
            for value in values:
                producer.send(topic, value=value, key=orjson.loads(value)["contact_person_id"].encode())
        producer.flush()
    finally:
        producer.close()


@pytest.fixture
def queues(kafka: KafkaSettings) -> dict[str, list[bytes]]:
    records = {kafka.queue_topic(HOME): [_alert(n, HOME) for n in range(5)],
               kafka.queue_topic(OTHER): [_alert(n, OTHER) for n in range(5, 9)],
               kafka.queue_topic("unassigned"): [_alert(9, None)],
               kafka.contacts_topic: [_alert(n, None) for n in range(12)]}
    _produce(kafka, records)
    return records


def test_subdistrict_reads_only_its_own_queue(kafka: KafkaSettings, config_file: Path, queues) -> None:
    done = subprocess.run(tracer_command("subscribe", "--config", str(config_file), "--subdistrict", HOME,
                                         "--from-beginning", "--idle-exit", "1"),
                          cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert sorted(done.stdout.splitlines()) == sorted(queues[kafka.queue_topic(HOME)])


def test_contacts_reads_the_contacts_stream(kafka: KafkaSettings, queues) -> None:
    out = io.BytesIO()
    count = subscribe(kafka, kafka.contacts_topic, out, from_beginning=True, idle_exit=1)
    assert count == 12
    assert sorted(out.getvalue().splitlines()) == sorted(queues[kafka.contacts_topic])


def test_unassigned_is_a_queue_too(kafka: KafkaSettings, queues) -> None:
    out = io.BytesIO()
    subscribe(kafka, kafka.queue_topic("unassigned"), out, from_beginning=True, idle_exit=1)
    assert out.getvalue().splitlines() == queues[kafka.queue_topic("unassigned")]


def test_without_from_beginning_only_new_alerts_are_printed(kafka: KafkaSettings, queues) -> None:
    out = io.BytesIO()
    reader = threading.Thread(target=subscribe, args=(kafka, kafka.queue_topic(HOME), out),
                              kwargs={"idle_exit": 4})
    reader.start()
    time.sleep(2)  # the subscriber is at the end
    fresh = [_alert(n, HOME) for n in range(100, 103)]
    _produce(kafka, {kafka.queue_topic(HOME): fresh})
    reader.join(30)
    assert not reader.is_alive()
    assert sorted(out.getvalue().splitlines()) == fresh


def test_a_queue_not_created_yet_is_waited_for_until_idle(kafka: KafkaSettings) -> None:
    started = time.monotonic()
    assert subscribe(kafka, kafka.queue_topic("310999999"), io.BytesIO(), idle_exit=1) == 0
    assert time.monotonic() - started < 10


def test_a_group_resumes_where_it_stopped(kafka: KafkaSettings, queues) -> None:
    # idle_exit counts from the first fetch after joining: 5 s, so that a loaded machine is not idle
    first = io.BytesIO()
    subscribe(kafka, kafka.queue_topic(HOME), first, from_beginning=True, idle_exit=5, group=kafka.group_id)
    _produce(kafka, {kafka.queue_topic(HOME): [_alert(200, HOME)]})
    second = io.BytesIO()
    subscribe(kafka, kafka.queue_topic(HOME), second, from_beginning=True, idle_exit=5, group=kafka.group_id)
    assert len(first.getvalue().splitlines()) == 5
    assert second.getvalue().splitlines() == [_alert(200, HOME)]


@pytest.mark.parametrize("code", ["31010100", "abc", "3101010020"])
def test_a_malformed_subdistrict_is_refused(code: str) -> None:
    done = subprocess.run(tracer_command("subscribe", "--broker", "kafka://127.0.0.1:9", "--subdistrict", code),
                          cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"--subdistrict must be" in done.stderr
