"""``tracer lookup --line L --board-time T --station X`` (issue 16, item 8): the boarding station,
read in its one form, leaves out the runs that riders' records place at that station at other
times; a run never seen there stays (nothing says it was not). And what the lookup cannot read, or
does not know, it says."""

from __future__ import annotations

import orjson
import pytest

from graph.store import RocksStore
from tests.builders import at, case, traced_state, trip
from tracer.analysis.lookup import lookup, summary
from tracer.analysis.public import public_answer
from tracer.analysis.question import read_question
from tracer.cli import main
from tracer.errors import InputError
from tracer.settings import RuleSettings

DAY = "2020-01-20"
RUN_0800, RUN_0806 = "L2-20200120-0800", "L2-20200120-0806"  # one behind the other, both left by 08:10
EVENTS = [
    # the 08:00 run: the case boards at 人民广场 at 08:10; others place it at 南京东路 at 08:12
    trip("P1", mode="metro", service=RUN_0800, carriage="3", board="08:10", alight="08:30",
         board_station="人民广场站", alight_station="江苏路"),
    trip("R1", mode="metro", service=RUN_0800, board="08:12", alight="08:20", board_station="南京东路"),
    # the 08:06 run: the case boards at 陆家嘴 at 08:14; a rider boarded it at 人民广场 at 08:16
    trip("P2", mode="metro", service=RUN_0806, carriage="1", board="08:14", alight="08:40",
         board_station="陆家嘴", alight_station="中山公园"),
    trip("R2", mode="metro", service=RUN_0806, board="08:16", alight="08:30", board_station="人民广场"),
    *(case(f"C{n}", f"P{n}", reported_at=at("12:00", "2020-01-21")) for n in (1, 2)),
]


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return traced_state(tmp_path_factory.mktemp("station"), EVENTS)


@pytest.fixture(scope="module")
def ask(state):
    store = RocksStore(state, read_only=True)
    yield lambda **question: lookup(store, RuleSettings(), read_question(date=DAY, line="2", **question))
    store.close()


def cases(answer) -> set[str]:
    return {ride["case_id"] for ride in answer.rides}


@pytest.mark.parametrize(("station", "window", "found"), [
    (None, "08:10", {"C1", "C2"}),  # by line and time alone: both runs fit
    ("人民广场", "08:10", {"C1"}),  # the 08:06 run was at 人民广场 at 08:16
    ("人民广场站", "08:10", {"C1"}),  # 站 or not, one station
    ("人民广场", "08:15-08:17", {"C2"}),  # the 08:00 run was there at 08:10, five minutes before
    ("人民广场", "08:12", {"C1"}),  # within two minutes of a sighting
    ("人民广场", "08:13", set()),  # three minutes after one, three before the other
    ("静安寺", "08:10", {"C1", "C2"}),  # no record places either run there: both stay
])
def test_the_boarding_station_leaves_out_runs_seen_there_at_other_times(ask, station, window, found):
    answer = ask(board_time=window, station=station) if station else ask(board_time=window)
    assert cases(answer) == found and answer.known


def test_the_answer_says_where_the_asker_boarded(ask):
    answer = ask(board_time="08:10", station="人民广场站")
    assert summary(answer) == ("a known case or published exposure was aboard a run of metro line L2 boarded at "
                               "人民广场 08:10 on 2020-01-20")
    shown = public_answer(answer, RuleSettings())
    assert shown["question"]["station"] == "人民广场" and shown["question"]["asked"].endswith("at 人民广场 08:10")


@pytest.mark.parametrize(("question", "told"), [
    ({"station": "人民广场"}, "line: the metro is asked by line and board time together"),
    ({"station": "站\x00", "line": "2", "board_time": "08:10"}, "station: expected a station name"),
    ({"service": "MU5101", "station": "人民广场"}, "line: a metro line is asked with a line and a board time"),
])
def test_a_station_it_cannot_use_is_an_error(question, told):
    with pytest.raises(InputError, match=told):
        read_question(date=DAY, **question)


def test_the_command_takes_a_station_and_says_what_it_cannot_read(state, capsys):
    base = ["lookup", "--state", str(state), "--date", "2020/1/20"]
    assert main([*base, "--line", "2号线", "--board-time", "8:10", "--station", "人民广场站"]) == 0
    assert [orjson.loads(line)["case_id"] for line in capsys.readouterr().out.splitlines()] == ["C1"]
    assert main([*base, "--line", "2", "--station", "人民广场"]) == 2
    assert "line: the metro is asked by line and board time together" in capsys.readouterr().err
    assert main([*base, "--service", "3U8888"]) == 0  # read as a flight, and one tracer holds no ride of
    assert capsys.readouterr().err.startswith("tracer holds no ride of flight 3U8888 on 2020-01-20")
    assert main([*base, "--service", "G51234"]) == 2
    assert "give the mode" in capsys.readouterr().err
