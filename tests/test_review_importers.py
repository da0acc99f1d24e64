"""A reviewer's findings on the importers (connectors/importers/), first landed as strict xfails,
now fixed: a first-generation ID number, a carriage that is no carriage number, a repeated scan,
and the documented imports that gave no metro alert (the card-holder list, docs/import.md). The
edges of each fix: tests/test_import_holders.py."""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

import orjson

from connectors.importers.base import run_import
from connectors.importers.identity import PersonIds
from connectors.importers.kinds import KINDS
from streams.embedded import run_embedded
from tracer.alerts import fold
from tracer.documents import check_digit
from tracer.settings import Settings
from tracer.simulate.feeds.documents import document
from tracer.simulate.feeds.transit import card
from tracer.simulate.generate import generate

IDS = PersonIds(b"review-key-0123456789abcdef")


def imported(kind: str, text: str, tmp_path: Path, **options: object) -> tuple[list[dict], object]:
    source = tmp_path / f"{kind}.csv"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / f"{kind}.jsonl"
    report = run_import(KINDS[kind], [str(source)], str(out), Settings(), IDS, argparse.Namespace(**options))
    return [orjson.loads(line) for line in out.read_bytes().splitlines()], report


def test_a_first_generation_id_number_is_the_same_person_as_its_18_digit_form(tmp_path: Path):
    old = "310101500101001"  # area 310101, born 1950-01-01, sequence 001
    new = old[:6] + "19" + old[6:]
    new += check_digit(new)
    assert IDS.person_id("id_card", old) == IDS.person_id("id_card", new)
    people, report = imported("registry", f"id_type,id_number,subdistrict\nid_card,{old},310101002\n", tmp_path)
    assert [p["person_id"] for p in people] == [IDS.person_id("id_card", new)] and report.written == 1


def test_a_carriage_that_is_no_carriage_number_is_reported(tmp_path: Path):
    rides, report = imported("carriage-codes", "card,code,time\nSPTC5,L2-T01:-1,2020-01-15 07:00:00\n"
                             "SPTC6,L2-T01:99999999999999999999,2020-01-15 07:00:00\n", tmp_path,
                             taps=[], default_ride_minutes=30, walk_seconds=60)
    assert rides == [] and report.rejected == {"carriage is not a number from 1 to 16 (5, 05, 5车, 第5车厢)": 2}


def test_a_repeated_scan_is_reported_not_written_twice(tmp_path: Path):
    rides, report = imported("carriage-codes", "card,code,time\nSPTC1,L2-T01:4,2020-01-15 07:00:00\n"
                             "SPTC1,L2-T01:4,2020-01-15 07:00:00\n", tmp_path,
                             taps=[], default_ride_minutes=30, walk_seconds=60)
    assert len(rides) == 1 and report.written == 1
    assert report.rejected == {"duplicate scan: the same rider, carriage code and second again": 1}


def test_the_documented_imports_give_the_metro_alerts_of_the_truth(tmp_path: Path):
    """docs/import.md's commands, run as written: the registry, the cases and the taps with the
    card-holder list. Every metro alert is one of the truth's (no stranger named), and the share of
    the truth's direct metro contacts reached follows from the simulator's choices: the taps
    determine 0.95 or more of the contacts (docs/import.md), of the cases whose card has a known
    holder (``P_HELD`` of the riders); the other cases' rides cannot be linked to them."""
    city, feeds = tmp_path / "city", tmp_path / "city" / "feeds"
    generate(2000, 2, 10, 3, city, truth=True, feeds=feeds)
    truth = [orjson.loads(line) for line in (city / "truth.jsonl").read_bytes().splitlines()]
    env = os.environ | {"TRACER_ID_KEY": "review-key-0123456789abcdef"}
    imports = (("registry", "registry.csv"), ("cases", "cases.csv"),
               ("taps", "taps.csv", "--timetable", str(feeds / "gtfs.zip"), "--card-holders",
                str(feeds / "card-holders.csv")))
    for kind, name, *options in imports:
        done = subprocess.run([sys.executable, "-m", "tracer.cli", "import", kind, str(feeds / name), *options,
                               "--out", str(tmp_path / f"{kind}.jsonl")], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
    assert "cards without a known holder" in done.stderr and "card holders " in done.stderr
    run_embedded([str(tmp_path / f"{kind}.jsonl") for kind, *_ in imports], tmp_path / "out", Settings())
    alerts = fold(orjson.loads(line) for line in (tmp_path / "out" / "contacts.jsonl").read_bytes().splitlines())
    people = {alert[role] for alert in truth for role in ("case_person_id", "contact_person_id")}
    back = {IDS.person_id(*document(p)): p for p in people} | {IDS.person_id("card", card(p)): p for p in people}
    key = lambda alert, contact: (alert["case_id"], contact, alert["service"], alert["date"])  # noqa: E731
    got = {key(a, back.get(a["contact_person_id"])) for a in alerts.values() if a["mode"] == "metro"}
    direct = {key(a, a["contact_person_id"]) for a in truth if a["mode"] == "metro" and a["level"] != "secondary"}
    with open(feeds / "card-holders.csv", encoding="utf-8") as rows:
        held = {row["card"] for row in csv.DictReader(rows)}
    cases = {alert["case_id"]: alert["case_person_id"] for alert in truth}
    reachable = {k for k in direct if card(cases[k[0]]) in held}
    assert got <= direct and 0 < len(reachable) < len(direct)  # nothing wrong; some cases ride unlinked
    assert len(got) / len(reachable) >= 0.95  # measured 368 of 378 (0.974); 0.459 of all 801 direct
