"""Metro taps' rides valid by construction (connectors/importers/taps.py, ``Lines``): the fields of a
ride are checked a part at a time (a run's service and date, each station name, each stop time, and
the ride's length), not by parsing each ride's line. These properties show the decision is the
engine's own on any timetable, however hostile: a ride is built exactly when ``parse_line`` takes its
whole line, and then it is that line to the byte; a column of rides (``Lines.rides``, the columnar
path's) gives the same."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.importers.journeys import Candidate
from connectors.importers.taps import _RIDE_FIELDS, _STOP_TIMES, Lines, _shared
from connectors.importers.times import stamps
from connectors.importers.timetable import Run, Timetable
from tracer.errors import InvalidEvent
from tracer.events import format_time, parse_line
from tracer.jsonl import json_record

_GOOD = st.sampled_from(["L5-20200115-0734", "布吉", " 草埔 "])  # drawn as often as the rest: each part matters
_BAD = st.sampled_from(["", " ", "x" * 128, "x" * 129, "a\nb", "\u2028", "e\u0301", "\x00", "\ud7ff"])
_TEXT = st.one_of(_GOOD, _BAD, _GOOD, st.text(max_size=6), _GOOD, st.text(min_size=125, max_size=131))
_DATES = st.one_of(st.just("2020-01-15"), st.sampled_from(["1969-12-31", "1970-01-01", "2099-12-31", "2100-01-01",
                                                           "2020-02-30", "2020-1-5", "20200115", ""]))
# epoch seconds around the engine's years (1970-2099 in any zone) and near one another
_MOMENTS = st.one_of(st.integers(0, 4 * 10**9), st.sampled_from([-50_400, -28_801, -28_800, 0, 4_102_415_999,
                                                                   4_102_444_800]), st.integers(-(10**9), 5 * 10**9))


_ZONES = ["Asia/Shanghai", "UTC", "America/St_Johns", "Asia/Kathmandu", "Pacific/Kiritimati", "Africa/Monrovia",
          "Europe/Dublin", "Australia/Lord_Howe"]  # offsets of :30, :45, -0:44:30 (Liberia to 1972), DST of 30 min
_CHANGES = [1586012400, 1601739000, 504901800, 1583645400, 1604205000, 63593070]  # offsets changing within an hour
# (Lord Howe's DST 2020, Kathmandu's +05:45 from 1986, St John's DST 2020, Liberia's UTC from 1972)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(service=_TEXT, day=_DATES, board_name=_TEXT, alight_name=_TEXT, depart=_MOMENTS,
       length=st.one_of(st.sampled_from([-1, 0, 1, 3600, 14_400, 14_401, 86_400]), st.integers(-(10**5), 10**6)),
       confidence=st.sampled_from([1.0, 0.5, 0.3333, 0.25]), max_ride_hours=st.sampled_from([1.0, 4.0, 24.0]),
       zone=st.sampled_from(_ZONES))
def test_a_ride_is_built_exactly_when_the_engine_takes_its_line(
    service: str, day: str, board_name: str, alight_name: str, depart: int, length: int, confidence: float,
    max_ride_hours: float, zone: str,
) -> None:
    run = Run(service, "metro", "L5", day, ("a", "b"), (board_name, alight_name), (depart, depart + length),
              (depart, depart + length))
    timetable = Timetable([run], {}, {}, ZoneInfo(zone))
    max_ride_us = int(max_ride_hours * 3_600_000_000)
    lines = Lines(timetable, max_ride_us)
    candidate = Candidate(run, 0, 1)
    line = json_record({"type": "trip", "trip_id": "tap:0", "person_id": "pid:0",
                        **_shared(candidate, confidence, timetable)})
    try:
        parse_line(line, max_ride_us)
        taken = True
    except InvalidEvent:
        taken = False
    for _ in range(2):  # the second time from what ``Lines`` remembers
        built = lines.ride(candidate, confidence)
        assert (built is not None) == taken
        if built is not None:
            assert b'{"type":"trip","trip_id":"tap:0","person_id":"pid:0"' + built == line
    fields = pl.DataFrame([("metro", service, day, depart, depart + length, board_name, alight_name, confidence)],
                          orient="row", schema=dict.fromkeys(_RIDE_FIELDS, pl.String)
                          | dict.fromkeys(_STOP_TIMES, pl.Int64) | {"confidence": pl.Float64})
    for fresh in (Lines(Timetable([run], {}, {}, ZoneInfo(zone)), max_ride_us), lines):  # a column at a time
        assert fresh.rides(fields).to_list() == [None if built is None else built[:-1].decode()]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(-(10**9), 5 * 10**9), st.integers(0, 4 * 10**9), st.builds(
    lambda change, by: change + by, st.sampled_from(_CHANGES), st.integers(-3600, 3600))), min_size=1, max_size=50),
       st.sampled_from(_ZONES))
def test_stop_times_stamped_a_column_at_a_time_are_the_engines_text(moments: list[int], zone: str) -> None:
    """``times.stamps`` writes ``format_time``'s text (Python's zone data, offsets of seconds and DST
    changes within an hour included), or leaves a time to it; never another text."""
    found = stamps(pl.Series(moments, dtype=pl.Int64), ZoneInfo(zone)).to_list()
    assert [text is None or text == format_time(moment * 1_000_000, ZoneInfo(zone))
            for moment, text in zip(moments, found, strict=True)] == [True] * len(moments)
    assert all(text is not None for moment, text in zip(moments, found, strict=True)
               if 0 <= moment < 4_000_000_000 and zone == "Asia/Shanghai")  # the common case is done at once
