"""The registry, manifest and cases importers on messy input: every bad row is one report line, never
a traceback, and the columnar path writes exactly what the row path (the reference) writes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.importers import columnar, csvfeed
from connectors.importers.base import run_import
from connectors.importers.identity import PersonIds
from connectors.importers.kinds import KINDS
from connectors.importers.report import Report
from tracer.documents import check_digit
from tracer.errors import InputError
from tracer.events import parse_line
from tracer.settings import Settings
from tracer.simulate import generate

KEY = b"kinds-test-key-0123456789abcdef"
MANIFEST = "flight,date,id_type,id_number,seat,crew,crew_rows,departure,arrival"


def number(index: int) -> str:
    first17 = f"31010119800101{index:03d}"
    return first17 + check_digit(first17)


def both(kind: str, path: Path, tmp_path: Path) -> tuple[list[dict], Report]:
    """Import ``path`` both ways; they must agree byte for byte and count for count."""
    results = []
    for fast in (True, False):
        out = tmp_path / f"{kind}-{fast}.jsonl"
        report = run_import(KINDS[kind], [str(path)], str(out), Settings(), PersonIds(KEY), columnar=fast,
                            recheck=fast)
        results.append((out.read_bytes(), report))
    (fast_bytes, fast_report), (row_bytes, row_report) = results
    assert fast_bytes == row_bytes and fast_report == row_report
    for line in row_bytes.splitlines():
        parse_line(line, 72 * 3_600_000_000)
    return [orjson.loads(line) for line in row_bytes.splitlines()], row_report


def write(path: Path, *lines: str | bytes) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def test_manifest_rows_normalised_and_messy_rows_reported(tmp_path: Path) -> None:
    source = write(
        tmp_path / "m.csv",
        MANIFEST,
        f"MU5101,2020-01-15,id_card,{number(1)},32C,,,08:00,10:15",
        f"mu 5101,2020/1/15,身份证,{number(2).lower()},34 a,N,,08:00,10:15",  # same flight, typed otherwise
        "ＭＵ５１０１,2020-01-15,passport,E1234567,,是,1-20,08:00,10:15",  # crew, full-width flight
        f"MU5101,2020-01-15,id_card,{number(3)},,,,08:00,10:15",  # blank seat: used, noted
        f"MU5101,2020-01-15,id_card,{number(1)},32C,,,08:00,10:15",  # the first row again
        f"MU5101,2020-01-15,id_card,{number(3)},12A,,,08:00,10:15",  # a correction: later wins
        f"MU5101,2020-01-15,id_card,{number(4)[:-1]}0,12B,,,08:00,10:15",  # wrong check character
        f"MU5101,2020-01-15,visa,{number(5)},12C,,,08:00,10:15",
        f"MU5101,2020-01-15,id_card,{number(6)},12D,,,25:99,10:15",
        f"MU5101,2020-13-01,id_card,{number(7)},12E,,,08:00,10:15",
        f"MU51O1X,2020-01-15,id_card,{number(8)},12F,,,08:00,10:15",
        f"MU5101,2020-01-15,id_card,{number(9)},14A,maybe,,08:00,10:15",
        f"9C8888,2020-01-15,id_card,{number(10)},14B,,,23:30,01:10",  # lands after midnight
        f'"MU5101",2020-01-15,id_card,{number(11)},"15\nA",,,08:00,10:15',  # a quoted line break
        "MU5101,2020-01-15",
        "",
    )
    events, report = both("manifest", source, tmp_path)
    assert report.records == 15 and report.written == 7
    assert [e["seat"] for e in events if "seat" in e] == ["32C", "34A", "12A", "14B", "15A"]
    crew = next(e for e in events if e.get("role") == "crew")
    assert crew["service"] == "MU5101" and crew["crew_rows"] == "1-20" and "seat" not in crew
    late = next(e for e in events if e["service"] == "9C8888")
    assert (late["board_time"], late["alight_time"]) == ("2020-01-15T23:30:00+08:00", "2020-01-16T01:10:00+08:00")
    assert report.notes == {"no seat: a general contact of everyone aboard": 1,
                            "person listed again on the flight: the later row wins": 1}
    reasons = dict(report.rejected_rows)
    assert reasons["line 6"] == "repeats an earlier row"
    assert reasons["line 8"] == "id_card number fails its check digit"
    assert reasons["line 9"].startswith("unknown ID type")
    assert reasons["line 10"] == "departure is not a time of the calendar"
    assert reasons["line 11"].startswith("date: ")
    assert reasons["line 12"].startswith("flight: expected a flight number")
    assert reasons["line 13"].startswith("crew: expected yes or no")
    assert reasons["line 17"] == "2 fields where the header has 9"
    assert not any(number(n) in str(report) for n in range(1, 12))


def test_a_manifest_without_its_columns_is_one_error_naming_them(tmp_path: Path) -> None:
    source = write(tmp_path / "m.csv", "flight,date,id_number,seat", "MU5101,2020-01-15,x,1A")
    for fast in (True, False):
        with pytest.raises(InputError, match=r"lacks the column\(s\) id_type, departure, arrival: a flight manifest"):
            run_import(KINDS["manifest"], [str(source)], str(tmp_path / "o"), Settings(), PersonIds(KEY), columnar=fast)


def test_registry_names_codes_and_people_listed_twice(tmp_path: Path) -> None:
    source = write(
        tmp_path / "r.csv",
        "\ufeffID_Type, ID_Number ,Subdistrict",
        f"id_card,{number(1)},310101002",
        f"id_card,{number(2)},外滩",
        f"id_card,{number(3)},中国（上海）自由贸易试验区（保税片区）",
        f"id_card,{number(1)},310101013",  # moved: the later row wins
        f"id_card,{number(4)},虹桥",
        f"id_card,{number(5)},310101999",
        f"id_card,{number(6)},",
        f"id_card,{number(2)},外滩街道",  # the same home again
        b"id_card,\xff,310101002",
    )
    events, report = both("registry", source, tmp_path)
    assert [e["subdistrict"] for e in events] == ["310101002", "310101013", "310115501", "310101013"]
    assert events[0]["person_id"] == events[3]["person_id"]
    assert dict(report.rejected_rows) == {
        "line 6": "subdistrict name is ambiguous: 2 listed subdistricts have it; give the code",
        "line 7": "subdistrict code not in the subdistrict list (registry.subdistricts)",
        "line 8": "no subdistrict",
        "line 9": "repeats an earlier row",
        "line 10": "invalid UTF-8",
    }
    assert report.notes == {"person listed again with another home: the later row wins": 1}


def test_cases_statuses_and_times(tmp_path: Path) -> None:
    source = write(
        tmp_path / "c.csv",
        "case_id,id_type,id_number,status,onset,isolated_at,reported_at",
        f"C1,id_card,{number(1)},确诊,2020/1/14,2020-01-15 09:00,2020-01-15 12:00:30",
        f"C2,id_card,{number(2)},asymptomatic,2020-01-14,,2020-01-15T12:00:00+08:00",
        f"C3,id_card,{number(3)},sick,2020-01-14,,2020-01-15 12:00",
        f"C4,id_card,{number(4)},confirmed,yesterday,,2020-01-15 12:00",
        f"C5,id_card,{number(5)},confirmed,2020-01-14,,noon",
    )
    events, report = both("cases", source, tmp_path)
    assert [(e["status"], e["onset"], e["isolated_at"], e["reported_at"]) for e in events] == [
        ("confirmed", "2020-01-14", "2020-01-15T09:00:00+08:00", "2020-01-15T12:00:30+08:00"),
        ("asymptomatic", "2020-01-14", None, "2020-01-15T12:00:00+08:00"),
    ]
    reasons = dict(report.rejected_rows)
    assert reasons["line 4"].startswith("status: expected one of confirmed")
    assert reasons["line 5"].startswith("onset date: expected a date like")
    assert reasons["line 6"].startswith("reported_at is not a time like")


def test_generated_feeds_read_the_same_in_small_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunk edges fall inside rows and runs of broken lines: the columnar path still agrees."""
    generate(2000, 2, 4, 3, tmp_path / "city", truth=False, feeds=tmp_path / "feeds")
    monkeypatch.setattr(columnar, "CHUNK_BYTES", 997)
    for kind, name in (("registry", "registry.csv"), ("manifest", "manifests.csv"), ("cases", "cases.csv")):
        _, report = both(kind, tmp_path / "feeds" / name, tmp_path)
        assert report.written > 0


_VALUES = {
    "flight": ["MU5101", "mu 5101", "ＭＵ５１０１", "9C8888", "", "MU", "G1234"],
    "date": ["2020-01-15", "2020/1/15", "2020-01-16", "2020-02-30", ""],
    "id_type": ["id_card", "身份证", "ID", " id_card", "passport", "visa", ""],
    "id_number": [number(1), number(2), number(2).lower(), f" {number(3)} ", "３１０１０１１９８００１０１００１８",
                  number(4)[:-1] + "0", "E1234567", "12", ""],
    "seat": ["32C", "32 c", "", "C", "１A", "7F"],
    "crew": ["", "Y", "N", "是", "maybe", "1"],
    "crew_rows": ["", "1-20", "5", "x"],
    "departure": ["08:00", "2020-01-15 08:00", "25:00", "23:30"],
    "arrival": ["10:15", "01:10", "2020-01-15 07:00", ""],
    "subdistrict": ["310101002", "外滩", "外滩街道", "虹桥", "310101999", "", "中国（上海）自由贸易试验区（保税片区）"],
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mix_of_messy_rows_reads_the_same_both_ways(tmp_path: Path, data: st.DataObject) -> None:
    """Rows drawn from messy values, repeats and broken lines: the fast path agrees with the rows'."""
    for kind, columns in (("manifest", MANIFEST.split(",")), ("registry", ["id_type", "id_number", "subdistrict"])):
        lines = [",".join(columns)]
        for _ in range(data.draw(st.integers(0, 30))):
            row = ",".join(data.draw(st.sampled_from(_VALUES[column])) for column in columns)
            lines.append(data.draw(st.sampled_from([row, row, row, row[: len(row) // 2], f'"{row}"', ""])))
        both(kind, write(tmp_path / f"{kind}.csv", *lines), tmp_path)


_PIECES = ["a", "1", "", "\r", "\r\n", "\n", "\x00", "\ufffd", "中", " ", "x" * 70, '"', '""']
_QUOTED = ['"q"', '""', '"a,\nb"', '"x""y"']
_FIELD = st.one_of(st.lists(st.sampled_from(_PIECES), max_size=4).map("".join), st.sampled_from(_QUOTED))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.lists(_FIELD, max_size=5).map(",".join), max_size=12),
       bad=st.sampled_from([b"", b"\xff", b"\xef\xbb\xbf"]), chunk=st.sampled_from([7, 64, 1 << 22]))
def test_the_columnar_reader_gives_the_row_readers_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           lines: list[str], bad: bytes, chunk: int) -> None:
    """Lines of any shape (fields too few or too many, quoted fields over several lines, carriage
    returns, NUL, bad bytes, a replacement character, long lines) read in chunks of any size: the
    plain ones split into columns and the rest read by the csv module give exactly the row reader's
    records and BadRows; quotes anywhere, also inside a field (which the csv module takes as it is)
    and after a quoted part's closing quote."""
    body = "\n".join(lines).encode()
    monkeypatch.setattr(columnar, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(columnar, "FIELD_LIMIT", 64)
    monkeypatch.setattr(csvfeed, "FIELD_LIMIT", 64)
    path = tmp_path / "feed.csv"
    path.write_bytes(b"a,b,c\n" + body.replace(b"1", bad, 1) + b"\n")
    expected = list(csvfeed.read_rows(str(path), ["a", "c"], ["b", "d"]))
    found: list = []
    for part in columnar.read_chunks(str(path), ["a", "c"], ["b", "d"]):
        plain = [(row.pop("line"), row) for row in part.plain.to_dicts()]
        found += sorted([*plain, *part.others], key=lambda item: getattr(item, "line", item[0]))
    assert found == expected


@pytest.mark.parametrize("chunk", [4, 7, 1 << 22])
def test_a_quote_inside_a_field_opens_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """``a"`` then ``"`` twice: the csv module takes the first quote as it is (it is inside a field)
    and reads the next two lines as one quoted field, so the rows rejected are at lines 2 and 4;
    the chunked reader, cutting anywhere, numbers them so too (it once saw 2, 3 and 4)."""
    monkeypatch.setattr(columnar, "CHUNK_BYTES", chunk)
    path = tmp_path / "feed.csv"
    path.write_bytes(b'a,b,c\na"\n"\n"\nx,y,z\n')
    expected = list(csvfeed.read_rows(str(path), ["a", "c"], ["b"]))
    found: list = []
    for part in columnar.read_chunks(str(path), ["a", "c"], ["b"]):
        plain = [(row.pop("line"), row) for row in part.plain.to_dicts()]
        found += sorted([*plain, *part.others], key=lambda item: getattr(item, "line", item[0]))
    assert [getattr(item, "line", None) for item in found] == [2, 4, None]
    assert found == expected
