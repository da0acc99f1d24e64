"""One normaliser (issue 16, item 8): service numbers, dates and station names in one form for every
reader, and ``tracer run``'s intake rewriting (or rejecting) a line written in another form."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.embedded import run_embedded
from tests.builders import case, lines, trip
from tracer import canonical
from tracer.alerts import fold
from tracer.cli import main
from tracer.intake import Intake
from tracer.oracle import expected_alerts, json_values
from tracer.settings import IntakeSettings, Settings


@pytest.mark.parametrize(("text", "mode", "read"), [
    ("mu 5101", "flight", "MU5101"), ("ＭＵ５１０１", "flight", "MU5101"), ("MU-5101", "flight", "MU5101"),
    ("9c8851", "flight", "9C8851"), ("3U 8888", "flight", "3U8888"), ("G5 1234", "flight", "G51234"),
    ("MU5101航班", "flight", "MU5101"), ("g 1234", "train", "G1234"), ("Ｇ１２３４次", "train", "G1234"),
    ("d-301", "train", "D301"), ("MU5101", "flight", "MU5101"),
    # not a number of its mode: an id, kept as its feed wrote it
    ("1461", "train", "1461"), ("S1", "train", "S1"), ("L2-20200120-0800", "metro", "L2-20200120-0800"),
    ("line 2", "metro", "line 2"), ("mu 5101", "metro", "mu 5101"), ("南京地铁10号线", "metro", "南京地铁10号线"),
    ("Y 87", "flight", "Y87"), ("charter 7", "flight", "charter 7"), ("GX", "train", "GX"),
])
def test_service_numbers_in_their_one_form(text, mode, read):
    assert canonical.service(text, mode) == read


@pytest.mark.parametrize(("number", "mode"), [
    ("MU5101", "flight"), ("9C8851", "flight"), ("3U8888", "flight"), ("CA1", "flight"), ("Y87532", "flight"),
    ("G1234", "train"), ("K1", "train"), ("Z40", "train"),
    ("L14", None), ("G12345", None), ("1461", None), ("", None), ("M", None),
])
def test_the_mode_told_from_a_number(number, mode):
    assert canonical.mode_of(number) == mode


@pytest.mark.parametrize(("text", "read"), [
    ("2020-01-15", "2020-01-15"), ("2020/01/15", "2020-01-15"), ("2020-1-5", "2020-01-05"), ("2020.1.5", "2020-01-05"),
    ("20200115", "2020-01-15"), ("2020年1月15日", "2020-01-15"), ("２０２０／１／１５", "2020-01-15"),
])
def test_dates_in_their_one_form(text, read):
    assert canonical.date(text) == read


@pytest.mark.parametrize(("text", "told"), [
    ("2020-02-30", "date: '2020-02-30' is not a day of the calendar"),
    ("2020/1-5", "date: expected a date like 2020-01-15, got '2020/1-5'"),
    ("15th Jan", "date: expected a date like 2020-01-15, got '15th Jan'"),
    ("", "date: expected a date like 2020-01-15, got ''"),
])
def test_a_date_it_cannot_read_says_what_it_expected(text, told):
    with pytest.raises(canonical.NotCanonical) as caught:
        canonical.date(text)
    assert caught.value.reason == told


@pytest.mark.parametrize(("text", "read"), [
    ("龙华路站", "龙华路"), ("上海虹桥火车站", "上海虹桥"), (" 虹桥  2号航站楼 ", "虹桥 2号航站楼"),
    ("Hongqiao Station", "Hongqiao"), ("ＰＶＧ", "PVG"), ("站", "站"),
])
def test_station_names_in_one_form(text, read):
    assert canonical.station(text) == read


def test_station_aliases_apply_to_the_one_form():
    aliases = {"虹桥": "上海虹桥", "Hongqiao": "上海虹桥"}
    names = ("虹桥站", "Hongqiao Station", "上海虹桥火车站")
    assert {canonical.station(name, aliases) for name in names} == {"上海虹桥"}


RIDE = {"type": "trip", "person_id": "P1", "mode": "flight", "service": "MU5101", "date": "2020-01-20",
        "board_time": "2020-01-20T08:00:00+08:00", "alight_time": "2020-01-20T10:00:00+08:00"}


def decode(settings: Settings, **fields: object):
    return Intake(settings).decode(orjson.dumps({**RIDE, **fields}))


def test_intake_rewrites_a_noncanonical_ride_with_a_warning():
    event, warning = decode(Settings(), service="mu 5101", date="2020/1/20")
    assert (event.service, event.date) == ("MU5101", "2020-01-20")
    assert warning == "rewritten to canonical form: service 'mu 5101' -> 'MU5101', date '2020/1/20' -> '2020-01-20'"
    exposure, warning = Intake(Settings()).decode(orjson.dumps(
        {"type": "exposure", "exposure_id": "X", "mode": "train", "service": "Ｇ１２３４", "date": "2020-1-5"}))
    assert (exposure.service, exposure.date) == ("G1234", "2020-01-05") and warning


def test_intake_rejects_it_when_told_to():
    strict = Settings(intake=IntakeSettings(rewrite_noncanonical=False))
    with pytest.raises(Exception, match=r"not in canonical form: service 'mu 5101' -> 'MU5101' "
                                        r"\(rewrite_noncanonical is off\)"):
        decode(strict, service="mu 5101")
    assert decode(strict) == (decode(Settings())[0], None)  # a canonical line passes either way


@pytest.mark.parametrize("fields", [{"date": "15th"}, {"date": 20200120}, {"service": ""}, {"mode": "bus"}])
def test_what_no_canonical_form_saves_keeps_the_parser_reason(fields):
    with pytest.raises(Exception) as caught:
        decode(Settings(), **fields)
    assert "canonical" not in str(caught.value)


def test_a_canonical_line_is_decoded_once_and_warns_never():
    intake = Intake(Settings())
    for _ in range(3):
        event, warning = intake.decode(orjson.dumps(RIDE))
        assert warning is None and event.service == "MU5101"
    assert "MU5101" in intake._canonical  # the next lines of this number cost a set lookup


def test_two_spellings_of_one_flight_meet_and_the_oracle_agrees(tmp_path: Path):
    events = [
        trip("P1", service="MU5101", seat="12A"),
        trip("P2", service="mu 5101", seat="13B", date="2020/1/20"),
        trip("P3", mode="train", service="ｇ１２３４", carriage="3", board="12:00", alight="14:00"),
        trip("P1", mode="train", service="G1234", carriage="3", board="12:00", alight="14:00"),
        case("C1", "P1"),
    ]
    (tmp_path / "events.jsonl").write_bytes(lines(events))
    summary = run_embedded([str(tmp_path / "events.jsonl")], tmp_path / "out", Settings())
    assert summary.dead_letters == 0 and summary.warnings == 2
    letters = [orjson.loads(line) for line in (tmp_path / "out" / "dead-letter.jsonl").read_bytes().splitlines()]
    assert {letter["severity"] for letter in letters} == {"warning"}
    got = fold(orjson.loads(line) for line in (tmp_path / "out" / "contacts.jsonl").read_bytes().splitlines())
    assert {(a["contact_person_id"], a["service"], a["level"]) for a in got.values()} == {
        ("P2", "MU5101", "close"), ("P3", "G1234", "close")}
    assert got == expected_alerts(json_values(lines(events).splitlines()))


def test_workers_route_both_spellings_to_one_worker(tmp_path: Path):
    """``tracer run --workers`` sends a trip to the worker of its service day before decoding it:
    the day of its canonical service and date, or ``mu 5101`` would never meet ``MU5101``."""
    events = [trip("P1", service="MU5101", seat="12A"), trip("P2", service="mu 5101", seat="13B", date="2020/1/20"),
              *(trip(f"Q{n}", service=f"CA{n}") for n in range(8)), case("C1", "P1")]
    (tmp_path / "events.jsonl").write_bytes(lines(events))
    assert main(["run", str(tmp_path / "events.jsonl"), "--out", str(tmp_path / "out"), "--workers", "2",
                 "--quiet"]) == 0
    got = fold(orjson.loads(line) for line in (tmp_path / "out" / "contacts.jsonl").read_bytes().splitlines())
    assert {(a["contact_person_id"], a["service"], a["level"]) for a in got.values()} == {("P2", "MU5101", "close")}


@pytest.mark.parametrize(("text", "line"), [
    ("5", "L5"), ("L5", "L5"), ("Line 5", "L5"), ("5号线", "L5"), ("地铁五号线", "L5"), ("地铁十一号线", "L11"),
    ("ＬＩＮＥ　１４", "L14"), ("0", None), ("APM", None), ("", None),
])
def test_metro_lines_in_one_form(text, line):
    assert canonical.line_name(text) == line


def test_station_keys_compare_what_display_forms_keep_apart():
    key = canonical.station_key
    assert key("上海虹桥站") == key("上海虹桥") == key(" 上海 虹桥 ")
    assert canonical.station_key("Hongqiao Station") == canonical.station_key("HONGQIAO")
    assert canonical.station_key("Hongqiao") != canonical.station_key("Shanghai Hongqiao")
