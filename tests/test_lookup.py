"""The same-trip lookup with messy input: the normaliser's table, then real questions against a
state the embedded runner made from hand-written events, then the public answer and the command."""

from __future__ import annotations

import orjson
import pytest

from graph.store import RocksStore
from tests.builders import at, case, traced_state, trip
from tracer.analysis.lookup import lookup, summary
from tracer.analysis.public import public_answer
from tracer.analysis.question import (
    read_carriage,
    read_date,
    read_line,
    read_question,
    read_seat,
    read_service,
    read_window,
)
from tracer.cli import main
from tracer.errors import InputError
from tracer.settings import RuleSettings

DAY = "2020-01-20"


@pytest.mark.parametrize("text", [
    "2020-01-20", "2020-1-20", "2020/01/20", "2020/1/20", "2020.1.20", "20200120", "2020年1月20日",
    "2020年01月20号", " 2020-01-20 ", "２０２０-０１-２０", "２０２０／１／２０", "２０２０年１月２０日",
    "2020 年 1 月 20 日",
])
def test_dates_in_the_common_forms_read_as_iso(text):
    assert read_date(text) == DAY


@pytest.mark.parametrize(("text", "told"), [
    ("15th Jan", "date: expected a date like 2020-01-15, got '15th Jan'"),
    ("2020-01/20", "date: expected a date like 2020-01-15, got '2020-01/20'"),  # two separators
    ("20-01-2020", "date: expected a date like 2020-01-15, got '20-01-2020'"),
    ("2020120", "date: expected a date like 2020-01-15, got '2020120'"),
    ("٢٠٢٠-٠١-٢٠", "date: expected a date like 2020-01-15, got '٢٠٢٠-٠١-٢٠'"),  # other scripts' digits
    ("", "date: expected a date like 2020-01-15, got ''"),
    ("2020-02-30", "date: '2020-02-30' is not a day of the calendar"),
    ("2020-13-01", "date: '2020-13-01' is not a day of the calendar"),
    ("1900-01-01", "date is outside the years 1970-2099: 1900-01-01"),
])
def test_a_date_it_cannot_read_says_what_it_expected(text, told):
    with pytest.raises(InputError) as caught:
        read_date(text)
    assert str(caught.value) == told


@pytest.mark.parametrize(("text", "mode", "read"), [
    ("MU5101", None, ("flight", "MU5101")),
    ("mu 5101", None, ("flight", "MU5101")),
    ("Mu-5101", None, ("flight", "MU5101")),
    ("ＭＵ５１０１", None, ("flight", "MU5101")),
    ("ｍｕ　５１０１", None, ("flight", "MU5101")),  # an ideographic space
    ("MU5101航班", None, ("flight", "MU5101")),
    ("GS7571", None, ("flight", "GS7571")),  # two letters, even when the first is a train class
    ("g 1234", None, ("train", "G1234")),
    ("G1234次", None, ("train", "G1234")),
    ("d–301", None, ("train", "D301")),  # an en dash
    ("K101", None, ("train", "K101")),
    ("3u 8633", "flight", ("flight", "3U8633")),  # no inference for a digit-first airline: the mode says
    ("1461", "train", ("train", "1461")),
    (" L2-20200120-0800 ", "metro", ("metro", "L2-20200120-0800")),  # a run id as stored: only trimmed
    ("l2-20200120-0800", "metro", ("metro", "l2-20200120-0800")),
])
def test_service_numbers_read_in_their_stored_form(text, mode, read):
    assert read_service(text, mode) == read


@pytest.mark.parametrize(("text", "told"), [
    ("L14", "service: 'L14' is neither a flight number"),
    ("1461", "service: '1461' is neither a flight number"),  # a plain-digit train
    ("G12345", "service: 'G12345' is neither a flight number"),
    ("MU5101\x07", "service: 'MU5101\\x07' is neither a flight number"),
    (" ", "service: ' ' is neither a flight number"),
])
def test_a_service_whose_mode_cannot_be_told_asks_for_it(text, told):
    with pytest.raises(InputError) as caught:
        read_service(text, None)
    assert str(caught.value).startswith(told) and "give the mode" in str(caught.value)


@pytest.mark.parametrize(("text", "read"), [
    ("5", "5"), ("05", "5"), ("５", "5"), ("5车", "5"), ("05车厢", "5"), ("第5车厢", "5"), ("5号车厢", "5"),
    (" A3 ", "A3"), ("  ", None), (None, None),
])
def test_carriages_read_without_padding_or_words(text, read):
    assert read_carriage(text) == read


@pytest.mark.parametrize(("text", "read"), [("12c", "12C"), ("12 C", "12C"), ("１２Ｃ", "12C"), ("", None)])
def test_seats_read_upper_case_without_spaces(text, read):
    assert read_seat(text) == read


@pytest.mark.parametrize(("text", "read"), [
    ("2", "L2"), ("L2", "L2"), ("l 2", "L2"), ("Line 2", "L2"), ("2号线", "L2"), ("地铁2号线", "L2"), ("L02", "L2"),
    ("１０号线", "L10"), ("地铁五号线", "L5"), ("十一号线", "L11"),
])
def test_metro_lines_read_as_run_ids_begin(text, read):
    assert read_line(text) == read


@pytest.mark.parametrize(("text", "read"), [
    ("08:05", (485, 485)), ("8:05", (485, 485)), ("0805", (485, 485)), ("８：０５", (485, 485)),
    ("8点05分", (485, 485)), ("8点", (480, 480)), ("08:00-08:20", (480, 500)), ("8:00 ~ 8:20", (480, 500)),
    ("8点到8点20", (480, 500)), ("08:00 to 08:20", (480, 500)),
])
def test_board_times_read_as_a_window_of_minutes(text, read):
    assert read_window(text) == read


@pytest.mark.parametrize(("asked", "told"), [
    ({"line": "L99x", "board_time": "08:00"}, "line: expected a metro line like 2, L2 or 2号线, got 'L99x'"),
    ({"line": "2", "board_time": "25:00"}, "board time: expected a time of day like 08:05, got '25:00'"),
    ({"line": "2", "board_time": "08:20-08:00"}, "board time: the window '08:20-08:00' ends before it starts"),
    ({"line": "2"}, "line: the metro is asked by line and board time together"),
    ({"line": "2", "board_time": "8:00", "alight_time": "7:00"}, "alight time: '7:00' is before the board time"),
    ({"line": "2", "board_time": "8:00", "mode": "flight"}, "line: a metro line is asked with a line and a board"),
    ({"service": "MU5101", "mode": "boat"}, "mode: expected one of flight, train, metro, got 'boat'"),
    ({}, "service: expected a flight or train number"),
    ({"service": "MU5101", "carriage": "3\x1b"}, "carriage must be a short string or an integer"),
])
def test_a_question_it_cannot_read_is_an_error_naming_the_field(asked, told):
    with pytest.raises(InputError) as caught:
        read_question(DAY, **asked)
    assert str(caught.value).startswith(told)


# A day of rides: a flight and a train with cases aboard, and three metro lines named as tracer's
# simulator names runs (line-date-departure): a case on line 2's 08:00 run and on its 08:30 run,
# a case on line 10 (whose runs must not answer for line 1, which has none).
EVENTS = [
    trip("P1", seat="10A", board_station="PVG", alight_station="CTU"),
    trip("P2", seat="12C"),
    trip("P3", mode="train", service="G1234", carriage="05", seat="7F", board="09:00", alight="11:00"),
    trip("P4", mode="train", service="G1234", carriage="5", seat="8A", board="09:00", alight="11:00"),
    trip("P5", mode="metro", service="L2-20200120-0800", carriage="3", board="08:10", alight="08:25",
         board_station="L2-05", alight_station="L2-11"),
    trip("P6", mode="metro", service="L2-20200120-0830", carriage="2", board="08:35", alight="08:50"),
    trip("P7", mode="metro", service="L10-20200120-0805", carriage="1", board="08:05", alight="08:30"),
    trip("P9", mode="metro", service="L2-20200120-0800", carriage="3", board="08:12", alight="08:20"),
    *(case(f"C{n}", f"P{n}", reported_at=at("12:00", "2020-01-21")) for n in (1, 3, 5, 6, 7)),
    {"type": "exposure", "exposure_id": "X9", "mode": "flight", "service": "MU5101", "date": DAY,
     "seats": ["30C"], "source": "https://example.org/notice"},
]
PRIVATE = {"C1", "C3", "C5", "C6", "C7", "X9", *(f"P{n}" for n in range(1, 10))}


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return traced_state(tmp_path_factory.mktemp("lookup"), EVENTS)


@pytest.fixture(scope="module")
def ask(state):
    store = RocksStore(state, read_only=True)

    def asked(**question):
        return lookup(store, RuleSettings(), read_question(**question))

    yield asked
    store.close()


def sources(answer) -> set[str]:
    return {ride["case_id"] for ride in answer.rides}


@pytest.mark.parametrize("date", ["2020-01-20", "2020/1/20", "20200120", "2020年1月20日", "２０２０．１．２０"])
@pytest.mark.parametrize("service", ["MU5101", "mu 5101", "ＭＵ５１０１", "MU-5101"])
def test_a_messy_question_finds_what_the_canonical_one_does(ask, date, service):
    answer = ask(date=date, service=service, seat="11 b")
    assert sources(answer) == {"C1", "X9"} and answer.known
    assert {ride["case_id"]: ride["your_level"] for ride in answer.rides} == {"C1": "close", "X9": "general"}


@pytest.mark.parametrize("carriage", ["5", "05", "第5车厢", "５号车厢"])
def test_a_carriage_number_matches_however_the_feed_padded_it(ask, carriage):
    """The case rode carriage "05": an asker in "5" is close. (The engine, comparing strings, gave
    P4 in "5" general: a feed that writes one carriage two ways is the importer's to fix; a rider
    cannot know how the feed wrote theirs.)"""
    answer = ask(date=DAY, service="g1234", carriage=carriage)
    assert sources(answer) == {"C3"} and answer.rides[0]["your_level"] == "close"
    assert answer.rides[0]["rule"] == "train.same_carriage"
    assert ask(date=DAY, service="g1234", carriage="6").rides[0]["your_level"] == "general"


def test_a_well_formed_question_with_no_case_aboard_is_a_real_no(ask):
    answer = ask(date=DAY, service="MU5101", seat="40A")
    assert answer.known and {ride["your_level"] for ride in answer.rides} == {"general"}
    none = ask(date="2020-01-20", service="L1", mode="metro")
    assert not none.rides and not none.known  # a run id that no ride has
    unknown = ask(date=DAY, service="mu 9999")
    assert not unknown.rides and not unknown.known
    assert summary(unknown) == (
        "tracer holds no ride of flight MU9999 on 2020-01-20: check the number and the date (no known case either)"
    )


@pytest.mark.parametrize(("window", "alight", "found"), [
    ("08:00-08:15", None, {"C5"}),  # the 08:00 run; the 08:30 one left after the window
    ("8点05", None, {"C5"}),
    ("08:20", None, {"C5"}),  # boarding the 08:00 run late, the case still aboard until 08:25
    ("08:26-08:40", None, {"C6"}),  # the 08:00 run's case got off at 08:25
    ("08:00-08:40", None, {"C5", "C6"}),
    ("07:00", "07:30", set()),  # off before either case boarded
    ("07:00-07:50", "08:05", set()),  # off before the 08:10 boarding
    ("07:50", "08:15", set()),  # the 08:00 run had not left by 07:50
    ("07:50-08:05", "08:15", {"C5"}),
])
def test_the_metro_is_asked_by_line_and_board_time(ask, window, alight, found):
    answer = ask(date="2020/1/20", line="2号线", board_time=window, alight_time=alight)
    assert sources(answer) == found and answer.known
    assert all(ride["service"].startswith("L2-") for ride in answer.rides)


def test_a_line_is_not_another_line_that_begins_alike(ask):
    """Line 10's runs (L10-...) are no answer, nor a known line, for line 1 (L1-...)."""
    answer = ask(date=DAY, line="1", board_time="08:00-08:30")
    assert not answer.rides and not answer.known
    assert sources(ask(date=DAY, line="L10", board_time="08:00-08:30")) == {"C7"}
    known = ask(date=DAY, line="2", board_time="07:00", alight_time="07:30")
    assert summary(known) == (
        "no known case or published exposure aboard a run of metro line L2 boarded 07:00 on 2020-01-20"
    )


def test_a_line_without_runs_that_name_it_says_so(ask):
    answer = ask(date=DAY, line="3", board_time="08:00")
    assert not answer.rides and not answer.known
    assert summary(answer).startswith("tracer holds no run of metro line L3 on 2020-01-20: runs are found by ids")


def test_the_carriage_places_a_metro_rider_on_the_run(ask):
    answer = ask(date=DAY, line="2", board_time="08:10", carriage="3号车厢")
    assert [(ride["case_id"], ride["your_level"]) for ride in answer.rides] == [("C5", "close")]


def test_the_public_answer_names_no_case_exposure_or_person(ask):
    for question in ({"service": "mu5101", "seat": "11B"}, {"service": "G1234", "carriage": "5"},
                     {"line": "2", "board_time": "08:00-08:40", "carriage": "3"}):
        answer = ask(date=DAY, **question)
        shown = public_answer(answer, RuleSettings())
        text = orjson.dumps(shown).decode()
        assert answer.rides and not {word for word in PRIVATE if f'"{word}"' in text or f"{word} " in text}
        assert not any(name in text for name in ("case_id", "person_id", "trip_id"))
        assert {key for ride in shown["aboard"] for key in ride} <= {
            "kind", "service", "carriage", "seat", "board_station", "alight_station", "board_time", "alight_time",
            "published_by", "run_departure", "your_level", "why", "rides_kept"}


def test_the_public_answer_says_how_the_question_was_read(ask):
    shown = public_answer(ask(date="2020年1月20日", service="ｍｕ ５１０１", seat="12c"), RuleSettings())
    assert shown["question"] == {"date": DAY, "mode": "flight", "asked": "flight MU5101", "carriage": None,
                                 "seat": "12C"}
    assert shown["known_service"] and shown["answer"].startswith("a known case or published exposure was aboard")
    by_kind = {ride["kind"]: ride for ride in shown["aboard"]}
    assert by_kind["case"]["why"] == "on the same flight within 3 rows of the case"
    assert by_kind["published exposure"]["published_by"] == "https://example.org/notice"
    metro = public_answer(ask(date=DAY, line="2", board_time="08:10"), RuleSettings())
    assert [ride["run_departure"] for ride in metro["aboard"]] == ["08:00"]


def test_the_command_reads_messy_input_and_refuses_what_it_cannot_read(state, capsys):
    base = ["lookup", "--state", str(state)]
    assert main([*base, "--date", "2020/01/20", "--service", "mu 5101", "--seat", "１１Ｂ", "--public"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert {ride["your_level"] for ride in shown["aboard"]} == {"close", "general"}
    assert main([*base, "--date", "2020/01/20", "--line", "2号线", "--board-time", "08:00-08:15"]) == 0
    assert [orjson.loads(line)["case_id"] for line in capsys.readouterr().out.splitlines()] == ["C5"]  # staff form
    assert main([*base, "--date", "15th Jan", "--service", "MU5101"]) == 2
    assert capsys.readouterr().err == "tracer: error: date: expected a date like 2020-01-15, got '15th Jan'\n"
    assert main([*base, "--date", DAY, "--service", "L14"]) == 2
    assert "service: 'L14' is neither a flight number" in capsys.readouterr().err
    assert main([*base, "--date", DAY, "--service", "MU9999"]) == 0
    told = capsys.readouterr()
    assert told.out == "" and told.err.startswith("tracer holds no ride of flight MU9999 on 2020-01-20")
