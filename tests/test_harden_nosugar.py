"""`tracer import nosugar` with hostile feeds and careless --out: per-row rejections, one-line errors.

Each bad row or record is rejected with its reason and the import goes on; what is written is what
`tracer run` accepts; the counts add up; reading and writing failures are told apart; the output
is whole or absent, and never the input.
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from connectors.importers.csvfeed import FIELD_LIMIT
from connectors.importers.report import Report as ImportReport
from connectors.nosugar import import_nosugar, read_records
from streams.embedded import run_embedded
from tracer.errors import InputError
from tracer.jsonl import json_record
from tracer.settings import RuleSettings, Settings

HEADER = "id,t_date,t_start,t_end,t_type,t_no,t_memo,t_no_sub,t_pos_start,t_pos_end,source,who,verified"
GOOD = "1,2020-01-20,2020/01/20 08:00:00,2020/01/20 10:00:00,2,G7,,3号车厢,上海,南京,https://example.org/1,x,1"
FEED = next((p / "shared/data/nosugar_trips.csv" for p in Path(__file__).resolve().parents
             if (p / "shared/data/nosugar_trips.csv").exists()), None)


def row(record_id: str, **fields: str) -> str:
    names = HEADER.split(",")
    values = dict(zip(names, GOOD.split(","), strict=True)) | {"id": record_id} | fields
    return ",".join(values[name] for name in names)


def feed(path: Path, *rows: str | bytes) -> Path:
    path.write_bytes(b"".join((r if isinstance(r, bytes) else r.encode()) + b"\n" for r in (HEADER, *rows)))
    return path


def tracer(*args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracer.cli", *args], capture_output=True, timeout=120, **options)


def imported(source: Path) -> tuple[list[dict], ImportReport]:
    report = ImportReport()
    events = list(import_nosugar(read_records(str(source)), report))
    assert report.records == report.written + sum(report.not_traced.values()) + sum(report.rejected.values())
    return events, report


def runs_clean(events: list[dict], tmp_path: Path) -> None:
    """What the importer wrote, the engine takes: no dead letter."""
    (tmp_path / "events.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    settings = Settings(rules=RuleSettings(retention_days=120))
    assert run_embedded([str(tmp_path / "events.jsonl")], tmp_path / "run", settings).dead_letters == 0


def test_rows_that_are_not_records_are_rejected_and_the_import_goes_on(tmp_path):
    source = feed(
        tmp_path / "feed.csv",
        row("1"),
        "2,2020-01-20,,,2",  # short
        row("3") + ",extra",  # long
        row("4", t_pos_start="上海").encode().replace("上海".encode(), b"\xff\xfe"),  # invalid UTF-8
        row("5", t_memo="x" * (FIELD_LIMIT + 1)),
        row("6", t_memo="x" * 200 * 1024),  # the review's field over 128 KiB
        row("7", t_type="5", t_no="bus 7"),
        "",  # a blank line is no record
        row("8", t_no="G8"),
    )
    events, report = imported(source)
    assert [e["exposure_id"] for e in events] == ["nosugar:1", "nosugar:8"]
    assert report.records == 8 and report.written == 2 and report.not_traced == {"city bus": 1}
    reasons = dict(report.rejected_rows)
    assert reasons["line 3"] == "5 fields where the header has 13"
    assert reasons["line 4"] == "14 fields where the header has 13"
    assert reasons["line 5"] == "invalid UTF-8"
    assert "field limit" in reasons["line 6"] and "field limit" in reasons["line 7"]
    runs_clean(events, tmp_path)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"t_start": "2020/01/20 25:00:00", "t_end": "2020/01/20 26:00:00"}, "start is not an ISO 8601 time"),
    ({"t_date": "2020-13-45"}, "date is not a valid date"),
    ({"t_date": "１９９９-01-20"}, "start 2020-01-20T08:00:00+08:00 is too far from service date 1999-01-20"),  # read
    ({"t_date": "20-01-2020"}, "no usable date"),
    ({"t_date": "1900-01-20"}, "date is outside the years"),
    ({"t_pos_start": "上海\x01"}, "board_station must be a short string"),
    ({"t_no_sub": "３号车厢", "t_no": "G7/7/G7"}, None),  # not carriage 3 but the whole train; G7 once
    ({"t_no": "G" + "/".join(map(str, range(1, 70)))}, "more than 4 train numbers"),
])
def test_impossible_values_are_rejected_with_the_engines_reason(tmp_path, fields, reason):
    events, report = imported(feed(tmp_path / "feed.csv", row("9", **fields)))
    if reason is None:
        assert report.written == len(events) == 1 and events[0]["carriages"] is None and report.notes
        runs_clean(events, tmp_path)
    else:
        assert events == [] and len(report.rejected_rows) == 1
        where, why = report.rejected_rows[0]
        assert where == "id '9'" and why.startswith(reason)


@pytest.mark.parametrize(("record_id", "reason"), [
    ("", "no id"), ("  ", "no id"), ("7\x07", "exposure_id is longer than 128"), ("x" * 130, "exposure_id is longer"),
])
def test_bad_ids_are_rejected(tmp_path, record_id, reason):
    _, report = imported(feed(tmp_path / "feed.csv", row(record_id)))
    assert report.written == 0 and report.rejected_rows[0][1].startswith(reason)


def test_a_repeated_id_is_rejected_not_a_silent_replacement(tmp_path):
    events, report = imported(feed(tmp_path / "feed.csv", row("1"), row("1", t_no="G9")))
    assert [e["service"] for e in events] == ["G7"]
    assert report.rejected_rows == [("id '1'", "duplicate id: it would replace the earlier record's exposure")]


def test_a_missing_column_stops_the_import_naming_the_columns(tmp_path):
    (tmp_path / "feed.csv").write_text("t_date,t_type,t_no\n2020-01-20,2,G7\n")
    with pytest.raises(InputError, match=r"lacks the column\(s\) id: a nosugar feed has id, t_date, t_type, t_no"):
        list(read_records(str(tmp_path / "feed.csv")))
    (tmp_path / "empty.csv").write_text("")
    done = tracer("import", "nosugar", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "x.jsonl"))
    assert done.returncode == 2 and done.stderr.decode().count("\n") == 1 and b"lacks the column" in done.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_the_report_names_each_rejected_row(tmp_path):
    source = feed(tmp_path / "feed.csv", row("1"), "2,2020", row("3", t_date="2020-13-45"))
    done = tracer("import", "nosugar", str(source), "--out", str(tmp_path / "out.jsonl"))
    assert done.returncode == 0, done.stderr
    report = done.stderr.decode()
    assert "records        3 read" in report and "written        1 as 1 exposure events" in report
    assert "rejected row   line 3: 2 fields where the header has 13" in report
    assert "rejected row   id '3': date is not a valid date: '2020-13-45'" in report


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "relative path"])
def test_out_that_is_the_input_is_refused_and_the_input_kept(tmp_path, how):
    source = feed(tmp_path / "feed.csv", row("1"))
    before = source.read_bytes()
    out = tmp_path / "out.jsonl"
    if how == "symlink":
        out.symlink_to(source)
    elif how == "hard link":
        os.link(source, out)
    else:
        out = source if how == "same path" else Path(os.path.relpath(source))
    done = tracer("import", "nosugar", str(source), "--out", str(out))
    assert done.returncode == 2 and done.stderr.startswith(b"tracer: error: cannot write ")
    assert b"it is, or is inside, the input" in done.stderr and source.read_bytes() == before


@pytest.mark.parametrize("target", ["/dev/full", "missing/out.jsonl", "folder"])
def test_an_output_error_is_an_output_error(tmp_path, target):
    source = feed(tmp_path / "feed.csv", row("1"))
    (tmp_path / "folder").mkdir()
    out = target if target.startswith("/") else str(tmp_path / target)
    done = tracer("import", "nosugar", str(source), "--out", out)
    assert done.returncode == 2 and done.stderr.decode().count("\n") == 1
    assert done.stderr.decode().startswith(f"tracer: error: cannot write {out}: ")


def test_an_input_error_is_an_input_error(tmp_path):
    (tmp_path / "folder").mkdir()
    done = tracer("import", "nosugar", str(tmp_path / "folder"), "--out", str(tmp_path / "out.jsonl"))
    assert done.returncode == 2
    assert done.stderr.decode() == f"tracer: error: cannot read {tmp_path / 'folder'}: Is a directory\n"
    assert not (tmp_path / "out.jsonl").exists()


def test_a_failed_import_leaves_the_old_output_whole(tmp_path):
    source = feed(tmp_path / "feed.csv", *(row(str(n)) for n in range(200)))
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"the previous import\n")

    def small_files() -> None:  # EFBIG past 4 KiB: a disk or quota limit mid-write
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    done = tracer("import", "nosugar", str(source), "--out", str(out), preexec_fn=small_files)
    assert done.returncode == 2 and done.stderr == f"tracer: error: cannot write {out}: File too large\n".encode()
    assert out.read_bytes() == b"the previous import\n" and sorted(os.listdir(tmp_path)) == ["feed.csv", "out.jsonl"]


@pytest.mark.skipif(FEED is None, reason="shared/data is not beside the checkout")
def test_the_real_feed_adds_up_and_runs_clean(tmp_path):
    events, report = imported(FEED)
    assert report.records == 3092 and report.events == len(events) >= 1690
    assert len(report.rejected_rows) == sum(report.rejected.values()) <= 10
    runs_clean(events, tmp_path)


def test_no_two_records_share_an_exposure_id(tmp_path):
    """Record 5's two services are nosugar:5/1 and nosugar:5/2: a record whose id is 5/1 is refused."""
    events, report = imported(feed(tmp_path / "feed.csv", row("5", t_no="G1/G2"), row("5/1", t_no="D9"), row("6/")))
    assert [e["exposure_id"] for e in events] == ["nosugar:5/1", "nosugar:5/2"]
    assert [where for where, _ in report.rejected_rows] == ["id '5/1'", "id '6/'"]
    assert {why for _, why in report.rejected_rows} == {
        "id holds '/', which numbers a record's services in its exposure ids"
    }


@pytest.mark.parametrize(("t_start", "accepted"), [
    ("2099/01/15 10:00:00", False),
    ("2020/01/18 23:59:59", False),  # the day before the service date's day before
    ("2020/01/19 00:00:00", True),  # 00:00 of the day before
    ("2020/01/24 23:59:59", True),  # max_ride_hours (72) after the end of the day after
    ("2020/01/25 00:00:00", False),
])
def test_an_exposure_start_far_from_its_date_is_rejected_as_tracer_run_would(tmp_path, t_start, accepted):
    events, report = imported(feed(tmp_path / "feed.csv", row("9", t_start=t_start, t_end="2099/12/31 00:00:00")))
    assert report.written == accepted and report.clean == accepted
    if accepted:
        runs_clean(events, tmp_path)
        return
    (_, why), = report.rejected_rows
    assert why.startswith("start ") and "is too far from service date 2020-01-20" in why
    event = {"type": "exposure", "exposure_id": "x", "mode": "train", "service": "G7", "date": "2020-01-20",
             "start": t_start.replace("/", "-").replace(" ", "T") + "+08:00"}
    (tmp_path / "raw.jsonl").write_bytes(orjson.dumps(event) + b"\n")
    settings = Settings(rules=RuleSettings(retention_days=120))
    assert run_embedded([str(tmp_path / "raw.jsonl")], tmp_path / "raw", settings).dead_letters == 1


@pytest.mark.parametrize("text", ["16-11号车厢", "A3-5号车厢", "加1-3号车厢"])
def test_a_carriage_range_that_is_not_ascending_numbers_is_rejected(tmp_path, text):
    events, report = imported(feed(tmp_path / "feed.csv", row("9", t_no_sub=text)))
    assert events == [] and report.rejected_rows[0][1].endswith("is not an ascending range of carriage numbers")


def test_a_forward_range_is_every_carriage_in_it(tmp_path):
    events, _ = imported(feed(tmp_path / "feed.csv", row("9", t_no_sub="11-13号车厢")))
    assert events[0]["carriages"] == ["11", "12", "13"]


@pytest.mark.parametrize("link", ["https://x/\x1b[31m", "https://x/\x00", "https://x/\u2028", "https://x/\x85"])
def test_a_source_link_with_control_characters_is_left_out_and_said(tmp_path, link):
    events, report = imported(feed(tmp_path / "feed.csv", row("9", source=link)))
    assert events[0]["source"] is None and report.notes == {"source link holds control characters: left out": 1}
    assert report.clean == 0
    runs_clean(events, tmp_path)


def test_a_header_naming_a_column_twice_stops_the_import_naming_it(tmp_path):
    (tmp_path / "feed.csv").write_text("id,t_date,t_type,t_no,id,t_no\n1,2020-01-20,2,G7,2,G8\n")
    with pytest.raises(InputError, match=r"names the column\(s\) 'id', 't_no' more than once"):
        list(read_records(str(tmp_path / "feed.csv")))


@pytest.mark.skipif(FEED is None, reason="shared/data is not beside the checkout")
def test_the_real_feed_imports_to_the_same_bytes_it_did():
    """The fixes refuse nothing the real feed holds (its ids are numbers, its ranges ascending)."""
    events, _ = imported(FEED)
    digest = hashlib.sha256(b"".join(map(json_record, events))).hexdigest()
    assert digest == "62ee962a408779b87b72903bd352283a3d06bba08bf198ec354797f8d1e36823"
