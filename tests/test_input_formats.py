"""``tracer run`` given a file that is not JSON Lines (issue 16, item 9): every dead letter says
what the file is and which importer to use; ``--max-dead-letter-share`` fails a pipeline."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import orjson
import pytest

from tracer.cli import TOO_MANY_DEAD_LETTERS, main
from tracer.formats import KINDS, FormatHint, describe

BROKEN = "broken JSON: unexpected character: line 1 column 1 (char 0)"


def dead_letters(out: Path) -> list[dict]:
    return [orjson.loads(line) for line in (out / "dead-letter.jsonl").read_bytes().splitlines()]


@pytest.mark.parametrize(("header", "importer"), [
    ("flight_no,date,id_type,id_number,seat", "manifest"),
    ("航班号,日期,证件号码,座位", "manifest"),
    ("train_no,date,carriage,seat,from,to,id_number", "tickets"),
    ("车次,乘车日期,车厢,席位,证件号码", "tickets"),
    ("card_no,deal_date,deal_type,company_name,station", "taps"),
    ("id_number;subdistrict", "registry"),
    ("\ufeffid,t_date,t_start,t_end,t_type,t_no,t_memo", "nosugar"),
    ("id\tt_date\tt_type\tt_no", "nosugar"),
])
def test_a_csv_header_names_its_importer(header, importer):
    told = describe(header.encode(), header=True)
    assert told is not None and told.startswith("not JSON Lines but a CSV file (header: ")
    assert f"`tracer import {importer} FILE --out events.jsonl`" in told


def test_an_unknown_header_lists_every_importer():
    told = describe(b"a,b,c", header=True)
    assert told == ("not JSON Lines but a CSV file (header: a, b, c): convert it with the "
                    "`tracer import manifest|tickets|taps|registry|nosugar` that fits its columns (docs/import.md), "
                    "then tracer run its output")


@pytest.mark.parametrize(("first", "what"), [
    (b"PK\x03\x04\x14\x00", "an XLSX workbook (or another zip file)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1", "an XLS workbook"),
    (b"\x1f\x8b\x08\x00", "a gzip-compressed file"),
    (b'  [{"type": "trip"}', "a JSON array"),
])
def test_files_that_are_not_text_or_not_lines_say_what_they_are(first, what):
    assert (describe(first, header=True) or "").startswith(f"not JSON Lines but {what}")


@pytest.mark.parametrize("line", [b'{"type": "trip", "person_id": "P1",', b"hello", b"\xff\xfe,x"])
def test_a_broken_json_line_or_plain_text_is_not_called_a_csv(line):
    assert describe(line, header=True) is None and describe(line, header=False) is None


def test_the_first_line_decides_for_the_whole_input_and_other_reasons_stay():
    hint = FormatHint(sees_first_line=True)
    assert "tracer import manifest" in hint.reason(1, b"flight_no,date", BROKEN)
    assert "tracer import manifest" in hint.reason(2, b"MU5101,2020-01-15", BROKEN)
    assert hint.reason(3, b'{"type": "x"}', "unknown type 'x'") == "unknown type 'x'"
    resumed = FormatHint(sees_first_line=False)  # a reader that starts past line 1 judges each line
    assert resumed.reason(5, b"MU5101,2020-01-15", BROKEN).startswith(
        "not JSON Lines but a row of delimited values (a CSV file?): convert the file with the `tracer import")


def test_tracer_run_on_a_manifest_csv_says_so_on_every_line(tmp_path):
    source = tmp_path / "manifest.csv"
    source.write_text("flight_no,date,id_number,seat\nMU5101,2020-01-15,310101199001011234,12A\n"
                      "MU5101,2020-01-15,310101199001015678,12B\n")
    assert main(["run", str(source), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    letters = dead_letters(tmp_path / "out")
    assert [letter["line"] for letter in letters] == [1, 2, 3]
    assert all("`tracer import manifest FILE --out events.jsonl`" in letter["reason"] for letter in letters)
    assert letters[0]["reason"].startswith("not JSON Lines but a CSV file (header: flight_no, date, id_number, seat)")
    assert letters[1]["reason"].endswith("(broken JSON: unexpected character: line 1 column 1 (char 0))")


def test_tracer_run_on_an_xlsx_a_gzip_and_a_json_array(tmp_path):
    book = io.BytesIO()
    with zipfile.ZipFile(book, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>\n" * 3)
    (tmp_path / "trips.xlsx").write_bytes(book.getvalue() + b"\n")
    (tmp_path / "events.jsonl.gz").write_bytes(gzip.compress(b'{"type": "person"}\n') + b"\n")
    (tmp_path / "events.json").write_bytes(b'[{"type": "person", "person_id": "P1", "subdistrict": "310101002"}]\n')
    for name, what in (("trips.xlsx", "an XLSX workbook"), ("events.jsonl.gz", "a gzip-compressed file"),
                       ("events.json", "a JSON array")):
        out = tmp_path / f"out-{name}"
        assert main(["run", str(tmp_path / name), "--out", str(out), "--quiet"]) == 0
        letters = dead_letters(out)
        assert letters and all(letter["reason"].startswith(f"not JSON Lines but {what}") for letter in letters)


def test_max_dead_letter_share_fails_the_run_after_writing_it(tmp_path, capsys):
    good = b'{"type": "person", "person_id": "P%d", "subdistrict": "310101002"}\n'
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(good % n for n in range(3)) + b"not json\n")  # 1 of 4 rejected
    run = ["run", str(source), "--quiet", "--max-dead-letter-share"]
    assert main([*run, "0.25", "--out", str(tmp_path / "a")]) == 0  # exactly the share: not more
    assert main([*run, "0.2", "--out", str(tmp_path / "b")]) == TOO_MANY_DEAD_LETTERS == 3
    assert capsys.readouterr().err == (
        f"tracer: 1 of 4 lines read (25.0%) went to the dead letters, more than --max-dead-letter-share 0.2: "
        f"see {tmp_path / 'b' / 'dead-letter.jsonl'}\n")
    assert len(dead_letters(tmp_path / "b")) == 1  # the outputs are written all the same
    assert main(["run", str(source), "--quiet", "--out", str(tmp_path / "c")]) == 0  # off by default
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert main(["run", str(tmp_path / "empty.jsonl"), "--quiet", "--out", str(tmp_path / "d"),
                 "--max-dead-letter-share", "0"]) == 0  # no line, no share
    assert main([*run, "0", "--out", str(tmp_path / "e")]) == 3  # 0: any rejected line fails


@pytest.mark.parametrize("share", ["1.5", "-0.1", "half", "nan"])
def test_a_share_outside_zero_to_one_is_refused(tmp_path, share, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "x", "--out", str(tmp_path), "--max-dead-letter-share", share])
    assert stop.value.code == 2 and "expected a share between 0 and 1" in capsys.readouterr().err


def test_workers_say_the_same(tmp_path):
    """``tracer run --workers 2`` dead-letters what is not JSON Lines as one process does."""
    source = tmp_path / "tickets.csv"
    source.write_text("车次,乘车日期,车厢,席位,证件号码\nG1234,2020-01-20,5,7F,310101199001011234\n")
    letters = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out-{workers}"
        assert main(["run", str(source), "--out", str(out), "--quiet", "--workers", workers]) == 0
        letters[workers] = dead_letters(out)
    assert letters["1"] == letters["2"] and len(letters["1"]) == 2
    assert all("`tracer import tickets FILE --out events.jsonl`" in letter["reason"] for letter in letters["2"])


def test_a_run_fed_a_csv_says_so_once_on_stderr_naming_the_input(tmp_path, caplog):
    """A run fed a CSV ends with exit 0 and dead letters; a warning names the input and the importer
    once (not once a line), says nothing for JSON Lines, and never shows a data row's values."""
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("flight_no,date,id_number,seat\nMU5101,2020-01-15,310101199001011234,12A\n"
                        "MU5101,2020-01-15,310101199001015678,12B\n")
    rows = tmp_path / "rows.csv"  # no header: its first line is data
    rows.write_text("MU5101,2020-01-15,310101199001011234,12A\n")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"type": "person", "person_id": "P1", "subdistrict": "310101002"}\nnot json\n')
    for workers in ("1", "2"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="tracer.formats"):
            assert main(["run", str(events), str(manifest), str(rows), "--out", str(tmp_path / f"out-{workers}"),
                         "--quiet", "--workers", workers]) == 0
        said = [record.getMessage() for record in caplog.records if record.name == "tracer.formats"]
        assert said == [
            f"{manifest}: not JSON Lines but a CSV file (header: flight_no, date, id_number, seat): convert it "
            "with `tracer import manifest FILE --out events.jsonl`, then tracer run events.jsonl (its lines go to "
            "the dead letters)",
            f"{rows}: not JSON Lines but a row of delimited values (a CSV file?): convert the file with the `tracer "
            f"import {'|'.join(KINDS)}` that fits its columns (docs/import.md), then tracer run its output (its lines "
            "go to the dead letters)"]
        assert not any("3101011990" in message for message in said)


def test_the_run_summary_names_every_output(tmp_path, capsys):
    source = tmp_path / "events.jsonl"
    source.write_bytes(b'{"type": "person", "person_id": "P1", "subdistrict": "310101002"}\n')
    out = tmp_path / "out"
    assert main(["run", str(source), "--out", str(out)]) == 0
    said = capsys.readouterr()
    named = next(line for line in (said.out + said.err).splitlines() if line.startswith("outputs"))
    for name in ("contacts.jsonl", "alerts/", "status.jsonl", "dead-letter.jsonl"):
        assert f"{out}/{name}" in named and (out / name).exists()
