"""The [kafka] settings: defaults, the documented block, strict loading, and the shared config file."""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict
from pathlib import Path

import pytest

from connectors.kafka.settings import KafkaSettings, bootstrap_servers, load_all, load_kafka_settings
from tracer.errors import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "kafka.md"


def test_the_documented_section_is_the_defaults() -> None:
    block = re.search(r"```toml\n(\[kafka\].*?)```", DOCS.read_text("utf-8"), re.S)
    assert block is not None
    assert tomllib.loads(block.group(1))["kafka"] == asdict(KafkaSettings())


def test_a_user_file_overrides_and_broker_wins(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[kafka]\nevents_partitions = 3\nstats_every_seconds = 2\nbroker = "kafka://a:1"\n')
    settings = load_kafka_settings(path, broker="kafka://b:2,c:3")
    assert (settings.events_partitions, settings.stats_every_seconds) == (3, 2.0)
    assert settings.bootstrap == "b:2,c:3"


@pytest.mark.parametrize(("text", "message"), [
    ("[kafka]\nno_such_key = 1\n", "unknown key kafka.no_such_key"),
    ("[kafka]\nevents_partitions = \"4\"\n", "must be int"),
    ("[kafka]\nevents_partitions = 0\n", "kafka.events_partitions must be between 1 and 10000, got 0"),
    ("[kafka]\ndeclare_queues = 1\n", "must be bool"),
    ("[kafka]\nevents_topic = \"a b\"\n", "not a valid topic name"),
    ("[kafka]\nmin_insync_replicas = 2\n", "must not exceed"),
    ("[kafka]\nheartbeat_interval_ms = 3000\nsession_timeout_ms = 6000\n", "a third"),
])
def test_bad_values_are_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_kafka_settings(path)


@pytest.mark.parametrize("url", ["kafka://", "http://h:1", "kafka://h", "h:1:2", "kafka://h:1,"])
def test_malformed_broker_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="broker must look like"):
        bootstrap_servers(url)


def test_one_config_file_serves_rules_and_kafka(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[rules]\nflight_row_span = 2\n\n[kafka]\ngroup_id = \"g\"\n\n[runtime]\ncommit_every = 7\n")
    settings, kafka = load_all(path)
    assert (settings.rules.flight_row_span, settings.runtime.commit_every, kafka.group_id) == (2, 7, "g")
    path.write_text("[rules]\nflight_row_span = \"x\"\n[kafka]\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: rules.flight_row_span must be int")):
        load_all(path)
