"""`tracer calllist`, `status`, `kpis` and `contacts` on a run's state: formats, `--at`, and errors
that say what was expected."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import orjson
import pytest

from tests.builders import at, case, lines, person, trip
from tracer.cli import main

OFFICE = "310101002"
D3 = "2020-01-22"
EVENTS = [
    person("P2", OFFICE),
    person("=HYPERLINK(1)", OFFICE),  # an id a spreadsheet would run as a formula
    trip("P1", seat="10A", trip_id="f1"),
    trip("P2", seat="12A", trip_id="f2"),
    trip("=HYPERLINK(1)", seat="11A", trip_id="f3"),
    trip("P3", seat="30A", trip_id="f4"),
    case("C1", "P1", reported_at=at("12:00", D3)),
    {"type": "followup", "person_id": "P2", "outcome": "reached", "at": at("13:00", D3), "by": OFFICE},
]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    (tmp_path / "events.jsonl").write_bytes(lines(EVENTS))
    assert main(["run", str(tmp_path / "events.jsonl"), "--out", str(tmp_path / "out"), "--state",
                 str(tmp_path / "state"), "--quiet"]) == 0
    return tmp_path / "state"


def command(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_calllist_json_with_at_makes_the_unreached_resident_overdue(state: Path, capsys) -> None:
    code, out, _ = command(capsys, "calllist", "--state", str(state), "--subdistrict", OFFICE, "--format", "json",
                           "--at", at("12:00", "2020-01-23"))
    rows = orjson.loads(out)
    assert code == 0 and [(row["person_id"], row["overdue"]) for row in rows] == [("=HYPERLINK(1)", True),
                                                                                   ("P2", False)]
    assert rows[1]["followup"] == {"outcome": "reached", "at": at("13:00", D3), "by": OFFICE, "note": None}
    assert rows[1]["subdistrict_name"] == "南京东路街道"
    code, out, _ = command(capsys, "calllist", "--state", str(state), "--subdistrict", OFFICE, "--format", "json",
                           "--at", at("11:59:59", "2020-01-23"))
    assert [row["overdue"] for row in orjson.loads(out)] == [False, False]


def test_calllist_csv_defuses_formulas_and_table_aligns(state: Path, capsys) -> None:
    _, out, _ = command(capsys, "calllist", "--state", str(state), "--subdistrict", OFFICE, "--format", "csv")
    table = list(csv.reader(io.StringIO(out.lstrip("\ufeff"))))
    assert table[0][:3] == ["person_id", "level", "case_ids"]
    assert {row[0] for row in table[1:]} == {"'=HYPERLINK(1)", "P2"}
    _, out, _ = command(capsys, "calllist", "--state", str(state), "--subdistrict", OFFICE)
    header, *body = out.splitlines()
    assert header.startswith("person_id") and len(body) == 2 and "close" in body[0]


def test_calllist_xlsx_is_a_workbook_with_every_row(state: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "list.xlsx"
    code, _, _ = command(capsys, "calllist", "--state", str(state), "--subdistrict", OFFICE, "--format", "xlsx",
                         "--out", str(target))
    with zipfile.ZipFile(target) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = book.read("xl/sharedStrings.xml").decode()
    assert code == 0 and sheet.count("<row ") == 3 and "=HYPERLINK(1)" in strings and "<f>" not in sheet
    code, _, err = command(capsys, "calllist", "--state", str(state), "--subdistrict", OFFICE, "--format", "xlsx")
    assert code == 2 and "--format xlsx writes a file: give --out FILE" in err


def test_general_contacts_only_when_asked(state: Path, capsys) -> None:
    _, out, _ = command(capsys, "calllist", "--state", str(state), "--subdistrict", "unassigned", "--format", "json")
    assert orjson.loads(out) == []
    _, out, _ = command(capsys, "calllist", "--state", str(state), "--subdistrict", "unassigned", "--format", "json",
                        "--include-general")
    assert [(row["person_id"], row["level"], row["subdistrict"]) for row in orjson.loads(out)] == [
        ("P3", "general", "unassigned")]


def test_status_of_a_person_and_the_changes(state: Path, capsys) -> None:
    _, out, _ = command(capsys, "status", "--state", str(state), "--person", "P2")
    found = orjson.loads(out)
    assert found["color"] == "red" and found["until"] == at("10:00", "2020-02-03")
    _, out, _ = command(capsys, "status", "--state", str(state), "--person", "P2", "--at", at("10:00", "2020-02-03"))
    assert orjson.loads(out)["color"] == "green"
    _, out, _ = command(capsys, "status", "--state", str(state), "--person", "NOBODY")
    assert orjson.loads(out)["color"] == "green"
    _, out, _ = command(capsys, "status", "--state", str(state), "--changes")
    assert {orjson.loads(line)["person_id"] for line in out.splitlines()} == {"P1", "P2", "P3", "=HYPERLINK(1)"}


def test_kpis_city_and_offices(state: Path, capsys) -> None:
    _, out, _ = command(capsys, "kpis", "--state", str(state), "--format", "json", "--at", at("18:00", "2020-01-23"))
    found = orjson.loads(out)
    assert found["city"] | {"name": None} == {
        "subdistrict": "city", "name": None, "alerted": 2, "reached_2h": 1, "reached_12h": 1, "reached_24h": 1,
        "median_hours_to_reach": 1.0, "overdue": 1, "quarantined": 0, "released": 0, "unreachable": 0}
    assert [office["subdistrict"] for office in found["offices"]] == [OFFICE]
    _, out, _ = command(capsys, "kpis", "--state", str(state))
    assert out.splitlines()[-1].startswith("city")


def test_contacts_of_a_case_folded_and_by_level(state: Path, capsys) -> None:
    _, out, _ = command(capsys, "contacts", "--state", str(state), "--case", "C1", "--format", "json")
    assert [(a["contact_person_id"], a["level"]) for a in orjson.loads(out)] == [  # P2 and "=H..." sat together
        ("=HYPERLINK(1)", "close"), ("P2", "close"), ("=HYPERLINK(1)", "secondary"), ("P2", "secondary"),
        ("P3", "general")]
    _, out, _ = command(capsys, "contacts", "--state", str(state), "--case", "C1", "--level", "general", "--format",
                        "json")
    assert [a["contact_person_id"] for a in orjson.loads(out)] == ["P3"]


@pytest.mark.parametrize(("args", "message"), [
    (["calllist", "--subdistrict", "31010100"], "--subdistrict must be a 9-digit code or 'unassigned'"),
    (["calllist", "--subdistrict", OFFICE, "--at", "tomorrow"], "expected e.g. 2020-01-23T09:00:00+08:00"),
    (["status", "--person", "P2", "--at", "2020-01-23T09:00:00"], "has no UTC offset"),
    (["contacts", "--case", "C9"], "no case 'C9'"),
])
def test_a_question_not_understood_is_an_error_that_says_what_was_expected(state: Path, capsys, args, message):
    code, _, err = command(capsys, args[0], "--state", str(state), *args[1:])
    assert code == 2 and message in err


def test_contacts_of_c1_leave_out_those_of_c10(tmp_path: Path, capsys) -> None:
    """A case's secondary contacts are read by the prefix of its via sources (``v:C1\\x1e``): C10's,
    whose via sources start with ``v:C1`` too, are not C1's."""
    events = [trip("P1", seat="10A", trip_id="a1"), trip("P2", seat="12A", trip_id="a2"),
              trip("P10", service="MU9", seat="10A", trip_id="b1"), trip("X", service="MU9", seat="11A", trip_id="b2"),
              trip("X", mode="metro", service="L2-1", day="2020-01-21", board="07:30", alight="08:00", carriage="3",
                   trip_id="m1"),
              trip("Y", mode="metro", service="L2-1", day="2020-01-21", board="07:35", alight="08:00", carriage="3",
                   trip_id="m2"),
              case("C1", "P1"), case("C10", "P10")]
    (tmp_path / "e.jsonl").write_bytes(lines(events))
    assert main(["run", str(tmp_path / "e.jsonl"), "--out", str(tmp_path / "o"), "--state", str(tmp_path / "s"),
                 "--quiet"]) == 0
    _, out, _ = command(capsys, "contacts", "--state", str(tmp_path / "s"), "--case", "C10", "--format", "json")
    assert ("Y", "secondary") in {(a["contact_person_id"], a["level"]) for a in orjson.loads(out)}
    _, out, _ = command(capsys, "contacts", "--state", str(tmp_path / "s"), "--case", "C1", "--format", "json")
    assert {a["contact_person_id"] for a in orjson.loads(out)} == {"P2"}
