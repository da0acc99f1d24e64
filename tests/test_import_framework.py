"""The importer framework: one identity across feeds, messy CSV as report lines, whole-or-nothing output.

Exercised through the real kinds (registry, manifest) and the real command, never a stand-in.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from connectors.importers.base import Context, run_import
from connectors.importers.csvfeed import FIELD_LIMIT, BadRow, read_rows
from connectors.importers.identity import BadId, PersonIds, load_ids
from connectors.importers.kinds import KINDS
from tracer.documents import check_digit
from tracer.errors import ConfigError, InputError
from tracer.settings import Settings

KEY = b"k3y-for-tests-0123456789abcdef"
ID = "11010519491231002X"  # a valid check character


def tracer(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "TRACER_ID_KEY"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "tracer.cli", *args], capture_output=True, timeout=120, env=environment, text=True
    )


def write(path: Path, *lines: str | bytes) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def test_one_document_is_one_person_however_typed_and_kinds_never_collide() -> None:
    ids = PersonIds(KEY)
    typed = (ID, ID.lower(), f" {ID} ", "１１０１０５１９４９１２３１００２Ｘ")
    same = {ids.person_id("id_card", text) for text in typed}
    assert len(same) == 1 and same.pop().startswith("pid:")
    assert len(ids.person_id("id_card", ID)) == 4 + 24
    assert ids.person_id("passport", "E12345678") != ids.person_id("card", "E12345678")
    assert PersonIds(b"another-key-0123456789").person_id("id_card", ID) != ids.person_id("id_card", ID)
    assert check_digit(ID[:17]) == "X"


@pytest.mark.parametrize(
    ("kind", "number", "reason"),
    [
        ("id_card", "110105194912310021", "fails its check digit"),
        ("id_card", "1234", "not 18 characters"),
        ("id_card", "", "no id_card number"),
        ("passport", "E1\x002345", "not 5 to 32 ASCII letters"),
        ("visa", "E12345678", "unknown ID type"),
    ],
)
def test_a_bad_number_is_refused_without_repeating_it(kind: str, number: str, reason: str) -> None:
    with pytest.raises(BadId, match=reason) as refused:
        PersonIds(KEY).person_id(kind, number)
    assert not number or number not in str(refused.value)


def test_the_key_comes_from_the_variable_or_a_file_and_its_absence_says_what_is_expected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRACER_ID_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"needs a key of at least 16 .* in \$TRACER_ID_KEY or --id-key-file"):
        load_ids(None)
    (tmp_path / "key").write_bytes(KEY + b"\n")
    from_file = load_ids(tmp_path / "key").person_id("id_card", ID)
    monkeypatch.setenv("TRACER_ID_KEY", KEY.decode())
    assert load_ids(None).person_id("id_card", ID) == from_file == PersonIds(KEY).person_id("id_card", ID)


def test_messy_csv_rows_become_bad_rows_with_their_lines(tmp_path: Path) -> None:
    source = write(
        tmp_path / "feed.csv",
        "\ufeffA, b ,c",  # a byte-order mark, spaces and case in the header
        "1,2,3",
        "",
        "1,2",
        b"1,\xff,3",
        "1,2,3,4",
        '1,"' + "x" * (FIELD_LIMIT + 1) + '",3',
        "4,5,6",
    )
    rows = list(read_rows(str(source), ("a", "b"), ("c", "d")))
    assert rows[0] == (2, {"a": "1", "b": "2", "c": "3", "d": ""})
    assert rows[1:4] == [
        BadRow(4, "2 fields where the header has 3"),
        BadRow(5, "invalid UTF-8"),
        BadRow(6, "4 fields where the header has 3"),
    ]
    assert isinstance(rows[4], BadRow) and "field larger than field limit" in rows[4].reason
    assert rows[-1] == (8, {"a": "4", "b": "5", "c": "6", "d": ""})


def test_a_header_without_the_required_columns_names_them(tmp_path: Path) -> None:
    source = write(tmp_path / "reg.csv", "id_number,home", f"{ID},310101002")
    with pytest.raises(InputError, match=r"lacks the column\(s\) id_type, subdistrict: a residence list has"):
        list(read_rows(str(source), KINDS["registry"].required, (), KINDS["registry"].what))
    out = tmp_path / "out.jsonl"
    done = tracer("import", "registry", str(source), "--out", str(out), env={"TRACER_ID_KEY": KEY.decode()})
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "lacks the column(s)" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize(("data", "said"), [
    (b"PK\x03\x04\x14\x00junk", "an XLSX workbook (or another zip file), not a CSV file: save the sheet as CSV"),
    (gzip.compress(b"id_type,id_number,subdistrict\n"), "a gzip-compressed file, not a CSV file: decompress it first"),
])
def test_a_file_that_is_no_text_is_named_for_what_it_is(tmp_path: Path, data: bytes, said: str) -> None:
    """A workbook or a gzip file is said to be one (a newcomer read 'lacks the column(s)' for an XLSX)."""
    source = tmp_path / "residents.xlsx"
    source.write_bytes(data)
    with pytest.raises(InputError, match=re.escape(f"{source} is {said}")):
        list(read_rows(str(source), KINDS["registry"].required, (), KINDS["registry"].what))


def test_run_import_counts_every_record_and_writes_nothing_raw(tmp_path: Path) -> None:
    source = write(
        tmp_path / "reg.csv",
        "id_type,id_number,subdistrict",
        f"身份证,{ID},310101002",
        "id_card,110105194912310021,310101002",  # bad check character
        "passport,E12345678,外滩",
        "passport,E12345678,外滩街道",  # the same row again
        "passport,E23456789,999999999",
        "passport,E34567890,Atlantis",
        "passport,E45678901",
    )
    out = tmp_path / "out.jsonl"
    report = run_import(KINDS["registry"], [str(source)], str(out), Settings(), PersonIds(KEY))
    assert (report.records, report.written, report.events) == (7, 2, 2)
    assert [where for where, _ in report.rejected_rows] == ["line 3", "line 5", "line 6", "line 7", "line 8"]
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [e["subdistrict"] for e in events] == ["310101002", "310101013"]
    text = out.read_text() + repr(report)
    assert not any(raw in text for raw in (ID, "E12345678", "E23456789", "110105194912310021"))


def test_a_failed_import_leaves_no_output(tmp_path: Path) -> None:
    good = write(tmp_path / "a.csv", "id_type,id_number,subdistrict", f"id_card,{ID},310101002")
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    with pytest.raises(InputError, match="cannot read"):
        run_import(KINDS["registry"], [str(good), str(tmp_path / "missing.csv")], str(out), Settings(), PersonIds(KEY))
    assert out.read_text() == "old\n"
    args = argparse.Namespace()
    report = run_import(KINDS["registry"], [str(good), str(good)], str(out), Settings(), PersonIds(KEY), args)
    assert report.written == 1 and report.rejected_rows == [(f"{good} line 2", "repeats an earlier row")]


def test_the_fast_paths_lines_go_to_standard_output_and_a_full_disk_is_an_output_error(tmp_path: Path) -> None:
    """Polars writes the fast path's lines itself (``Output.write_lines``), merged in line order with
    the row path's: to standard output as to a file, and a write that fails is one error naming the
    target, never a traceback."""
    rows = [f"id_card,{ID},310101002", "id_card,1,x", '"passport",E23456789,外滩', "passport,E12345678,310101013"]
    source = write(tmp_path / "reg.csv", "id_type,id_number,subdistrict", *rows)
    (tmp_path / "key").write_bytes(KEY)
    done = tracer("import", "registry", str(source), "--out", "-", "--id-key-file", str(tmp_path / "key"))
    assert done.returncode == 0, done.stderr
    run_import(KINDS["registry"], [str(source)], str(tmp_path / "out.jsonl"), Settings(), PersonIds(KEY),
               columnar=False)
    assert done.stdout == (tmp_path / "out.jsonl").read_text() and done.stdout.count("\n") == 3
    done = tracer("import", "registry", str(source), "--out", "/dev/full", "--id-key-file", str(tmp_path / "key"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("tracer: error: cannot write /dev/full: ")


def test_the_command_prints_the_report_and_needs_a_key(tmp_path: Path) -> None:
    source = write(tmp_path / "reg.csv", "id_type,id_number,subdistrict", f"id_card,{ID},310101002", "id_card,1,x")
    done = tracer("import", "registry", str(source), "--out", str(tmp_path / "out.jsonl"))
    assert done.returncode == 2 and "$TRACER_ID_KEY or --id-key-file" in done.stderr
    (tmp_path / "key").write_bytes(KEY)
    done = tracer("import", "registry", str(source), "--out", str(tmp_path / "o.jsonl"), "--id-key-file",
                  str(tmp_path / "key"))
    assert done.returncode == 0, done.stderr
    assert "records        2 read" in done.stderr and "written        1 as 1 events" in done.stderr
    assert "rejected row   line 3: id_card number is not 18 characters" in done.stderr


def test_the_recheck_of_lines_valid_by_construction_catches_one_the_engine_refuses() -> None:
    """The guard the fast paths' tests run with: a line written without the engine's check is
    re-parsed, and one the engine refuses fails loudly (it never reaches a feed)."""
    context = Context(Settings(), None, argparse.Namespace(), recheck=True)
    good = orjson.dumps({"type": "person", "person_id": "pid:1", "subdistrict": "310101002"}) + b"\n"
    context.written(2, good, 1)
    with pytest.raises(AssertionError, match="a line built valid is not"):
        context.written(3, good + b'{"type":"person","person_id":""}\n', 2)
    assert context.report.written == 1 and context.pending == [(2, good)]
