"""End to end: the simulator's raw feeds, imported, give the alerts of the simulator's own events.

`tracer generate --feeds` writes a residence list, case reports and flight manifests keyed by ID
numbers; `tracer import` turns them into events under the identity key; `tracer run` traces them.
The reference is `tracer run` over the simulator's events.jsonl restricted to what those feeds
carry: each resident's first valid home, the case events, the flight rides as the engine keeps them
(by trip id, a correction replacing its ride), one ride per person and flight (the later, as a
manifest's later row), at the flight's scheduled departure and arrival (a manifest knows no
boarding time). The folded alerts, with each ``pid:`` mapped back to the simulator's person,
are equal, field for field, and each import's report holds exactly the rejections feeds.json lists.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import unicodedata
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.importers.identity import PersonIds
from streams.embedded import run_embedded
from tracer.events import parse_line
from tracer.settings import Settings
from tracer.simulate import generate
from tracer.simulate.feeds.documents import document

KEY = "end-to-end-key-0123456789"
FILES = {"registry": "registry.csv", "cases": "cases.csv", "manifest": "manifests.csv"}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("city")
    generate(3000, 6, 12, 11, out, truth=False, feeds=out / "feeds")
    return out


def tracer(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"TRACER_ID_KEY": KEY}
    return subprocess.run([sys.executable, "-m", "tracer.cli", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_imported_feeds_give_the_simulators_alerts(city: Path, tmp_path: Path) -> None:
    listing = orjson.loads((city / "feeds" / "feeds.json").read_bytes())
    # rail and metro feeds need a timetable: tests/test_import_transit.py
    listing["files"] = [entry for entry in listing["files"] if entry["kind"] in FILES]
    assert [entry["kind"] for entry in listing["files"]] == list(FILES)
    imported = []
    for entry in listing["files"]:
        out = tmp_path / f"{entry['kind']}.jsonl"
        done = tracer("import", entry["kind"], str(city / "feeds" / entry["file"]), "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert f"records        {entry['rows']:,} read" in done.stderr
        for reason, count in entry["rejected"].items():
            assert f"rejected       {count:6,}  {reason}\n" in done.stderr
        rejected = sum(entry["rejected"].values())
        assert f"written        {entry['rows'] - rejected:,} as" in done.stderr
        assert not _numbers(city / "feeds" / entry["file"]) & set(re.findall(r"[0-9A-Z]{9,}", out.read_text()))
        imported.append(str(out))
    done = tracer("run", *imported, "--out", str(tmp_path / "imported"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "imported" / "dead-letter.jsonl").read_bytes() == b""

    reference = tmp_path / "reference.jsonl"
    people = _reference(city / "events.jsonl", listing, reference)
    run_embedded([str(reference)], tmp_path / "expected", Settings())
    ids = PersonIds(KEY.encode())
    back = {ids.person_id(*document(person)): person for person in people}
    got = _alerts(tmp_path / "imported" / "contacts.jsonl", back)
    expected = _alerts(tmp_path / "expected" / "contacts.jsonl", None)
    assert len(expected) > 50 and {a["level"] for a in expected} >= {"close", "general"}
    assert sorted(got, key=repr) == sorted(expected, key=repr)


def _reference(events: Path, listing: dict[str, Any], out: Path) -> set[str]:
    """What the feeds carry, as events (see the module doc); returns every person named."""
    homes: dict[str, bytes] = {}
    cases: list[bytes] = []
    rides: dict[str, dict[str, Any]] = {}
    (manifest,) = [entry for entry in listing["files"] if entry["kind"] == "manifest"]
    for line in events.read_bytes().splitlines():
        try:
            parse_line(line, 72 * 3_600_000_000)
        except ValueError:
            continue
        event = orjson.loads(line)
        if event["type"] == "person":
            homes.setdefault(event["person_id"], line)
        elif event["type"] == "case":
            cases.append(line)
        elif event["type"] == "trip" and event["mode"] == "flight":
            rides.pop(event["trip_id"], None)
            rides[event["trip_id"]] = event
    aboard: dict[tuple[str, str, str], dict[str, Any]] = {}
    for ride in rides.values():
        aboard.pop((ride["service"], ride["date"], ride["person_id"]), None)
        aboard[(ride["service"], ride["date"], ride["person_id"])] = ride
    for ride in aboard.values():
        ride["board_time"], ride["alight_time"] = _scheduled(manifest["flights"][ride["service"]], ride["date"])
    out.write_bytes(b"".join(line + b"\n" for line in [*homes.values(), *cases])
                    + b"".join(orjson.dumps(ride) + b"\n" for ride in aboard.values()))
    return set(homes) | {orjson.loads(line)["person_id"] for line in cases} | {key[2] for key in aboard}


def _numbers(feed: Path) -> set[str]:
    """The ID numbers a feed holds, as the importer reads them (none may be in its output)."""
    with open(feed, encoding="utf-8", newline="") as rows:
        return {unicodedata.normalize("NFKC", row["id_number"]).strip().upper() for row in csv.DictReader(rows)
                if row.get("id_number")}


def _scheduled(flight: dict[str, Any], day: str) -> tuple[str, str]:
    """The flight's scheduled departure and arrival on ``day``, from feeds.json's truth."""
    departs = datetime.fromisoformat(f"{day}T{flight['departure']}:00+08:00")
    return departs.isoformat(), (departs + timedelta(minutes=flight["minutes"])).isoformat()


def _alerts(contacts: Path, back: dict[str, str] | None) -> list[dict[str, Any]]:
    """The alerts standing at the end (adds not retracted), person ids mapped through ``back``."""
    standing: dict[str, dict[str, Any]] = {}
    for line in contacts.read_bytes().splitlines():
        alert = orjson.loads(line)
        if alert["action"] == "add":
            standing[alert["alert_id"]] = alert
        else:
            standing.pop(alert["alert_id"], None)
    mapped = []
    for alert in standing.values():
        alert = {k: v for k, v in alert.items() if k != "alert_id"}
        if back is not None:
            for field in ("case_person_id", "contact_person_id", "via_person_id"):
                if alert[field] is not None:
                    alert[field] = back[alert[field]]
        mapped.append(alert)
    return mapped
