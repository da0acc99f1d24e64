"""Event time by itself (tracer/clock.py): the engine keeps it, and so does Kafka's view process,
which reads every partition's trips; both must come to the same time by the same rule."""

from __future__ import annotations

import random
from dataclasses import replace

import orjson
import pytest

from graph.keys import LATEST_TIMES, META, VIEW_TIME, WATERMARK, group
from graph.store import MemoryStore
from tests.builders import at, trip
from tracer.clock import EventClock
from tracer.errors import InvalidEvent
from tracer.events import Exposure, Trip, parse_line, parse_time
from tracer.settings import RuleSettings

_M = group(META)
RULES = RuleSettings(event_time_quorum=3, retention_days=2)
MAX_RIDE_US = 72 * 3_600_000_000


def ride(day: str, board: str = "08:00", alight: str = "10:00") -> Trip:
    event = parse_line(orjson.dumps(trip("P1", day=day, board=board, alight=alight)), MAX_RIDE_US)
    assert isinstance(event, Trip)
    return event


def test_event_time_is_the_quorum_th_latest_board_time_and_never_moves_back() -> None:
    clock = EventClock(MemoryStore(), RULES)
    for hour in ("09:00", "10:00"):
        assert clock.advance(parse_time(at(hour)))
    assert clock.event_time is None  # two of three
    clock.advance(parse_time(at("08:00")))
    assert clock.event_time == parse_time(at("08:00"))
    clock.advance(parse_time(at("07:00")))  # earlier than the three latest: counts for nothing
    assert clock.event_time == parse_time(at("08:00"))
    clock.advance(parse_time(at("11:00")))
    assert clock.event_time == parse_time(at("09:00"))


def test_the_same_board_times_in_any_order_give_the_same_time() -> None:
    """The view process reads partitions interleaved, not in publish order: the time it ends at
    is the quorum-th latest of all of them, as the engine's."""
    boards = [parse_time(at(f"{hour:02d}:{minute:02d}")) for hour in range(6, 12) for minute in (0, 20, 40)]
    ends = set()
    for seed in range(5):
        random.Random(seed).shuffle(boards)
        clock = EventClock(MemoryStore(), RULES)
        for board in boards:
            clock.advance(board)
        ends.add(clock.event_time)
    assert ends == {parse_time(at("11:00"))}


def test_a_commit_saves_the_time_under_its_mark_and_a_new_clock_resumes_from_it() -> None:
    store = MemoryStore()
    clock = EventClock(store, RULES, mark=VIEW_TIME)
    for hour in ("08:00", "09:00", "10:00", "11:00"):
        clock.advance(parse_time(at(hour)))
    store.commit()
    assert store.get(_M, VIEW_TIME) == str(parse_time(at("09:00"))).encode()
    assert store.get(_M, WATERMARK) is None  # the engine's name is left to the engine
    assert sorted(orjson.loads(store.get(_M, LATEST_TIMES) or b"")) == [parse_time(at(h)) for h in
                                                                       ("09:00", "10:00", "11:00")]
    again = EventClock(store, RULES, mark=VIEW_TIME)
    assert again.event_time == clock.event_time and again.horizon == clock.horizon == "2020-01-18"
    again.advance(parse_time(at("12:00")))
    assert again.event_time == parse_time(at("10:00"))


def test_service_date_and_horizon_checks() -> None:
    clock = EventClock(MemoryStore(), RULES)
    clock.check(ride("2020-01-20"))
    with pytest.raises(InvalidEvent, match="too far from service date"):
        clock.check(ride("2020-01-20")._replace(board=parse_time(at("08:00", "2020-01-25"))))
    clock.check(ride("2020-01-10"))  # no event time yet: no horizon
    for _ in range(3):
        clock.advance(parse_time(at("08:00", "2020-01-20")))
    assert clock.horizon == "2020-01-18" and clock.horizon_start == parse_time(at("00:00", "2020-01-18"))
    with pytest.raises(InvalidEvent, match="trip date 2020-01-17 is before the retention horizon 2020-01-18"):
        clock.check(ride("2020-01-17"))
    exposure = parse_line(b'{"type": "exposure", "exposure_id": "E1", "mode": "flight", "service": "MU5101", '
                          b'"date": "2020-01-17"}', MAX_RIDE_US)
    assert isinstance(exposure, Exposure)
    clock.check(exposure)  # a published fact: kept for exposure_retention_days (60), not retention_days
    assert clock.exposure_horizon == "2019-11-21"
    clock.check(replace(exposure, date="2019-11-21"))
    with pytest.raises(InvalidEvent, match=r"exposure date 2019-11-20 is before the exposure retention horizon "
                                           r"2019-11-21 \(exposure_retention_days 60\)"):
        clock.check(replace(exposure, date="2019-11-20"))


def test_a_new_day_calls_the_horizon_hook_once_and_can_be_refused_without_changing_anything() -> None:
    horizons: list[str] = []
    clock = EventClock(MemoryStore(), RULES, on_new_horizon=horizons.append)
    for hour in ("08:00", "09:00", "10:00"):
        clock.advance(parse_time(at(hour)))
    assert horizons == ["2020-01-18"]
    next_day = [parse_time(at(hour, "2020-01-21")) for hour in ("08:00", "09:00", "10:00")]
    assert clock.advance(next_day[0]) and clock.advance(next_day[1])  # the third is still on 01-20
    before = clock.event_time
    assert not clock.advance(next_day[2], may_purge=False)  # it would start a new day: refused
    assert clock.event_time == before and horizons == ["2020-01-18"]
    assert clock.advance(next_day[2])  # counted once, when it may
    assert clock.event_time == next_day[0] and horizons == ["2020-01-18", "2020-01-19"]


def test_a_commit_inside_the_horizon_hook_saves_the_time_before_that_trip() -> None:
    """The engine's purge commits on its way; a crash there re-reads the trip that moved the day,
    so the commit must not hold that trip's board time already."""
    store = MemoryStore()
    saved: list[tuple[bytes | None, list[int]]] = []

    def purge(horizon: str) -> None:
        store.commit()
        saved.append((store.get(_M, WATERMARK), sorted(orjson.loads(store.get(_M, LATEST_TIMES) or b"[]"))))

    clock = EventClock(store, RULES, on_new_horizon=purge)
    day_one = [parse_time(at(hour)) for hour in ("08:00", "09:00", "10:00")]
    for board in day_one:
        clock.advance(board)
    next_day = parse_time(at("08:00", "2020-01-21"))
    for board in (next_day, next_day + 1):
        clock.advance(board)
    saved.clear()
    clock.advance(next_day + 2)  # moves event time into 2020-01-21: the hook commits
    assert saved == [(str(day_one[2]).encode(), [day_one[2], next_day, next_day + 1])]  # as before it
    store.commit()
    assert store.get(_M, WATERMARK) == str(next_day).encode()
