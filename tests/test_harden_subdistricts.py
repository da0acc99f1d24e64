"""Issue 12 item 6: subdistrict codes (and every number read from input) are ASCII digits, and a
code must be in the subdistrict list: an unknown one sends the person's alerts to ``unassigned``
with a warning in the dead letters and a count in the summary, never to a queue nobody reads."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from streams.embedded import run_embedded
from tests.builders import case, lines, person, trip
from tests.kafka.harness import MemoryBus, drain, open_tasks
from tracer.errors import ConfigError, InvalidEvent
from tracer.events import parse_line
from tracer.registry import Subdistricts
from tracer.rules import classify
from tracer.settings import RegistrySettings, Settings, load_settings

SETTINGS = load_settings()
UNKNOWN = "310199999"  # well formed, no such street office
REASON = (f"subdistrict {UNKNOWN} is not in the subdistrict list (registry.subdistricts); "
          "the person's alerts go to unassigned")


def _read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def _flight(contact_home: str) -> list[dict]:
    """P2 sits a row from case C1's P1: a close contact, queued to P2's home."""
    return [person("P1", "310101002"), person("P2", contact_home), trip("P1", seat="30A", trip_id="t1"),
            trip("P2", seat="31A", trip_id="t2"), case("C1", "P1")]


@pytest.mark.parametrize("code", ["３１０１０１０１９", "٣١٠١٠١٠١٩", "۳۱۰۱۰۱۰۱۹", "३१०१०१०१९", "31010101９"])
def test_non_ascii_digits_are_refused(code: str) -> None:
    with pytest.raises(InvalidEvent, match="9-digit"):
        parse_line(orjson.dumps(person("P1", code)), 10**12)


def test_a_fullwidth_code_is_a_dead_letter_and_names_no_queue(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(lines(_flight("３１０１０１０１９")))
    summary = run_embedded([str(events)], tmp_path / "out", SETTINGS)
    assert summary.dead_letters == 1 and summary.warnings == 0
    assert [p.name for p in (tmp_path / "out" / "alerts").iterdir()] == ["unassigned.jsonl"]


@pytest.mark.parametrize("rows", ["２５-４０", "25-٤٠", "25\u3000-40"])
def test_crew_rows_in_other_digits_or_spaces_are_refused(rows: str) -> None:
    with pytest.raises(InvalidEvent, match="crew_rows"):
        parse_line(orjson.dumps(trip("P1", role="crew", crew_rows=rows)), 10**12)


@pytest.mark.parametrize("bay", ["３", "+3", "0_3", "٣"])
def test_a_bay_is_read_in_ascii_digits_only(bay: str) -> None:
    """A non-sealed train's bays are close within ``train_bay_span``: "３" is no bay number (it
    equals no "3"), where int() read it as 3."""
    ride = {"mode": "train", "service": "K1", "carriage": "5", "sealed": False}
    case_ride = parse_line(orjson.dumps(trip("P1", compartment=bay, **ride)), 10**12)
    contact = parse_line(orjson.dumps(trip("P2", compartment="3", **ride)), 10**12)
    assert classify(case_ride, contact, SETTINGS.rules) == ("general", "train.same_train")


def test_an_unknown_code_goes_to_unassigned_with_a_warning(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(lines(_flight(UNKNOWN)))
    out = tmp_path / "out"
    summary = run_embedded([str(events)], out, SETTINGS)
    assert (summary.warnings, summary.dead_letters) == (1, 0)
    assert [p.name for p in (out / "alerts").iterdir()] == ["unassigned.jsonl"]
    [alert] = _read(out / "alerts" / "unassigned.jsonl")
    assert (alert["contact_person_id"], alert["subdistrict"]) == ("P2", None)
    [letter] = _read(out / "dead-letter.jsonl")
    assert letter == {"source": str(events), "line": 2, "raw": orjson.dumps(person("P2", UNKNOWN)).decode(),
                      "reason": REASON, "severity": "warning"}


def test_moving_to_an_unknown_code_moves_the_alerts_to_unassigned(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(lines([*_flight("310101013"), person("P2", UNKNOWN)]))
    out = tmp_path / "out"
    run_embedded([str(events)], out, SETTINGS)
    actions = [(a["action"], a["subdistrict"]) for a in _read(out / "alerts" / "310101013.jsonl")]
    assert actions == [("add", "310101013"), ("retract", "310101013")]
    assert [(a["action"], a["subdistrict"]) for a in _read(out / "alerts" / "unassigned.jsonl")] == [("add", None)]


def test_the_cli_summary_counts_the_warnings(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(lines(_flight(UNKNOWN)))
    done = subprocess.run([sys.executable, "-m", "tracer.cli", "run", str(events), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^dead letters +0$", done.stdout, re.M)
    assert re.search(r"^warnings +1 ", done.stdout, re.M)


def test_a_kafka_partition_routes_an_unknown_code_to_unassigned_and_leaves_the_warning_to_the_publisher(
        tmp_path: Path) -> None:
    bus = MemoryBus(3)
    bus.publish([orjson.dumps(e) for e in _flight(UNKNOWN)], SETTINGS)
    tasks = open_tasks(bus, tmp_path, SETTINGS)
    try:
        drain(bus, tasks)
    finally:
        tasks.close()
    kafka = bus.kafka
    queues = {name for name, records in bus.topics.items() if name.startswith(kafka.queue_topic_prefix) and records}
    assert queues == {kafka.queue_topic("unassigned")}
    assert not bus.topics.get(kafka.dead_letter_topic)


def _city_list(tmp_path: Path, text: str) -> Path:
    """A config naming a list next to it, by a relative path."""
    (tmp_path / "city.csv").write_text(text, "utf-8")
    config = tmp_path / "city.toml"
    config.write_text('[registry]\nsubdistricts = "city.csv"\n')
    return config


def test_another_city_brings_its_own_list(tmp_path: Path) -> None:
    settings = load_settings(_city_list(tmp_path, "code,name\n110101001,东华门街道\n"))
    events = tmp_path / "events.jsonl"
    events.write_bytes(lines([*_flight("110101001"), person("P1", "310101002")]))
    out = tmp_path / "out"
    summary = run_embedded([str(events)], out, settings)
    assert summary.warnings == 2  # Shanghai's codes are not this city's
    assert sorted(p.name for p in (out / "alerts").iterdir()) == ["110101001.jsonl"]


def test_the_shipped_list_is_the_default_and_declares_the_queues() -> None:
    from connectors.kafka.topics import all_queues

    codes = Subdistricts.load(SETTINGS).codes
    assert len(codes) == 234 and "310101002" in codes and UNKNOWN not in codes
    assert all_queues(SETTINGS) == [*sorted(codes), "unassigned"]


@pytest.mark.parametrize(("text", "message"), [
    ("name\n东华门街道\n", "no 'code' column"),
    ("code\n", "lists no codes"),
    ("code\n110101001\n１１０１０１００２\n", r"line 3: code '１１０１０１００２' is not 9 ASCII digits"),
    ("# provenance\ncode,name\n11010100X,x\n", r"line 3: code '11010100X'"),
    ("code,name\n110101001,\"unclosed\n", "is not a CSV file"),
    ("name,code\nx\n", "code None"),
])
def test_a_bad_list_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    settings = load_settings(_city_list(tmp_path, text))
    with pytest.raises(ConfigError, match=message):
        Subdistricts.load(settings)


def test_an_unreadable_list_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_bytes(b"code\n\xff\n")
    for path in (tmp_path / "bad.csv", tmp_path / "missing.csv", tmp_path):
        settings = replace(Settings(), registry=RegistrySettings(str(path)))
        with pytest.raises(ConfigError, match=r"registry\.subdistricts: cannot read"):
            Subdistricts.load(settings)


def test_through_the_cli_a_bad_list_is_exit_2_and_one_line(tmp_path: Path) -> None:
    config = _city_list(tmp_path, "code\n31010100\n")
    events = tmp_path / "events.jsonl"
    events.write_bytes(lines(_flight("310101013")))
    done = subprocess.run([sys.executable, "-m", "tracer.cli", "run", str(events), "--out", str(tmp_path / "out"),
                           "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert re.fullmatch(r"tracer: error: registry\.subdistricts: \S+city\.csv line 2: [^\n]+\n", done.stderr)


def test_subscribe_refuses_a_queue_in_other_digits() -> None:
    done = subprocess.run([sys.executable, "-m", "tracer.cli", "subscribe", "--subdistrict", "３１０１０１００２",
                           "--broker", "kafka://127.0.0.1:1", "--idle-exit=0"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("tracer: error: --subdistrict must be a 9-digit code")
