"""Issue 12 item 9: every setting is checked against its declared type and range, with a one-line
error, in the rules/runtime loader and in the Kafka loader alike (one mechanism)."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from connectors.kafka.settings import RANGES as KAFKA_RANGES
from connectors.kafka.settings import KafkaSettings, bootstrap_servers, load_kafka_settings
from tests.builders import case, lines, person, trip
from tracer.errors import ConfigError
from tracer.settings import (
    RANGES,
    FollowupHours,
    Range,
    RuleSettings,
    RuntimeSettings,
    StatusSettings,
    field_types,
    load_settings,
)

SECTIONS = {"rules": RuleSettings, "runtime": RuntimeSettings, "kafka": KafkaSettings, "status": StatusSettings,
            "status.followup_hours": FollowupHours}
TABLES = {"rules": RANGES, "runtime": RANGES, "kafka": KAFKA_RANGES, "status": RANGES,
          "status.followup_hours": RANGES}
ALL_RANGES = {**RANGES, **KAFKA_RANGES}


def _load(tmp_path: Path, section: str, text: str):
    path = tmp_path / "c.toml"
    path.write_text(f"[{section}]\n{text}\n")
    return path, (load_kafka_settings(path) if section == "kafka" else load_settings(path))


def _refused(tmp_path: Path, section: str, text: str) -> str:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, section, text)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_every_number_of_every_section_has_a_range_and_every_range_a_field() -> None:
    numbers = {f"{name}.{key}" for name, section in SECTIONS.items()
               for key, kind in field_types(section).items() if kind in (int, float)}
    assert numbers == set(ALL_RANGES)


@pytest.mark.parametrize("section", SECTIONS)
def test_every_default_is_in_its_range_and_of_its_type(section: str) -> None:
    defaults = SECTIONS[section]()
    for f in fields(defaults):
        value = getattr(defaults, f.name)
        assert type(value) is field_types(SECTIONS[section])[f.name] or section == "status", f.name
        if isinstance(value, int | float) and not isinstance(value, bool):
            assert value in TABLES[section][f"{section}.{f.name}"], f.name


@pytest.mark.parametrize("key", ["max_ride_hours", "min_overlap_seconds", "contact_isolation_hours"])
def test_float_rules_take_fractions_and_whole_numbers(tmp_path: Path, key: str) -> None:
    _, settings = _load(tmp_path, "rules", f"{key} = 1.5")
    assert getattr(settings.rules, key) == 1.5
    _, settings = _load(tmp_path, "rules", f"{key} = 2")
    assert getattr(settings.rules, key) == 2.0 and type(getattr(settings.rules, key)) is float


def test_the_packaged_defaults_keep_float_fields_float() -> None:
    rules = load_settings().rules
    assert all(type(getattr(rules, key)) is float
               for key in ("max_ride_hours", "min_overlap_seconds", "contact_isolation_hours"))


@pytest.mark.parametrize("text", ["lookback_days = 3.0", "lookback_days = 3.5", "retention_days = true"])
def test_int_fields_refuse_floats_even_whole_ones_and_booleans(tmp_path: Path, text: str) -> None:
    key, value = text.split(" = ")
    assert _refused(tmp_path, "rules", text) == f"{tmp_path / 'c.toml'}: rules.{key} must be int, got " + (
        "True" if value == "true" else value)


@pytest.mark.parametrize("section", ["rules", "runtime", "kafka"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
def test_nan_and_infinity_are_refused(tmp_path: Path, section: str, value: str) -> None:
    key = {"rules": "max_ride_hours", "runtime": "progress_every_seconds", "kafka": "stats_every_seconds"}[section]
    assert f"{section}.{key} must be a finite number" in _refused(tmp_path, section, f"{key} = {value}")


def _edges(allowed: Range) -> tuple[list[float], list[float]]:
    """Values inside and just outside a range."""
    inside = [allowed.high, allowed.low + 1 if allowed.low_open else allowed.low]
    return inside, [allowed.low if allowed.low_open else allowed.low - 1, allowed.high + 1]


# Values of other keys that the cross-field checks need for a key's whole range to be reachable.
COMPANIONS = {
    "kafka.min_insync_replicas": "\nreplication_factor = 32",  # may not exceed it
    "kafka.session_timeout_ms": "\nheartbeat_interval_ms = 100",  # at least three heartbeats
    "kafka.heartbeat_interval_ms": "\nsession_timeout_ms = 3600000",
    "rules.retention_days": "\nexposure_retention_days = 366",  # exposures are kept at least as long
    "rules.exposure_retention_days": "\nretention_days = 1",
}


@pytest.mark.parametrize("name", sorted(ALL_RANGES))
def test_every_range_edge(tmp_path: Path, name: str) -> None:
    section, key = name.split(".", 1)  # status.followup_hours.close: a dotted key in [status]
    allowed = ALL_RANGES[name]
    inside, outside = _edges(allowed)
    extra = COMPANIONS.get(name, "")
    for value in inside:
        _, settings = _load(tmp_path, section, f"{key} = {value}{extra}")
        found = settings if section == "kafka" else getattr(settings, section)
        for part in key.split("."):
            found = getattr(found, part)
        assert found == value
    for value in outside:
        message = _refused(tmp_path, section, f"{key} = {value}{extra}")
        assert message == f"{tmp_path / 'c.toml'}: {name} must be {allowed.describe()}, got {value!r}"


def test_the_issue_examples_read_plainly(tmp_path: Path) -> None:
    assert _refused(tmp_path, "rules", "retention_days = 1000000").endswith(
        "rules.retention_days must be between 1 and 366, got 1000000")
    assert _refused(tmp_path, "rules", "max_ride_hours = 0").endswith(
        "rules.max_ride_hours must be more than 0 and at most 168, got 0")
    assert _refused(tmp_path, "runtime", "block_cache_mb = -1").endswith(
        "runtime.block_cache_mb must be between 1 and 65536, got -1")


@pytest.mark.parametrize("zone", ["America", "Europe/" + "x" * 300, "", "../etc/passwd"])
def test_a_bad_time_zone_is_one_line(tmp_path: Path, zone: str) -> None:
    assert "unknown time zone" in _refused(tmp_path, "rules", f'timezone = "{zone}"')


@pytest.mark.parametrize("url", ["kafka://h:99999", "kafka://h:0", "kafka://h:９０９２"])
def test_broker_ports_are_ascii_and_in_range(url: str) -> None:
    with pytest.raises(ConfigError, match="broker must look like"):
        bootstrap_servers(url)


@pytest.mark.parametrize(("section", "text"), [
    ("rules", "lookback_days = 1000000"),
    ("rules", "retention_days = 1000000"),
    ("runtime", "block_cache_mb = -1"),
    ("runtime", "write_buffer_mb = 100000"),
    ("runtime", "max_line_bytes = 1"),
    ("rules", "max_ride_hours = nan"),
    ("rules", 'timezone = "America"'),
])
def test_through_the_cli_a_bad_setting_is_exit_2_and_one_line(tmp_path: Path, section: str, text: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[{section}]\n{text}\n")
    events = tmp_path / "events.jsonl"
    events.write_bytes(lines([person("P1", "310101002"), trip("P1", mode="metro", service="L1"), case("C1", "P1")]))
    done = subprocess.run([sys.executable, "-m", "tracer.cli", "run", str(events), "--out", str(tmp_path / "out"),
                           "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert re.fullmatch(r"tracer: error: [^\n]+\n", done.stderr), done.stderr


@pytest.mark.parametrize("seconds", ["nan", "inf", "-1"])
def test_subscribe_refuses_an_idle_exit_that_never_ends_or_is_negative(seconds: str) -> None:
    done = subprocess.run([sys.executable, "-m", "tracer.cli", "subscribe", "--contacts", "--broker",
                           "kafka://127.0.0.1:1", f"--idle-exit={seconds}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert re.fullmatch(r"tracer: error: --idle-exit must be a non-negative number of seconds, got \S+\n", done.stderr)


def test_operator_files_must_be_small_regular_files(tmp_path):
    """A FIFO or /dev/stdin would hang a run or eat its input; /dev/zero would fill the memory."""
    import os

    from tracer.privacy import load_key
    from tracer.registry import Subdistricts

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(ConfigError, match="not a regular file"):
            load_settings(path)
        with pytest.raises(ConfigError, match="not a regular file"):
            load_key(path)
        (tmp_path / "list.toml").write_text(f'[registry]\nsubdistricts = "{path}"\n')
        with pytest.raises(ConfigError, match="not a regular file"):
            Subdistricts.load(load_settings(tmp_path / "list.toml"))
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (2 << 20))
    with pytest.raises(ConfigError, match="larger than"):
        load_settings(big)


def test_a_host_dependent_time_zone_is_refused(tmp_path):
    for name in ("localtime", "Factory"):
        (tmp_path / "zone.toml").write_text(f'[rules]\ntimezone = "{name}"\n')
        with pytest.raises(ConfigError, match="depends on the machine"):
            load_settings(tmp_path / "zone.toml")


def test_a_subdistrict_list_with_a_byte_order_mark_is_read(tmp_path):
    (tmp_path / "codes.csv").write_bytes("\ufeffcode\n310101002\n".encode())
    (tmp_path / "list.toml").write_text('[registry]\nsubdistricts = "codes.csv"\n')
    from tracer.registry import Subdistricts

    assert Subdistricts.load(load_settings(tmp_path / "list.toml")).codes == frozenset({"310101002"})


def test_status_colours_and_the_followup_hours_table(tmp_path: Path) -> None:
    """[status]: the colours are red, yellow or green; followup_hours is a table of three levels."""
    _, settings = _load(tmp_path, "status", 'general_color = "green"\nfollowup_hours = { close = 12 }')
    assert settings.status.general_color == "green"
    assert settings.status.followup_hours == FollowupHours(close=12.0)
    refused = functools.partial(_refused, tmp_path, "status")
    assert "status.close_color must be one of green, yellow, red" in refused('close_color = "blue"')
    assert "unknown key status.followup_hours.urgent" in refused("followup_hours = { urgent = 1 }")
    assert "status.followup_hours.close must be between" in refused("followup_hours = { close = -1 }")
    assert "[status.followup_hours] must be a table" in _refused(tmp_path, "status", "followup_hours = 24")
