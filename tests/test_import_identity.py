"""The edges of who a record names: the card-holder list (``--card-holders``), first-generation ID
numbers, carriage codes whose carriage is no carriage number, and scans repeated. Each runs the row
path (the reference) and the columnar path, which must write the same bytes and the same report."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.importers import columnar
from connectors.importers.base import run_import
from connectors.importers.identity import BadId, PersonIds, normalise
from connectors.importers.kinds import KINDS
from connectors.importers.report import Report, print_report
from tests.test_import_transit import _gtfs
from tracer.documents import check_digit
from tracer.settings import Settings

KEY = b"identity-test-key-0123456789abcdef"
IDS = PersonIds(KEY)
OLD = "310101500101001"  # first generation: area 310101, born (19)50-01-01, sequence 001
NEW = OLD[:6] + "19" + OLD[6:] + check_digit(OLD[:6] + "19" + OLD[6:])
OTHER = "11010519491231002X"
SCAN_OPTIONS = {"default_ride_minutes": 30, "walk_seconds": 60}


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def both(kind: str, path: Path, tmp_path: Path, **options: Any) -> tuple[list[dict[str, Any]], Report]:
    """Import ``path`` both ways (``recheck``: the fast lines re-parsed); they must agree exactly."""
    results = []
    for fast in (True, False):
        out = tmp_path / f"{kind}-{fast}.jsonl"
        report = run_import(KINDS[kind], [str(path)], str(out), Settings(), IDS, argparse.Namespace(**options),
                            columnar=fast, recheck=fast)
        results.append((out.read_bytes(), report))
    (fast_bytes, fast_report), (row_bytes, row_report) = results
    assert fast_bytes == row_bytes and fast_report == row_report
    return [orjson.loads(line) for line in row_bytes.splitlines()], row_report


def text_of(report: Report) -> str:
    stream = io.StringIO()
    print_report(report, stream)
    return stream.getvalue()


# First-generation (15-digit) ID numbers.

def test_a_15_digit_number_is_its_18_digit_form_in_every_path(tmp_path: Path) -> None:
    assert normalise("id_card", OLD) == NEW and normalise("id_card", f" {OLD[:8]} {OLD[8:]} ") == NEW
    source = write(tmp_path / "r.csv", "id_type,id_number,subdistrict", f"id_card,{OLD},310101002",
                   f"身份证,{NEW},310101013", f"1,{OTHER},310101002")
    people, report = both("registry", source, tmp_path)
    assert [p["person_id"] for p in people] == [IDS.person_id("id_card", NEW)] * 2 + [IDS.person_id("id_card", OTHER)]
    assert report.written == 3  # the 18-digit row moves the same person (a later home wins)


@pytest.mark.parametrize("number", [
    "310101501301001",  # month 13
    "310101500230001",  # 30 February
    "310101000229001",  # 29 February 1900: not a leap year
    "310101500100001",  # day 0
])
def test_a_15_digit_number_without_a_birth_date_is_refused_without_quoting_it(tmp_path: Path, number: str) -> None:
    with pytest.raises(BadId, match="impossible birth date") as caught:
        normalise("id_card", number)
    assert number not in str(caught.value) and number[6:12] not in str(caught.value)
    source = write(tmp_path / "r.csv", "id_type,id_number,subdistrict", f"id_card,{number},310101002")
    people, report = both("registry", source, tmp_path)
    assert people == [] and list(report.rejected) == [
        "id_card number of 15 digits (first generation) holds an impossible birth date"]


@pytest.mark.parametrize("number", ["31010150010100X", "31010150010100", "3101015001010011", "31O101500101001"])
def test_a_15_character_number_that_is_not_15_digits_is_refused(number: str) -> None:
    with pytest.raises(BadId, match="nor 15 digits"):
        normalise("id_card", number)


def test_a_15_digit_passport_or_card_is_kept_as_written() -> None:
    assert normalise("passport", OLD) == OLD and normalise("card", OLD) == OLD
    assert IDS.person_id("card", OLD) != IDS.person_id("id_card", OLD)


# Carriage codes: the carriage is a number from 1 to 16.

def test_a_carriage_from_1_to_16_is_a_ride_and_any_other_is_reported(tmp_path: Path) -> None:
    carriages = ["1", "16", "05", "5车", "第8车厢", "0", "17", "-1", "99999999999999999999", "A", "٥", "3.5"]
    source = write(tmp_path / "c.csv", "card,code,time",
                   *[f"SPTC{n:04d},L2-T01:{c},2020-01-15 07:00:00" for n, c in enumerate(carriages)])
    rides, report = both("carriage-codes", source, tmp_path, taps=[], **SCAN_OPTIONS)
    assert [r["carriage"] for r in rides] == ["1", "16", "5", "5", "8"]
    assert report.rejected == {"carriage is not a number from 1 to 16 (5, 05, 5车, 第5车厢)": 7}
    assert "99999" not in text_of(report)


# Repeated scans: the same rider, code and second.

def test_a_scan_repeated_anywhere_is_reported_once_per_repeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        "SPTC1,L2-T01:4,2020-01-15 07:00:00",
        "SPTC1,L2-T01:4,2020-01-15 07:00:00",  # at once
        "SPTC1,L2-T01:04车,2020-01-15 07:00:00",  # the same carriage written otherwise
        "SPTC1,L2-T01:4,2020-01-15 07:00:01",  # a second later: another scan
        "SPTC1,L2-T01:5,2020-01-15 07:00:00",  # another carriage: another scan
        "SPTC2,L2-T01:4,2020-01-15 07:00:00",  # another card
        "sptc1,L2-T01:4,2020-01-15T07:00:00+08:00",  # the card and time written otherwise (the row path)
        *[f"SPTC{n},L2-T02:1,2020-01-15 08:00:00" for n in range(3, 40)],
        "SPTC1,L2-T01:4,2020-01-15 07:00:00",  # the feed delivered twice: far below
    ]
    source = write(tmp_path / "c.csv", "card,code,time", *rows)
    taps = write(tmp_path / "t.csv", "card,time,direction,line,station",  # tap-outs: the fast path ends rides
                 *[f"SPTC{n},2020-01-15 {7 + (n > 2):02d}:30:00,out,2,X" for n in range(1, 40)])
    by_row = []
    row = KINDS["carriage-codes"].start.row
    monkeypatch.setattr(KINDS["carriage-codes"].start, "row", lambda self, *a: by_row.append(a) or row(self, *a))
    rides, report = both("carriage-codes", source, tmp_path, taps=[taps], **SCAN_OPTIONS)
    assert len(rides) == len(rows) - 4 and len({r["trip_id"] for r in rides}) == len(rides)
    assert report.rejected == {"duplicate scan: the same rider, carriage code and second again": 4}
    assert [where for where, _ in report.rejected_rows] == ["line 3", "line 4", "line 8", f"line {len(rows) + 1}"]
    assert len(by_row) < len(rows) + 10  # the fast path wrote most (the row path all, once)
    monkeypatch.setattr(columnar, "CHUNK_BYTES", 97)  # repeats across chunks
    (tmp_path / "small").mkdir()
    assert both("carriage-codes", source, tmp_path / "small", taps=[taps], **SCAN_OPTIONS) == (rides, report)


# The card-holder list.

def holders(tmp_path: Path, *rows: str) -> Path:
    return write(tmp_path / "holders.csv", "card,id_type,id_number", *rows)


def test_a_card_with_a_known_holder_rides_as_the_holder_in_both_paths(tmp_path: Path) -> None:
    listed = holders(tmp_path, f"SPTC1,身份证,{OLD}", "ｓｐｔｃ２,passport,E1234567")
    scans = write(tmp_path / "c.csv", "card,code,time", "SPTC1,L2-T01:4,2020-01-15 07:00:00",
                  "sptc2,L2-T01:4,2020-01-15 07:00:00", "SPTC3,L2-T01:4,2020-01-15 07:00:00",
                  "SPTC3,L2-T01:4,2020-01-15 07:01:00", ",L2-T01:4,2020-01-15 07:00:00")
    taps = write(tmp_path / "t.csv", "card,time,direction,line,station", "SPTC1,2020-01-15 07:20:00,out,2,X",
                 "SPTC9,2020-01-15 07:20:00,out,2,X")  # SPTC9 is no card of the scans: not counted
    rides, report = both("carriage-codes", scans, tmp_path, taps=[taps], card_holders=listed, **SCAN_OPTIONS)
    assert [r["person_id"] for r in rides] == [IDS.person_id("id_card", NEW), IDS.person_id("passport", "E1234567"),
                                                IDS.person_id("card", "SPTC3"), IDS.person_id("card", "SPTC3")]
    assert rides[0]["alight_time"].endswith("07:19:00+08:00")  # the holder's tap-out ends the holder's ride
    assert report.cards == (2, 1) and report.holders == (2, 2) and report.written == 4
    shown = text_of(report)
    assert "cards          3 named: 2 with a known holder, 1 without" in shown and OLD not in shown


def test_a_tap_out_ends_the_ride_of_the_cards_rider_whatever_card_or_document_they_scanned(tmp_path: Path) -> None:
    """The tap-outs are matched by rider without hashing (``PersonIds.card_key``: the holder's id, or
    the card itself): a holder's scan on one card is ended by their tap-out on another, a scan by
    their ID number by a card's tap-out; a card without a holder (full-width, lower case: the fast
    path folds it) by its own. Both paths alike."""
    listed = holders(tmp_path, f"SPTC1,身份证,{NEW}", f"SPTC2,身份证,{NEW}")
    scans = write(tmp_path / "c.csv", "card,code,time,id_type,id_number", "SPTC1,L2-T01:4,2020-01-15 07:00:00,,",
                  f",L2-T01:5,2020-01-15 08:00:00,身份证,{NEW}", "sptc３,L2-T01:6,2020-01-15 09:00:00,,",
                  "SPTC4,L2-T01:6,2020-01-15 09:00:00,,")
    taps = write(tmp_path / "t.csv", "card,time,direction,line,station", "SPTC2,2020-01-15 07:20:00,out,2,X",
                 "SPTC1,2020-01-15 08:30:00,out,2,X", "SPTC3,2020-01-15 09:10:00,out,2,X",
                 "sptc4,2020-01-15 09:40:00,out,2,X")
    rides, _ = both("carriage-codes", scans, tmp_path, taps=[taps], card_holders=listed, **SCAN_OPTIONS)
    assert [r["alight_time"][11:19] for r in rides] == ["07:19:00", "08:29:00", "09:09:00", "09:39:00"]
    assert [r["person_id"] for r in rides] == [IDS.person_id("id_card", NEW)] * 2 + [
        IDS.person_id("card", "SPTC3"), IDS.person_id("card", "SPTC4")]
    (tmp_path / "alone").mkdir()  # no holders: each card its own rider, the ID scan ended by nothing
    rides_alone, _ = both("carriage-codes", scans, tmp_path / "alone", taps=[taps], **SCAN_OPTIONS)
    assert [r["alight_time"][11:19] for r in rides_alone] == ["08:29:00", "08:30:00", "09:09:00", "09:39:00"]


def test_two_cards_of_one_holder_at_one_second_are_one_scan(tmp_path: Path) -> None:
    listed = holders(tmp_path, f"SPTC1,身份证,{NEW}", f"SPTC2,身份证,{OLD}")
    scans = write(tmp_path / "c.csv", "card,code,time", "SPTC1,L2-T01:4,2020-01-15 07:00:00",
                  "SPTC2,L2-T01:4,2020-01-15 07:00:00")
    rides, report = both("carriage-codes", scans, tmp_path, taps=[], card_holders=listed, **SCAN_OPTIONS)
    assert len(rides) == 1 and sum(report.rejected.values()) == 1 and report.cards == (2, 0)


def test_messy_holder_rows_are_reported_not_fatal(tmp_path: Path) -> None:
    bad = NEW[:-1] + ("0" if NEW[-1] != "0" else "1")
    listed = holders(tmp_path,
                     f"SPTC1,身份证,{NEW}",
                     f"SPTC1,身份证,{NEW}",  # a repeat: harmless, reported
                     f"SPTC2,身份证,{bad}",  # wrong check digit
                     f"SPTC3,身份证,{NEW}", f"SPTC3,身份证,{OTHER}",  # two holders: none known
                     f"SPTC3,身份证,{NEW}",
                     "SPTC4,交通卡,SPTC5",  # a card is no holder
                     f"SP,身份证,{NEW}",  # no card number
                     f"SPTC6,驾照,{NEW}",  # an unknown ID type
                     "SPTC7,身份证",  # a field short
                     "")
    scans = write(tmp_path / "c.csv", "card,code,time",
                  *[f"SPTC{n},L2-T01:4,2020-01-15 07:00:00" for n in range(1, 5)])
    rides, report = both("carriage-codes", scans, tmp_path, taps=[], card_holders=listed, **SCAN_OPTIONS)
    assert [r["person_id"] for r in rides] == [IDS.person_id("id_card", NEW)] + [
        IDS.person_id("card", f"SPTC{n}") for n in (2, 3, 4)]
    assert report.holders == (10, 1) and report.cards == (1, 3)
    assert report.aside == {
        "repeats an earlier row": 1, "id_card number fails its check digit": 1,
        "card listed with two different holders: its holder is not known": 3,
        "a card's holder is named by an identity document, not by another card": 1,
        "card number is not 5 to 32 ASCII letters and digits": 1,
        "unknown ID type (expected one of id_card, passport, permit, card)": 1,
        "2 fields where the header has 3": 1,
    }
    shown = text_of(report)
    assert "holder row     " + str(listed) + " line 5: card listed with two different holders" in shown
    assert not {NEW, OTHER, bad, "SPTC1"} & set(shown.replace(":", " ").split())
    assert report.rejected == {}  # the list's rows are not the feed's records


def test_the_command_takes_the_list_says_when_it_is_missing_and_refuses_a_bad_header(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRACER_ID_KEY"} | {"TRACER_ID_KEY": KEY.decode()}
    scans = write(tmp_path / "c.csv", "card,code,time", "SPTC1,L2-T01:4,2020-01-15 07:00:00")

    def tracer(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tracer.cli", "import", "carriage-codes", str(scans), *flags],
                              capture_output=True, text=True, timeout=120, env=env)

    done = tracer("--out", str(tmp_path / "a.jsonl"))
    assert done.returncode == 0 and "no --card-holders" in done.stderr
    listed = holders(tmp_path, f"SPTC1,身份证,{NEW}")
    done = tracer("--card-holders", str(listed), "--out", str(tmp_path / "b.jsonl"))
    assert done.returncode == 0 and "no --card-holders" not in done.stderr
    assert orjson.loads((tmp_path / "b.jsonl").read_bytes())["person_id"] == IDS.person_id("id_card", NEW)
    write(tmp_path / "bad.csv", "card,id_number", f"SPTC1,{NEW}")
    done = tracer("--card-holders", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "c.jsonl"))
    assert done.returncode == 2 and "id_type" in done.stderr and "Traceback" not in done.stderr
    done = tracer("--card-holders", str(tmp_path / "none.csv"), "--out", str(tmp_path / "d.jsonl"))
    assert done.returncode == 2 and "cannot read" in done.stderr and "Traceback" not in done.stderr
    done = tracer("--card-holders", str(listed), "--out", str(listed))
    assert done.returncode != 0 and listed.read_text(encoding="utf-8").startswith("card,id_type")
    assert not (tmp_path / "c.jsonl").exists() and not (tmp_path / "d.jsonl").exists()


def test_taps_ride_as_the_cards_holder_unless_the_row_names_one(tmp_path: Path) -> None:
    """The taps' row path resolves cards through the same list; a holder the row names wins, and a
    Shenzhen Tong record's card_no is a card like any other."""
    listed = holders(tmp_path, f"A0001,身份证,{NEW}", "CBEHFCFCG,passport,E1234567", f"C0003,身份证,{NEW}")
    taps = write(tmp_path / "taps.csv", "card,time,direction,line,station,id_type,id_number",
                 "A0001,2020-01-15 08:03:00,in,5,布吉,,", "A0001,2020-01-15 08:13:00,out,5,红岭北,,",
                 f"C0003,2020-01-15 08:03:00,in,5,布吉,身份证,{OTHER}",
                 f"C0003,2020-01-15 08:13:00,out,5,红岭北,身份证,{OTHER}",
                 "B0002,2020-01-15 08:03:00,in,5,布吉,,", "B0002,2020-01-15 08:13:00,out,5,红岭北,,")
    report = run_import(KINDS["taps"], [str(taps)], str(tmp_path / "out.jsonl"), Settings(), IDS,
                        argparse.Namespace(timetable=_gtfs(tmp_path), card_holders=listed), recheck=True)
    rides = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert sorted(r["person_id"] for r in rides) == sorted(
        [IDS.person_id("id_card", NEW), IDS.person_id("id_card", OTHER), IDS.person_id("card", "B0002")])
    assert report.cards == (1, 1)  # C0003's rows name their holder: no card to resolve
    records = [{"deal_date": f"2020-01-15 {time}", "card_no": "cbehfcfcg", "deal_type": kind,
                "company_name": "地铁五号线", "station": station}
               for time, kind, station in (("08:03:00", "地铁入站", "布吉"), ("08:13:00", "地铁出站", "红岭北"))]
    (tmp_path / "sz.json").write_bytes(orjson.dumps(records))
    report = run_import(KINDS["taps"], [str(tmp_path / "sz.json")], str(tmp_path / "sz.jsonl"), Settings(), IDS,
                        argparse.Namespace(timetable=_gtfs(tmp_path), card_holders=listed))
    assert orjson.loads((tmp_path / "sz.jsonl").read_bytes())["person_id"] == IDS.person_id("passport", "E1234567")
    assert report.cards == (1, 0)
