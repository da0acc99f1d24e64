"""Parsing and validation: every rejection has a reason."""

from __future__ import annotations

import orjson
import pytest

from tests.builders import case, person, trip
from tracer.errors import InvalidEvent
from tracer.events import Case, Person, Trip, decode_trip, decode_trips, format_time, parse_line
from tracer.settings import RuleSettings

MAX_RIDE = 72 * 3_600_000_000


def parse(event) -> object:
    return parse_line(event if isinstance(event, bytes) else orjson.dumps(event), MAX_RIDE)


def test_valid_events():
    assert isinstance(parse(person("P1", "310101002")), Person)
    assert isinstance(parse(case("C1", "P1")), Case)
    parsed = parse(trip("P1", seat="32C", crew_rows=None, carriage=5, extra_field="kept but ignored"))
    assert isinstance(parsed, Trip) and parsed.carriage == "5" and parsed.trip_id.startswith("h:")
    assert decode_trip(parsed.encode()) == parsed


def test_crew_rows_round_trip():
    parsed = parse(trip("P1", role="crew", crew_rows="25-40"))
    assert parsed.crew_rows == (25, 40) and decode_trip(parsed.encode()) == parsed


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "broken JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"person_id": "P1"}', "missing field 'type'"),
        (orjson.dumps({"type": "bus"}), "unknown type 'bus'"),
        (orjson.dumps(trip("P1", mode="bus")), "unknown mode 'bus'"),
        (orjson.dumps({**trip("P1"), "person_id": None}), "missing field 'person_id'"),
        (orjson.dumps(trip("P1", board="10:00", alight="10:00")), "alight_time is not after board_time"),
        (orjson.dumps(trip("P1", board="10:00", alight="09:00")), "alight_time is not after board_time"),
        (orjson.dumps({**trip("P1"), "board_time": "2020-01-20T08:00:00"}), "has no UTC offset"),
        (orjson.dumps({**trip("P1"), "board_time": "yesterday"}), "not an ISO 8601 time"),
        (
            orjson.dumps({**trip("P1"), "alight_time": "2020-06-20T08:00:00+08:00"}),
            "longer than max_ride_hours",
        ),
        (orjson.dumps({**trip("P1"), "date": "2020-02-30"}), "not a valid date"),
        (orjson.dumps(trip("P1", berth="hammock")), "unknown berth"),
        (orjson.dumps(trip("P1", crew_rows="front")), "crew_rows must look like"),
        (orjson.dumps(trip("P1", crew_rows="40-25")), "reversed"),
        (orjson.dumps(trip("P1\x00x")), "control characters"),
        (orjson.dumps(case("C1", "P1", status="cured")), "unknown status 'cured'"),
        (orjson.dumps(person("P1", "3101")), "9-digit"),
        (orjson.dumps({**trip("P1"), "sealed": "yes"}), "sealed must be"),
        (orjson.dumps({**trip("P1"), "board_time": "0001-01-01T00:00:00+08:00"}), "outside the years"),
        (orjson.dumps({**trip("P1"), "board_time": "9999-12-31T23:00:00-08:00"}), "outside the years"),
        (orjson.dumps(case("C1", "P1", onset="0001-01-02")), "outside the years"),
    ],
)
def test_rejections(raw, reason):
    with pytest.raises(InvalidEvent) as info:
        parse(raw)
    assert reason in info.value.reason


def test_format_time_is_exact_and_local():
    zone = RuleSettings().zone
    parsed = parse(trip("P1", board="08:00:00.000001"))
    assert format_time(parsed.board, zone) == "2020-01-20T08:00:00.000001+08:00"
    utc = parse({**trip("P1"), "board_time": "2020-01-20T00:00:00Z"})
    assert format_time(utc.board, zone) == "2020-01-20T08:00:00+08:00"


def test_decode_trip_reads_what_msgspec_would_not_as_before():
    row = ["T1", "P1", "metro", "L2", "2020-01-20", 1, 2, None, None, "seat", None, True, "passenger", [3, 9, 1],
           None, None]
    assert decode_trip(orjson.dumps(row)).crew_rows == (3, 9)  # a three-item list: the orjson path
    plain = Trip("T2", "P2", "metro", "L2", "2020-01-20", 1, 2, "3", crew_rows=(1, 4))
    assert decode_trips([plain.encode(), orjson.dumps(row)]) == [plain, decode_trip(orjson.dumps(row))]
    assert decode_trips([plain.encode()]) == [plain] and decode_trips([]) == []
