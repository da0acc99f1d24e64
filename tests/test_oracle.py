"""The reference oracle against hand-made scenarios at the edges of docs/rules.md."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.oracle import expected_alerts, write_truth
from tracer.settings import RuleSettings

DAY = "2020-01-20"
SCHEMA = (Path(__file__).parents[1] / "docs" / "schema.md").read_text("utf-8")
KEYS = list(orjson.loads(SCHEMA.split("```json", 1)[1].split("```", 1)[0]))  # the order of docs/schema.md
_NO_ID = object()


def at(hhmm: str, day: str = DAY) -> str:
    return f"{day}T{hhmm}:00+08:00"


def trip(person: str, board: str = "08:00", alight: str = "10:00", trip_id: Any = None, **fields: Any) -> dict:
    """A trip of ``person`` on flight MU5101 of DAY unless ``fields`` say otherwise; ``trip_id``
    defaults to one per person and service, ``_NO_ID`` leaves it out."""
    record = {"type": "trip", "trip_id": trip_id or f"{person}:{fields.get('service', 'MU5101')}:{board}"}
    if trip_id is _NO_ID:
        del record["trip_id"]
    record |= {"person_id": person, "mode": "flight", "service": "MU5101", "date": DAY}
    record |= {"board_time": at(board), "alight_time": at(alight)}
    return record | fields


def case(person: str = "P1", case_id: str = "C1", onset: str = "2020-01-21", **fields: Any) -> dict:
    record = {"type": "case", "case_id": case_id, "person_id": person, "status": "confirmed", "onset": onset}
    return record | {"isolated_at": None, "reported_at": at("12:00", "2020-01-23")} | fields


def direct(events: list[dict], rules: RuleSettings | None = None) -> dict[str, dict]:
    """The alerts that are not secondary (no ``via_person_id``)."""
    alerts = expected_alerts(events, rules or RuleSettings())
    return {key: alert for key, alert in alerts.items() if alert["via_person_id"] is None}


def contacts(*events: dict, rules: RuleSettings | None = None) -> dict[str, tuple[str, str]]:
    """contact_person_id -> (level, rule) of the direct alerts (all of case C1's unless several cases)."""
    return {a["contact_person_id"]: (a["level"], a["rule"]) for a in direct(list(events), rules).values()}


def only(*events: dict, rules: RuleSettings | None = None) -> dict:
    alerts = list(direct(list(events), rules).values())
    assert len(alerts) == 1, alerts
    return alerts[0]


CLOSE_ROWS = ("close", "flight.rows_within_span")
SAME_FLIGHT = ("general", "flight.same_flight")


# Flights


def test_flight_rows_within_three_are_close_four_are_general() -> None:
    found = contacts(
        case(),
        trip("P1", seat="32C"),
        trip("A", seat="29A"),
        trip("B", seat="35F"),
        trip("C", seat="28C"),
        trip("D", seat="36C"),
        trip("E", seat="32D"),
        trip("F"),
        trip("G", seat="exit row"),
    )
    assert found == {
        "A": CLOSE_ROWS,
        "B": CLOSE_ROWS,
        "C": SAME_FLIGHT,
        "D": SAME_FLIGHT,
        "E": CLOSE_ROWS,
        "F": SAME_FLIGHT,
        "G": SAME_FLIGHT,
    }


def test_flight_row_span_is_a_setting() -> None:
    found = contacts(case(), trip("P1", seat="32C"), trip("C", seat="28C"), rules=RuleSettings(flight_row_span=4))
    assert found == {"C": CLOSE_ROWS}


def test_flight_crew_serving_the_case_row() -> None:
    served = ("close", "flight.crew_served_case_row")
    found = contacts(
        case(),
        trip("P1", seat="12C"),
        trip("A", role="crew", crew_rows="1-20"),
        trip("B", role="crew", crew_rows="21-40"),
        trip("C", role="crew"),
        trip("D", role="crew", crew_rows="12"),
        trip("E", role="crew", crew_rows="13"),
    )
    assert found == {"A": served, "B": SAME_FLIGHT, "C": served, "D": served, "E": SAME_FLIGHT}


def test_flight_case_row_unknown_only_whole_cabin_crew_is_close() -> None:
    found = contacts(case(), trip("P1"), trip("A", role="crew", crew_rows="1-40"), trip("B", role="crew"))
    assert found == {"A": SAME_FLIGHT, "B": ("close", "flight.crew_served_case_row")}


def test_flight_case_crew_with_rows() -> None:
    served = ("close", "flight.case_crew_served_row")
    found = contacts(
        case(),
        trip("P1", role="crew", crew_rows="21-40"),
        trip("A", seat="21A"),
        trip("B", seat="40F"),
        trip("C", seat="20F"),
        trip("D"),
        trip("E", role="crew", crew_rows="1-20"),
    )
    assert found == {
        "A": served,
        "B": served,
        "C": SAME_FLIGHT,
        "D": SAME_FLIGHT,
        "E": ("close", "flight.crew_together"),
    }


def test_flight_case_crew_without_rows_serves_every_passenger() -> None:
    served = ("close", "flight.case_crew_served_row")
    found = contacts(case(), trip("P1", role="crew"), trip("A", seat="1A"), trip("B"), trip("C", role="crew"))
    assert found == {"A": served, "B": served, "C": ("close", "flight.crew_together")}


# Time: rides, exposure, window


def test_touching_rides_never_meet_overlapping_ones_do() -> None:
    events = [case(), trip("P1", "08:00", "09:00", seat="1A"), trip("A", "09:00", "10:00", seat="1A")]
    alert = only(*events, trip("B", "07:00", "08:01", seat="30A"))
    assert (alert["contact_person_id"], alert["level"]) == ("B", "general")
    assert (alert["exposure_start"], alert["exposure_end"]) == (at("08:00"), at("08:01"))


def test_min_overlap_seconds_must_be_exceeded() -> None:
    events = [case(), trip("P1", "08:00", "09:00"), trip("A", "08:59", "10:00"), trip("B", "08:58", "10:00")]
    assert contacts(*events) == {"A": SAME_FLIGHT, "B": SAME_FLIGHT}
    assert contacts(*events, rules=RuleSettings(min_overlap_seconds=60)) == {"B": SAME_FLIGHT}


def test_window_starts_at_local_midnight_of_onset_minus_lookback() -> None:
    night = {"mode": "train", "service": "Z40", "date": "2020-01-19", "carriage": 1}
    events = [
        case(onset="2020-01-22"),
        trip("P1", **night) | {"board_time": at("22:00", "2020-01-19"), "alight_time": at("02:00")},
        trip("A", **night) | {"board_time": at("23:00", "2020-01-19"), "alight_time": at("00:00")},
        trip("B", **night) | {"board_time": at("23:00", "2020-01-19"), "alight_time": at("00:30")},
    ]
    alert = only(*events)
    assert alert["contact_person_id"] == "B"
    assert (alert["exposure_start"], alert["exposure_end"]) == ("2020-01-20T00:00:00+08:00", at("00:30"))
    assert contacts(*events, rules=RuleSettings(lookback_days=3)) == {
        "A": ("close", "train.same_carriage"),
        "B": ("close", "train.same_carriage"),
    }


def test_window_starts_in_the_configured_zone_not_utc() -> None:
    events = [case(onset="2020-01-22"), trip("P1", "07:00", "09:00"), trip("A", "07:00", "09:00")]
    alert = only(*events, rules=RuleSettings(timezone="UTC"))
    assert (alert["exposure_start"], alert["exposure_end"]) == (
        "2020-01-20T00:00:00+00:00",
        "2020-01-20T01:00:00+00:00",
    )


def test_window_ends_at_isolation_exclusive() -> None:
    events = [
        case(isolated_at=at("09:00")),
        trip("P1", "08:00", "10:00"),
        trip("A", "08:30", "10:00"),
        trip("B", "09:00", "10:00"),
    ]
    alert = only(*events)
    assert alert["contact_person_id"] == "A"
    assert (alert["exposure_start"], alert["exposure_end"]) == (at("08:30"), at("09:00"))


def test_isolated_before_window_traces_nothing_and_null_stays_open() -> None:
    rides = [trip("P1", "08:00", "10:00"), trip("A", "08:00", "10:00")]
    assert contacts(case(onset="2020-01-25", isolated_at=at("08:00", "2020-01-22")), *rides) == {}
    assert contacts(case(onset="2020-01-10", isolated_at=None), *rides) == {"A": SAME_FLIGHT}
    assert contacts(case(onset="2020-01-10", isolated_at=at("08:00", "2020-01-10")), *rides) == {}


def test_output_times_in_the_rules_zone_with_microseconds_only_when_set() -> None:
    events = [case(), trip("P1", "08:00", "10:00"), trip("A") | {"board_time": "2020-01-20T00:30:00.25+00:00"}]
    alert = only(*events)
    assert (alert["exposure_start"], alert["exposure_end"]) == ("2020-01-20T08:30:00.250000+08:00", at("10:00"))


def test_rides_meet_only_on_the_same_mode_service_and_date() -> None:
    events = [
        case(),
        trip("P1"),
        trip("A", service="MU5102"),
        trip("B", date="2020-01-21"),
        trip("C", mode="train", carriage=1),
        trip("D"),
    ]
    assert contacts(*events) == {"D": SAME_FLIGHT}


# Trains


def test_sealed_train_same_carriage_compared_as_trimmed_strings() -> None:
    same = ("close", "train.same_carriage")
    general = ("general", "train.same_train")
    train = {"mode": "train", "service": "G7001"}
    found = contacts(
        case(),
        trip("P1", carriage=5, seat="07F", **train),
        trip("A", carriage=" 5 ", **train),
        trip("B", carriage="05", **train),
        trip("C", carriage=6, **train),
        trip("D", **train),
        trip("E", carriage=6, role="crew", **train),
        trip("F", carriage=5, role="crew", **train),
    )
    assert found == {"A": same, "B": general, "C": general, "D": general, "E": general, "F": same}


def test_crew_in_the_case_carriage_first_matching_row_decides() -> None:
    """docs/rules.md does not rank its rows; the oracle reads each table top to bottom, so crew who
    also match an earlier row (same carriage, compartment or bay) get that row's rule."""
    sealed = {"mode": "train", "service": "G7001", "carriage": 3, "role": "crew"}
    assert contacts(case(), trip("P1", mode="train", service="G7001", carriage=3), trip("A", **sealed)) == {
        "A": ("close", "train.same_carriage")
    }
    open_car = {"mode": "train", "service": "K101", "carriage": 8, "sealed": False}
    found = contacts(
        case(),
        trip("P1", compartment=5, **open_car),
        trip("A", compartment=6, role="crew", **open_car),
        trip("B", compartment=9, role="crew", **open_car),
    )
    assert found == {"A": ("close", "train.bay_within_span"), "B": ("close", "train.crew_of_carriage")}


def test_sealed_train_carriage_unknown_on_the_case_side_is_general() -> None:
    train = {"mode": "train", "service": "G7001"}
    assert contacts(case(), trip("P1", **train), trip("A", carriage=5, **train)) == {
        "A": ("general", "train.same_train")
    }


def test_soft_sleeper_compartment() -> None:
    train = {"mode": "train", "service": "D301", "berth": "soft_sleeper"}
    found = contacts(
        case(),
        trip("P1", carriage=3, compartment=2, **train),
        trip("A", carriage=3, compartment="2", **train),
        trip("B", carriage=3, compartment=3, **train),
        trip("C", carriage=4, compartment=2, **train),
        trip("D", carriage=3, **train),
        trip("E", carriage=3, role="crew", **train),
    )
    assert found == {
        "A": ("close", "train.same_compartment"),
        "B": ("general", "train.same_train"),
        "C": ("general", "train.same_train"),
        "D": ("general", "train.same_train"),
        "E": ("close", "train.crew_of_carriage"),
    }


def test_soft_sleeper_compartment_unknown_falls_back_to_the_carriage_sealed_or_not() -> None:
    for sealed in (True, False):
        train = {"mode": "train", "service": "K101", "berth": "soft_sleeper", "sealed": sealed}
        found = contacts(case(), trip("P1", carriage=13, **train), trip("A", carriage=13, compartment=4, **train))
        assert found == {"A": ("close", "train.same_carriage")}


def test_unsealed_train_bays_within_one() -> None:
    train = {"mode": "train", "service": "K101", "sealed": False}
    near = ("close", "train.bay_within_span")
    general = ("general", "train.same_train")
    found = contacts(
        case(),
        trip("P1", carriage=8, compartment=5, berth="hard_sleeper", **train),
        trip("A", carriage=8, compartment=4, **train),
        trip("B", carriage=8, compartment="06", **train),
        trip("C", carriage=8, compartment=3, **train),
        trip("D", carriage=8, compartment=7, **train),
        trip("E", carriage=8, compartment="A", **train),
        trip("F", carriage=8, **train),
        trip("G", carriage=9, compartment=5, **train),
        trip("H", carriage=8, role="crew", **train),
        trip("I", carriage=8, compartment=5, **train),
    )
    assert found == {
        "A": near,
        "B": near,
        "C": general,
        "D": general,
        "E": general,
        "F": general,
        "G": general,
        "H": ("close", "train.crew_of_carriage"),
        "I": near,
    }
    wider = RuleSettings(train_bay_span=2)
    events = [case(), trip("P1", carriage=8, compartment=5, **train), trip("C", carriage=8, compartment=3, **train)]
    assert contacts(*events, rules=wider) == {"C": near}


def test_unsealed_train_case_bay_not_numeric_is_general() -> None:
    train = {"mode": "train", "service": "K101", "sealed": False}
    rides = [trip("P1", carriage=8, compartment="A", **train), trip("A", carriage=8, compartment="A", **train)]
    found = contacts(case(), *rides)
    assert found == {"A": ("general", "train.same_train")}


def test_unsealed_soft_sleeper_compartment() -> None:
    train = {"mode": "train", "service": "K101", "sealed": False, "berth": "soft_sleeper"}
    found = contacts(
        case(),
        trip("P1", carriage=13, compartment=4, **train),
        trip("A", carriage=13, compartment=4, **train),
        trip("B", carriage=13, compartment=5, **train),
    )
    assert found == {"A": ("close", "train.same_compartment"), "B": ("general", "train.same_train")}


def test_the_case_ride_decides_sealed() -> None:
    found = contacts(
        case(),
        trip("P1", mode="train", service="K101", carriage=8, compartment=1, sealed=False),
        trip("A", mode="train", service="K101", carriage=8, compartment=9),
        trip("B", mode="train", service="K101", carriage=8, compartment=2),
    )
    assert found == {"A": ("general", "train.same_train"), "B": ("close", "train.bay_within_span")}


# Metro


def test_metro_same_carriage_close_otherwise_general() -> None:
    run = {"mode": "metro", "service": "L2-20200120-0734"}
    found = contacts(
        case(),
        trip("P1", carriage=3, **run),
        trip("A", carriage=3, **run),
        trip("B", carriage="3 ", role="crew", **run),
        trip("C", carriage=4, **run),
        trip("D", **run),
    )
    close, general = ("close", "metro.same_carriage"), ("general", "metro.same_train")
    assert found == {"A": close, "B": close, "C": general, "D": general}


def test_metro_without_carriage_on_the_case_side_is_general() -> None:
    run = {"mode": "metro", "service": "L2-20200120-0734"}
    assert contacts(case(), trip("P1", **run), trip("A", carriage=3, **run)) == {"A": ("general", "metro.same_train")}


# Cases


def test_statuses_traced_and_excluded() -> None:
    rides = [trip("P1"), trip("A")]
    for status in ("confirmed", "asymptomatic", "suspected", "discharged"):
        assert contacts(case(status=status), *rides) == {"A": SAME_FLIGHT}
    assert contacts(case(status="excluded"), *rides) == {}
    assert contacts(case(status="suspected"), case(status="excluded"), *rides) == {}
    assert contacts(case(status="excluded"), case(status="confirmed"), *rides) == {"A": SAME_FLIGHT}


def test_case_update_last_in_stream_order_wins() -> None:
    rides = [trip("P1", "08:00", "10:00"), trip("A", "08:00", "10:00")]
    moved = case(onset="2020-01-25", reported_at=at("09:00", "2020-01-21"))  # reported earlier, arrives later
    assert contacts(case(), moved, *rides) == {}
    assert contacts(moved, case(), *rides) == {"A": SAME_FLIGHT}
    alert = only(case(), case(isolated_at=at("09:00")), *rides)
    assert alert["exposure_end"] == at("09:00")


def test_case_update_changing_the_person_traces_the_new_person() -> None:
    events = [case(), trip("P1", seat="1A"), trip("A", seat="1B"), trip("B", seat="30A"), case(person="A")]
    found = {(a["case_person_id"], a["contact_person_id"]) for a in expected_alerts(events).values()}
    assert found == {("A", "P1"), ("A", "B")}


def test_case_person_is_never_its_own_contact() -> None:
    events = [case(), trip("P1", seat="1A", trip_id="t1"), trip("P1", seat="2A", trip_id="t2"), trip("A", seat="1B")]
    assert contacts(*events) == {"A": CLOSE_ROWS}


def test_two_cases_are_contacts_of_each_other() -> None:
    events = [case(), case("A", "C2"), trip("P1", seat="1A"), trip("A", seat="1B")]
    found = {(a["case_id"], a["contact_person_id"]) for a in expected_alerts(events).values()}
    assert found == {("C1", "A"), ("C2", "P1")}


# Trips


def test_trip_correction_replaces_the_trip() -> None:
    run = {"mode": "metro", "service": "L2-20200120-0734"}
    first, fixed = trip("A", carriage=3, **run), trip("A", carriage=4, **run)
    assert contacts(case(), trip("P1", carriage=3, **run), first) == {"A": ("close", "metro.same_carriage")}
    assert contacts(case(), trip("P1", carriage=3, **run), first, fixed) == {"A": ("general", "metro.same_train")}
    moved = first | {"service": "L2-20200120-0738"}
    assert contacts(case(), trip("P1", carriage=3, **run), first, moved) == {}


def test_trips_without_trip_id_are_keyed_by_content() -> None:
    run = {"mode": "metro", "service": "L2-20200120-0734", "trip_id": _NO_ID}
    base = [case(), trip("P1", carriage=3, **run)]
    once = expected_alerts([*base, trip("A", carriage=4, **run)])
    assert expected_alerts([*base, trip("A", carriage=4, **run), trip("A", carriage=4, **run)]) == once
    both = contacts(*base, trip("A", carriage=4, **run), trip("A", carriage=3, **run))
    assert both == {"A": ("close", "metro.same_carriage")}


def test_duplicate_trip_delivery_changes_nothing() -> None:
    events = [case(), trip("P1", seat="1A"), trip("A", seat="2A"), trip("B", seat="9A")]
    assert expected_alerts([*events, events[2], events[1]]) == expected_alerts(events)


# One alert per (case, contact, service): the best pair


def test_best_pair_prefers_close_then_earlier_start_then_later_end_then_shown_labels() -> None:
    run = {"mode": "metro", "service": "L2-20200120-0734"}
    base = [case(), trip("P1", "08:00", "09:00", carriage=3, trip_id="c1", **run)]
    general_early = trip("A", "08:00", "09:00", carriage=4, trip_id="a1", **run)
    close_late = trip("A", "08:30", "09:00", carriage=3, trip_id="a2", **run)
    assert only(*base, general_early, close_late)["contact_carriage"] == "3"
    close_early = trip("A", "08:10", "08:20", carriage=3, trip_id="a3", **run)
    assert only(*base, close_late, close_early)["exposure_start"] == at("08:10")
    long = trip("A", "08:10", "08:40", carriage=3, trip_id="a4", **run)
    assert only(*base, close_early, long)["exposure_end"] == at("08:40")
    twin = trip("A", "08:10", "08:40", carriage=" 3", trip_id="a0", **run)
    assert only(*base, long, twin)["contact_carriage"] == "3"
    assert only(*base, twin, long | {"carriage": "3 ", "trip_id": "a00"}) == only(*base, twin)
    # Then what the alert shows of the rides (absent first), before trip ids: ids are made up for
    # trips published without one.
    second_case_ride = trip("P1", "08:00", "09:00", carriage=3, seat="x", trip_id="c0", **run)
    assert only(*base, second_case_ride, long)["case_seat"] is None
    seated_twin = long | {"seat": "1A", "trip_id": "a0"}
    assert only(*base, seated_twin, long)["contact_seat"] is None
    assert only(*base, seated_twin, long | {"seat": "2A"})["contact_seat"] == "1A"


def test_alert_fields_in_schema_order() -> None:
    events = [
        {"type": "person", "person_id": "A", "subdistrict": "310101002"},
        case(),
        trip("P1", seat="32C"),
        trip("A", seat="34A"),
    ]
    alert = only(*events)
    assert list(alert) == KEYS
    key = "\x1f".join(["case", "C1", "A", "flight", "MU5101", DAY]).encode()
    assert alert == {
        "v": 1,
        "alert_id": hashlib.sha256(key).hexdigest()[:16],
        "action": "add",
        "level": "close",
        "source_kind": "case",
        "case_id": "C1",
        "case_person_id": "P1",
        "contact_person_id": "A",
        "via_person_id": None,
        "subdistrict": "310101002",
        "mode": "flight",
        "service": "MU5101",
        "date": DAY,
        "case_carriage": None,
        "case_seat": "32C",
        "contact_carriage": None,
        "contact_seat": "34A",
        "rule": "flight.rows_within_span",
        "exposure_start": at("08:00"),
        "exposure_end": at("10:00"),
        "window_truncated": False,
    }


def test_registry_last_person_event_wins_and_unknown_is_null() -> None:
    def person(sub: str) -> dict:
        return {"type": "person", "person_id": "A", "subdistrict": sub}

    alerts = expected_alerts([person("310101002"), case(), trip("P1"), trip("A"), trip("B"), person("310115123")])
    found = {a["contact_person_id"]: a["subdistrict"] for a in alerts.values()}
    assert found == {"A": "310115123", "B": None}


# Secondary contacts: through a close contact X, within X's exposure period

RUN1 = {"mode": "metro", "service": "L1-20200120-0800"}
RUN2 = {"mode": "metro", "service": "L2-20200120-1800"}
NEXT_DAY = {"mode": "metro", "service": "L3-20200121-1100", "date": "2020-01-21"}
CHAIN = [
    case(reported_at=at("12:00")),  # X is isolated 24 h later, 2020-01-21 12:00, unless quarantined
    trip("P1", "08:00", "08:30", carriage=3, **RUN1),
    trip("X", "08:10", "08:40", carriage=3, **RUN1),  # close: X's exposure period starts at 08:10
    trip("G", "08:10", "08:40", carriage=4, **RUN1),  # general: exposes nobody
]


def secondary(*events: dict, rules: RuleSettings | None = None) -> dict[tuple[str, str], dict]:
    """(via, contact) -> the secondary alert."""
    alerts = expected_alerts(list(events), rules or RuleSettings()).values()
    return {(a["via_person_id"], a["contact_person_id"]): a for a in alerts if a["via_person_id"] is not None}


def next_day(person: str, board: str, alight: str, **fields: Any) -> dict:
    ride = trip(person, **NEXT_DAY, **fields)
    return ride | {"board_time": at(board, "2020-01-21"), "alight_time": at(alight, "2020-01-21")}


def test_secondary_contacts_meet_a_close_contact_under_a_close_rule() -> None:
    found = secondary(
        *CHAIN,
        trip("X", "18:00", "18:30", carriage=5, **RUN2),
        trip("Y", "18:10", "19:00", carriage=5, **RUN2),
        trip("Z", "18:10", "19:00", carriage=6, **RUN2),
        trip("G", "18:00", "18:30", carriage=7, **RUN2),
        trip("W", "18:00", "18:30", carriage=7, **RUN2),
    )
    assert list(found) == [("X", "Y")]
    alert = found[("X", "Y")]
    key = "\x1f".join(["case", "C1", "Y", "metro", RUN2["service"], DAY, "X"]).encode()
    assert alert["alert_id"] == hashlib.sha256(key).hexdigest()[:16]
    assert list(alert) == KEYS
    assert (alert["level"], alert["rule"], alert["case_person_id"], alert["case_carriage"]) == (
        "secondary",
        "metro.same_carriage",
        "P1",
        "5",
    )
    assert (alert["exposure_start"], alert["exposure_end"]) == (at("18:10"), at("18:30"))


def test_secondary_period_starts_at_the_first_close_exposure() -> None:
    early = {"mode": "metro", "service": "L2-20200120-0700"}
    rides = [trip("X", "07:00", "08:20", carriage=2, **early), trip("Y", "07:00", "08:20", carriage=2, **early)]
    alert = secondary(*CHAIN, *rides)[("X", "Y")]
    assert (alert["exposure_start"], alert["exposure_end"]) == (at("08:10"), at("08:20"))
    assert secondary(*CHAIN, *[ride | {"alight_time": at("08:10")} for ride in rides]) == {}


def test_secondary_period_ends_at_isolation_earliest_quarantined_followup_wins() -> None:
    rides = [next_day("X", "11:00", "13:00", carriage=2), next_day("V", "11:30", "13:00", carriage=2)]

    def end(*events: dict, rules: RuleSettings | None = None) -> str | None:
        found = secondary(*CHAIN, *rides, *events, rules=rules)
        return found[("X", "V")]["exposure_end"] if found else None

    assert end() == at("12:00", "2020-01-21")
    assert end(rules=RuleSettings(contact_isolation_hours=23.75)) == at("11:45", "2020-01-21")
    quarantine = {"type": "quarantine", "person_id": "X"}
    assert end(quarantine | {"at": at("11:40", "2020-01-21")}) == at("11:40", "2020-01-21")
    assert end(quarantine | {"at": at("11:10", "2020-01-21")}) is None
    assert end(quarantine | {"at": at("12:30", "2020-01-21")}) == at("12:30", "2020-01-21")  # later than the default
    both = [quarantine | {"at": at("11:40", "2020-01-21")}, quarantine | {"at": at("12:30", "2020-01-21")}]
    assert end(*both) == end(*reversed(both)) == at("11:40", "2020-01-21")
    assert end(quarantine | {"at": "soon"}) == at("12:00", "2020-01-21")


def test_a_quarantined_followup_isolates_like_a_quarantine_event_other_outcomes_do_not() -> None:
    rides = [next_day("X", "11:00", "13:00", carriage=2), next_day("V", "11:30", "13:00", carriage=2)]

    def end(*events: dict) -> str | None:
        found = secondary(*CHAIN, *rides, *events)
        return found[("X", "V")]["exposure_end"] if found else None

    followup = {"type": "followup", "person_id": "X", "outcome": "quarantined", "by": "310115123"}
    assert end(followup | {"at": at("11:50", "2020-01-21")}) == at("11:50", "2020-01-21")
    assert end(followup | {"at": at("11:50", "2020-01-21"), "outcome": "reached"}) == at("12:00", "2020-01-21")
    quarantine = {"type": "quarantine", "person_id": "X", "at": at("12:30", "2020-01-21")}
    mixed = [quarantine, followup | {"at": at("11:50", "2020-01-21")}]
    assert end(*mixed) == end(*reversed(mixed)) == at("11:50", "2020-01-21")
    invalid = followup | {"at": at("11:50", "2020-01-21"), "note": "x" * 501}  # skipped: no isolation
    assert end(invalid) == at("12:00", "2020-01-21")


def test_case_person_and_x_are_never_secondary_through_x_a_direct_contact_can_be() -> None:
    found = secondary(
        *CHAIN,
        trip("Y", "08:00", "08:30", carriage=3, **RUN1),  # a direct close contact too
        trip("X", "18:00", "18:30", carriage=5, **RUN2),
        trip("P1", "18:00", "18:30", carriage=5, **RUN2),
        trip("Y", "18:00", "18:30", carriage=5, **RUN2),
    )
    assert set(found) == {("X", "Y"), ("Y", "X")}
    assert contacts(*CHAIN, trip("Y", "08:00", "08:30", carriage=3, **RUN1))["Y"][0] == "close"


def test_secondary_stops_at_depth_two_and_follows_the_close_alert() -> None:
    rides = [
        trip("X", "18:00", "18:30", carriage=5, **RUN2),
        trip("Y", "18:00", "18:30", carriage=5, **RUN2),
        next_day("Y", "11:00", "12:00", carriage=1),
        next_day("U", "11:00", "12:00", carriage=1),
    ]
    assert list(secondary(*CHAIN, *rides)) == [("X", "Y")]
    assert secondary(*CHAIN, *rides, case(status="excluded")) == {}
    assert secondary(*CHAIN, *rides, CHAIN[2] | {"carriage": 4}) == {}


# Published exposures

EXPOSURE = {"type": "exposure", "exposure_id": "X9", "mode": "train", "service": "G7", "date": DAY}


def test_exposure_is_traced_like_a_case_ride_in_its_window() -> None:
    train = {"mode": "train", "service": "G7"}
    events = [
        EXPOSURE | {"carriages": ["11", "12"], "start": at("08:00"), "end": at("09:00")},
        trip("A", "07:30", "10:00", carriage=12, **train),
        trip("B", "07:30", "10:00", carriage=3, **train),
        trip("C", "09:00", "10:00", carriage=11, **train),
        trip("A", "10:00", "11:00", carriage=12, **RUN2),  # no secondary contacts from exposures
        trip("D", "10:00", "11:00", carriage=12, **RUN2),
    ]
    alerts = {a["contact_person_id"]: a for a in expected_alerts(events).values()}
    assert {person: (a["level"], a["rule"]) for person, a in alerts.items()} == {
        "A": ("close", "train.same_carriage"),
        "B": ("general", "train.same_train"),
    }
    alert = alerts["A"]
    assert (alert["case_id"], alert["case_person_id"], alert["via_person_id"], alert["case_carriage"]) == (
        "X9",
        None,
        None,
        "12",
    )
    assert (alert["exposure_start"], alert["exposure_end"]) == (at("08:00"), at("09:00"))
    key = "\x1f".join(["exposure", "X9", "A", "train", "G7", DAY]).encode()
    assert alert["alert_id"] == hashlib.sha256(key).hexdigest()[:16]


def test_exposure_without_times_is_unbounded_without_places_is_general() -> None:
    flight = EXPOSURE | {"mode": "flight", "service": "MU5101"}
    rides = [
        trip("A", "23:00", "23:59", seat="15C") | {"alight_time": at("01:00", "2020-01-21")},
        trip("B", seat="16C"),
    ]
    found = {a["contact_person_id"]: a for a in expected_alerts([flight | {"seats": ["12A"]}, *rides]).values()}
    assert (found["A"]["level"], found["B"]["level"]) == ("close", "general")
    assert found["A"]["exposure_end"] == "2020-01-21T01:00:00+08:00"  # the rider's own ride bounds it
    unknown = {a["contact_person_id"]: a["level"] for a in expected_alerts([flight, *rides]).values()}
    assert unknown == {"A": "general", "B": "general"}


def test_exposure_places_are_carriage_and_seat_pairs_and_a_later_event_replaces() -> None:
    train = {"mode": "train", "service": "G7"}
    placed = EXPOSURE | {"carriages": ["2"], "seats": ["9A"]}
    alert = only(placed, trip("A", carriage="2", **train))
    assert (alert["case_carriage"], alert["case_seat"], alert["level"]) == ("2", "9A", "close")
    moved = EXPOSURE | {"carriages": ["3"]}
    assert only(placed, moved, trip("A", carriage="2", **train))["level"] == "general"
    assert only(placed, EXPOSURE | {"carriages": [3]}, trip("A", carriage="2", **train))["level"] == "close"


# Invalid records are ignored (the engine dead-letters them)


def test_invalid_records_are_ignored() -> None:
    valid = trip("A", seat="2A")
    invalid = [
        valid | {"alight_time": valid["board_time"]},
        valid | {"alight_time": at("07:00")},
        valid | {"mode": "bus"},
        {k: v for k, v in valid.items() if k != "person_id"},
        valid | {"person_id": "A\n"},
        valid | {"person_id": "A" * 129},
        valid | {"date": "2020-02-30"},
        valid | {"date": "2020/01-20"},  # 20200120 is read as 2020-01-20 (docs/rules.md, "Canonical forms")
        valid | {"board_time": "2020-01-20T08:00:00"},
        valid | {"crew_rows": "20-1"},
        valid | {"crew_rows": "front"},
        valid | {"carriage": True},
        valid | {"carriage": 3.0},
        valid | {"sealed": 1},
        valid | {"berth": "couchette"},
        valid | {"role": "pilot"},
        valid | {"seat": 2.5},
        valid | {"trip_id": ""},
        valid | {"service": ""},
        valid | {"alight_time": at("08:01", "2020-01-23")},
    ]
    base = [case(), trip("P1", seat="1A")]
    for record in invalid:
        assert contacts(*base, record) == {}, record
    assert contacts(*base, valid | {"extra": [1, 2]}) == {"A": CLOSE_ROWS}
    assert contacts(*base, valid | {"alight_time": at("08:00", "2020-01-23")}) == {"A": CLOSE_ROWS}  # 72 h


def test_invalid_case_and_person_events_are_ignored() -> None:
    rides = [trip("P1"), trip("A")]
    for bad in (case(status="cured"), case(onset="21.01.2020"), case(reported_at=None), case(isolated_at="soon")):
        assert contacts(bad, *rides) == {}
    assert contacts(case(), case(status="cured"), *rides) == {"A": SAME_FLIGHT}
    bad_person = {"type": "person", "person_id": "A", "subdistrict": "31010100"}
    assert only(bad_person, case(), *rides)["subdistrict"] is None
    assert expected_alerts([[1, 2], "trip", None, {"type": "unknown"}]) == {}


def test_write_truth_one_sorted_line_per_alert(tmp_path: Path) -> None:
    alerts = expected_alerts([case(), trip("P1", seat="1A"), trip("A", seat="2A"), trip("B", seat="9A")])
    write_truth(alerts, tmp_path / "truth.jsonl")
    lines = (tmp_path / "truth.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == [alerts[key] for key in sorted(alerts)]


# Properties


@settings(max_examples=60, deadline=None)
@given(
    rides=st.lists(
        st.tuples(st.sampled_from(["P1", "A", "B", "C"]), st.integers(0, 5), st.integers(1, 4), st.integers(1, 3)),
        min_size=1,
        max_size=12,
    ),
    order=st.randoms(use_true_random=False),
)
def test_trip_order_and_redelivery_do_not_matter(rides: list[tuple[str, int, int, int]], order: Any) -> None:
    """Distinct trips fold to the same alerts in any order, and redelivering any of them is a no-op."""
    run = {"mode": "metro", "service": "L1-20200120-0800"}
    trips = [
        trip(person, f"08:{start:02d}", f"08:{start + length:02d}", trip_id=f"t{n}", carriage=car, **run)
        for n, (person, start, length, car) in enumerate(rides)
    ]
    expected = expected_alerts([case(), *trips])
    shuffled = trips + trips[: len(trips) // 2]
    order.shuffle(shuffled)
    assert expected_alerts([case(), *shuffled]) == expected
    for alert in expected.values():
        assert alert["contact_person_id"] != "P1"
        assert alert["exposure_start"] < alert["exposure_end"]


def test_exposure_labels_are_trimmed_and_blank_ones_dropped_as_the_engine_does() -> None:
    """Tied places cite the smaller label as the engine reads it: ``" 2A"`` is ``2A``, ``""`` is none."""
    flight = EXPOSURE | {"mode": "flight", "service": "MU5101"}
    contact = trip("A", seat="1C")
    for seats, cited in (([" 2A", "1B"], "1B"), (["", "1A"], "1A"), (["  "], None)):
        alert = only(flight | {"seats": seats}, contact)
        assert alert["case_seat"] == cited, seats


def test_best_pair_ties_break_on_the_rule_before_trip_ids() -> None:
    train = {"mode": "train", "service": "K1", "carriage": 3, "berth": "hard_sleeper", "sealed": False}
    base = [case(), trip("P1", compartment="5", trip_id="c1", **train)]
    bay = trip("A", compartment="5", trip_id="b", **train)
    crew = trip("A", compartment="20", role="crew", trip_id="a", **train)
    assert only(*base, crew, bay)["rule"] == only(*base, bay, crew)["rule"] == "train.bay_within_span"
