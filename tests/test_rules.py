"""Every rule at its edges, through the pure rule functions (no store)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import case, trip
from tracer.events import Trip, parse_line
from tracer.rules import Match, Window, best_match, case_window, classify, close_candidates, match, meeting, seat_row
from tracer.settings import RuleSettings

RULES = RuleSettings()
MAX_RIDE = 72 * 3_600_000_000


def parsed(event):
    import orjson

    return parse_line(orjson.dumps(event), MAX_RIDE)


def level(case_trip: dict, contact: dict, case_event: dict | None = None) -> tuple[str, str] | None:
    window = case_window(parsed(case_event or case("C1", "P1")), RULES)
    found = match(parsed(case_trip), parsed(contact), window, RULES)
    return None if found is None else (found.level, found.rule)


@pytest.mark.parametrize(
    ("contact_seat", "expected"),
    [
        ("32C", "close"),
        ("29A", "close"),
        ("35F", "close"),
        ("28A", "general"),
        ("36A", "general"),
        (None, "general"),
        ("aisle", "general"),
    ],
)
def test_flight_rows_within_three(contact_seat, expected):
    assert level(trip("P1", seat="32C"), trip("P2", seat=contact_seat))[0] == expected


def test_flight_case_without_seat_is_general_for_passengers():
    assert level(trip("P1"), trip("P2", seat="1A")) == ("general", "flight.same_flight")


@pytest.mark.parametrize(
    ("crew_rows", "expected"),
    [
        ("25-40", "close"),
        ("32", "close"),
        ("33-40", "general"),
        (None, "close"),
    ],
)
def test_flight_crew_serving_the_case_row(crew_rows, expected):
    found = level(trip("P1", seat="32C"), trip("P2", role="crew", crew_rows=crew_rows))
    assert found[0] == expected


@pytest.mark.parametrize(
    ("seat", "expected"), [("25A", "close"), ("40K", "close"), ("24A", "general"), (None, "general")]
)
def test_flight_case_crew_exposes_served_rows(seat, expected):
    assert level(trip("P1", role="crew", crew_rows="25-40"), trip("P2", seat=seat))[0] == expected


def test_flight_crew_together_and_case_crew_without_rows():
    assert level(trip("P1", role="crew"), trip("P2", role="crew")) == ("close", "flight.crew_together")
    assert level(trip("P1", role="crew"), trip("P2", seat="60A"))[0] == "close"


TRAIN = {"mode": "train", "service": "G420"}


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        ({"carriage": "5"}, ("close", "train.same_carriage")),
        ({"carriage": "6"}, ("general", "train.same_train")),
        ({}, ("general", "train.same_train")),
        ({"carriage": "5", "role": "crew"}, ("close", "train.same_carriage")),  # the first row that applies
        ({"carriage": "6", "role": "crew"}, ("general", "train.same_train")),
    ],
)
def test_sealed_train_same_carriage(contact, expected):
    assert level(trip("P1", **TRAIN, carriage="5", seat="12A"), trip("P2", **TRAIN, **contact)) == expected


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        ({"carriage": "5", "compartment": "3"}, "close"),
        ({"carriage": "5", "compartment": "4"}, "general"),
        ({"carriage": "6", "compartment": "3"}, "general"),
        ({"carriage": "5", "role": "crew"}, "close"),
    ],
)
def test_soft_sleeper_same_compartment(contact, expected):
    case_trip = trip("P1", **TRAIN, carriage="5", berth="soft_sleeper", compartment="3")
    assert level(case_trip, trip("P2", **TRAIN, **contact))[0] == expected


def test_soft_sleeper_without_compartment_falls_back_to_carriage():
    case_trip = trip("P1", **TRAIN, carriage="5", berth="soft_sleeper")
    assert level(case_trip, trip("P2", **TRAIN, carriage="5")) == ("close", "train.same_carriage")


@pytest.mark.parametrize(
    ("bay", "expected"),
    [("4", "close"), ("5", "close"), ("6", "close"), ("3", "general"), ("7", "general"), (None, "general")],
)
def test_unsealed_train_bays_within_one(bay, expected):
    case_trip = trip("P1", **TRAIN, sealed=False, carriage="9", berth="hard_sleeper", compartment="5")
    contact = trip("P2", **TRAIN, carriage="9", berth="hard_sleeper", compartment=bay)
    assert level(case_trip, contact)[0] == expected


def test_crew_rule_names_the_crew_where_seats_would_not_be_close():
    sleeper = trip("P1", **TRAIN, carriage="5", berth="soft_sleeper", compartment="3")
    assert level(sleeper, trip("P2", **TRAIN, carriage="5", role="crew")) == ("close", "train.crew_of_carriage")
    bay = trip("P1", **TRAIN, sealed=False, carriage="9", compartment="1")
    assert level(bay, trip("P2", **TRAIN, carriage="9", compartment="8", role="crew"))[1] == "train.crew_of_carriage"


def test_unsealed_soft_sleeper_needs_same_compartment():
    case_trip = trip("P1", **TRAIN, sealed=False, carriage="2", berth="soft_sleeper", compartment="1")
    assert level(case_trip, trip("P2", **TRAIN, carriage="2", compartment="2"))[0] == "general"
    assert level(case_trip, trip("P2", **TRAIN, carriage="2", compartment="1"))[0] == "close"


METRO = {"mode": "metro", "service": "L2-0734"}


@pytest.mark.parametrize(
    ("case_carriage", "contact_carriage", "expected"),
    [
        ("3", "3", ("close", "metro.same_carriage")),
        ("3", "4", ("general", "metro.same_train")),
        (None, "3", ("general", "metro.same_train")),
        ("3", None, ("general", "metro.same_train")),
        (None, None, ("general", "metro.same_train")),
    ],
)
def test_metro_carriage(case_carriage, contact_carriage, expected):
    assert (
        level(trip("P1", **METRO, carriage=case_carriage), trip("P2", **METRO, carriage=contact_carriage))
        == expected
    )


@pytest.mark.parametrize(
    ("contact_times", "overlaps"),
    [
        (("10:00", "11:00"), False),  # touches the end of the case ride
        (("07:00", "08:00"), False),  # touches the start
        (("09:59:59", "11:00"), True),  # one second of overlap
        (("06:00", "08:00:01"), True),
        (("08:30", "09:00"), True),  # inside
    ],
)
def test_touching_rides_do_not_meet(contact_times, overlaps):
    board, alight = contact_times
    found = level(trip("P1", seat="1A"), trip("P2", seat="1A", board=board, alight=alight))
    assert (found is not None) == overlaps


def test_window_starts_at_local_midnight_of_onset_minus_two_days():
    onset_case = case("C1", "P1", onset="2020-01-22")  # window opens 2020-01-20 00:00 +08:00
    before = trip("P1", day="2020-01-19", board="22:00", alight="23:59:59", seat="1A")
    contact = trip("P2", day="2020-01-19", board="22:00", alight="23:59:59", seat="1A")
    assert level(before, contact, onset_case) is None
    across = {"board_time": "2020-01-19T23:00:00+08:00", "alight_time": "2020-01-20T01:00:00+08:00"}
    found = match(
        parsed({**before, **across}),
        parsed({**contact, **across}),
        case_window(parsed(onset_case), RULES),
        RULES,
    )
    assert found is not None and found.start == case_window(parsed(onset_case), RULES).start


def test_window_ends_at_isolation_exclusive():
    isolated = case("C1", "P1", isolated_at="2020-01-20T08:00:00+08:00")
    assert level(trip("P1", seat="1A"), trip("P2", seat="1A"), isolated) is None
    later = case("C1", "P1", isolated_at="2020-01-20T08:00:01+08:00")
    assert level(trip("P1", seat="1A"), trip("P2", seat="1A"), later) == ("close", "flight.rows_within_span")


def test_lookback_days_is_a_setting():
    rules = RuleSettings(lookback_days=4)
    window = case_window(parsed(case("C1", "P1", onset="2020-01-24")), rules)
    assert window.start == case_window(parsed(case("C1", "P1", onset="2020-01-22")), RULES).start


def test_minimum_overlap_setting():
    rules = RuleSettings(min_overlap_seconds=900)
    window = case_window(parsed(case("C1", "P1")), rules)
    short = match(parsed(trip("P1", seat="1A")), parsed(trip("P2", seat="1A", board="09:45")), window, rules)
    longer = match(parsed(trip("P1", seat="1A")), parsed(trip("P2", seat="1A", board="09:44")), window, rules)
    assert short is None and longer is not None


def test_best_match_prefers_close_then_earliest():
    window = case_window(parsed(case("C1", "P1")), RULES)
    case_trip = parsed(trip("P1", seat="10A"))
    far = parsed(trip("P2", seat="20A", trip_id="a"))
    near = parsed(trip("P2", seat="12A", board="09:00", trip_id="b"))
    found = best_match([case_trip], [far, near], window, RULES)
    assert found.level == "close" and found.contact_trip.trip_id == "b"


def test_best_match_ties_break_on_shown_labels_before_trip_ids():
    """Two equally close rides: the alert shows the smaller seat (absent first), whatever the ids,
    which are made up for trips without one."""
    window = case_window(parsed(case("C1", "P1")), RULES)
    case_trip = parsed(trip("P1", seat="10A"))
    rides = [parsed(trip("P2", seat="11B", trip_id="a")), parsed(trip("P2", seat="11A", trip_id="b"))]
    assert best_match([case_trip], rides, window, RULES).contact_trip.seat == "11A"
    assert best_match([case_trip], rides[::-1], window, RULES).contact_trip.seat == "11A"


def test_best_match_ties_break_on_the_rule_before_trip_ids():
    """Same times and labels, two rules (a passenger in the same bay, the carriage's crew): the rule
    decides, not the ids."""
    window = case_window(parsed(case("C1", "P1")), RULES)
    train = {"mode": "train", "service": "K1", "carriage": "3", "berth": "hard_sleeper", "sealed": False}
    case_trip = parsed(trip("P1", compartment="5", **train))
    bay = parsed(trip("P2", compartment="5", trip_id="b", **train))
    crew = parsed(trip("P2", compartment="20", role="crew", trip_id="a", **train))
    for rides in ([bay, crew], [crew, bay]):
        assert best_match([case_trip], rides, window, RULES).rule == "train.bay_within_span"


def test_seat_row():
    assert seat_row("32C") == 32 and seat_row(" 7 ") == 7
    assert seat_row("C32") is None and seat_row(None) is None


# -- close_candidates: the shortcut secondary tracing takes must drop no close contact, and only them
_LABELS = st.sampled_from([None, "1", "2", "12"])


@st.composite
def _rides(draw: st.DrawFn, mode: str, person: str) -> Trip:
    rows = draw(st.none() | st.tuples(st.integers(1, 40), st.integers(0, 10)).map(lambda r: (r[0], r[0] + r[1])))
    return Trip(
        f"T-{person}", person, mode, "S1", "2020-01-20", 0, 3_600_000_000,
        carriage=draw(_LABELS),
        seat=draw(st.sampled_from([None, "1A", "3C", "4F", "30B", "aisle"])),
        berth=draw(st.sampled_from(["seat", "hard_sleeper", "soft_sleeper"])),
        compartment=draw(_LABELS),
        sealed=draw(st.booleans()),
        role=draw(st.sampled_from(["passenger", "crew"])),
        crew_rows=rows,
    )


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(["flight", "train", "metro"]).flatmap(lambda m: st.tuples(_rides(m, "P1"), _rides(m, "P2"))))
def test_close_candidates_are_exactly_the_close_riders(pair: tuple[Trip, Trip]) -> None:
    case_trip, contact = pair
    close = classify(case_trip, contact, RULES)[0] == "close"
    assert ("P2" in close_candidates(case_trip, {"P2": [contact]}, RULES)) == close


# -- meeting: the rides cut to the window once must find what comparing every pair finds
@st.composite
def _timed_rides(draw: st.DrawFn, person: str, mode: str) -> list[Trip]:
    rides = []
    for number in range(draw(st.integers(1, 3))):
        board = draw(st.integers(0, 120)) * 60_000_000
        ride = draw(_rides(mode, person))
        rides.append(ride._replace(trip_id=f"{person}-{number}", board=board,
                                   alight=board + draw(st.integers(0, 90)) * 60_000_000))
    return rides


@settings(max_examples=800, deadline=None)
@given(st.sampled_from(["flight", "train", "metro"]).flatmap(
    lambda m: st.tuples(_timed_rides("P1", m), _timed_rides("P2", m), st.integers(0, 100), st.integers(0, 200),
                        st.booleans())))
def test_meeting_finds_the_best_of_every_pair(drawn) -> None:
    case_rides, contact_rides, start, length, only_close = drawn
    window = Window(start * 60_000_000, (start + length) * 60_000_000)
    pairs = [m for c in case_rides for r in contact_rides if (m := match(c, r, window, RULES, only_close))]
    expected = min(pairs, key=Match.sort_key) if pairs else None
    assert meeting(case_rides, window, RULES, only_close)(contact_rides) == expected
    assert best_match(case_rides, contact_rides, window, RULES, only_close) == expected
