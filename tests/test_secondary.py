"""Secondary contacts (次密接): close contacts of close contacts, during the close contact's exposure."""

from __future__ import annotations

import random

from graph.store import MemoryStore
from tests.builders import at, case, trip
from tests.conftest import Driver
from tracer.engine import Engine

D1, D2, D3 = "2020-01-20", "2020-01-21", "2020-01-22"
METRO = {"mode": "metro", "service": "L2-0734", "day": D2, "board": "07:30", "alight": "08:10"}
# C1 (P1) and P2 share a flight on D1 (P2 close); C1 is reported D2 12:00, so P2 counts as
# isolated at D3 12:00 unless a quarantine event says otherwise.
BASE = [
    trip("P1", seat="10A", trip_id="f1"),
    trip("P2", seat="11A", trip_id="f2"),
    trip("P2", **METRO, carriage="3", trip_id="m2"),
    trip("P5", **METRO, carriage="3", trip_id="m5"),  # same carriage as P2: secondary
    trip("P6", **METRO, carriage="4", trip_id="m6"),  # another carriage: general to P2, so nothing
    trip("P2", mode="metro", service="L9-1400", day=D3, board="14:00", alight="14:30", carriage="1", trip_id="l2"),
    trip("P7", mode="metro", service="L9-1400", day=D3, board="14:00", alight="14:30", carriage="1", trip_id="l7"),
]
REPORT = case("C1", "P1", onset="2020-01-21", reported_at=at("12:00", D2))


def test_close_contact_exposes_secondary_contacts(driver: Driver):
    driver.feed(*BASE, REPORT)
    assert ("P2", "P5") in driver.secondary()
    assert not {("P2", "P6"), ("P2", "P7")} & driver.secondary()  # general rule; after isolation
    alert = next(a for a in driver.live().values() if a["contact_person_id"] == "P5")
    assert alert["level"] == "secondary" and alert["case_id"] == "C1" and alert["via_person_id"] == "P2"
    assert alert["rule"] == "metro.same_carriage" and alert["exposure_start"] == at("07:30", D2)


def test_secondary_reaches_the_street_office(driver: Driver):
    from tests.builders import person

    driver.feed(person("P5", "310101002"), *BASE, REPORT)
    assert [a["contact_person_id"] for a in driver.live("310101002").values()] == ["P5"]


def test_quarantine_ends_the_exposure_period(driver: Driver):
    driver.feed(*BASE, REPORT)
    driver.feed({"type": "quarantine", "person_id": "P2", "at": at("15:00", D3)})  # late: P5 and P7
    assert {("P2", "P5"), ("P2", "P7")} <= driver.secondary()
    driver.feed({"type": "followup", "person_id": "P2", "outcome": "quarantined", "at": at("07:00", D2)})
    assert ("P2", "P5") not in driver.secondary()
    driver.feed({"type": "quarantine", "person_id": "P2", "at": at("15:00", D3)})  # the earliest still counts
    assert ("P2", "P5") not in driver.secondary()


def test_default_isolation_delay_follows_the_report_time(driver: Driver):
    driver.feed(*BASE, REPORT)
    assert ("P2", "P7") not in driver.secondary()
    driver.feed(case("C1", "P1", onset="2020-01-21", reported_at=at("15:00", D2)))  # P2 isolated D3 15:00
    assert ("P2", "P7") in driver.secondary()


def test_exclusion_retracts_secondary_contacts(driver: Driver):
    driver.feed(*BASE, REPORT)
    driver.feed(case("C1", "P1", status="excluded", onset="2020-01-21", reported_at=at("12:00", D2)))
    assert driver.live() == {}


def test_downgraded_close_contact_takes_its_secondaries_along(driver: Driver):
    driver.feed(*BASE, REPORT)
    driver.feed(trip("P2", seat="30A", trip_id="f2"))  # P2's seat corrected: general now
    assert driver.levels()["P2"] == "general" and driver.secondary() == set()


def test_depth_stops_at_two(driver: Driver):
    driver.feed(*BASE, REPORT, trip("P5", mode="metro", service="L3-0900", day=D2, board="09:00", alight="09:30",
                                     carriage="2"),
                trip("P8", mode="metro", service="L3-0900", day=D2, board="09:00", alight="09:30", carriage="2"))
    assert "P8" not in {contact for _, contact in driver.secondary()}


def test_arrival_order_does_not_matter():
    events = [*BASE, REPORT]
    expected = None
    for seed in range(6):
        order = list(events)
        random.Random(seed).shuffle(order)
        driver = Driver(MemoryStore())
        driver.feed(*order)
        expected = expected or driver.live()
        assert driver.live() == expected
    assert any(a["level"] == "secondary" for a in expected.values())


def test_secondary_tracing_can_be_turned_off():
    from tracer.oracle import expected_alerts
    from tracer.settings import RuleSettings

    rules = RuleSettings(trace_secondary=False)
    driver = Driver(MemoryStore(), rules)
    driver.feed(*BASE, REPORT)
    assert driver.secondary() == set() and driver.levels()["P2"] == "close"
    assert driver.live() == expected_alerts([*BASE, REPORT], rules)


def test_the_earliest_quarantine_counts_in_any_order():
    """Isolation is the earliest quarantined follow-up, not the last to arrive (docs/rules.md): two
    of them arriving in either order give the same alerts."""
    first = {"type": "quarantine", "person_id": "P2", "at": at("07:00", D1)}  # before the flight
    later = {"type": "followup", "person_id": "P2", "outcome": "quarantined", "at": at("15:00", D3)}
    found = []
    for order in ([first, later], [later, first]):
        driver = Driver(MemoryStore())
        driver.feed(*BASE, REPORT, *order)
        assert not {("P2", "P5"), ("P2", "P7")} & driver.secondary()
        found.append(driver.live())
    assert found[0] == found[1]


def test_other_followups_do_not_isolate(driver: Driver):
    driver.feed(*BASE, REPORT)
    before = driver.live()
    for outcome in ("reached", "unreachable", "released"):
        driver.feed({"type": "followup", "person_id": "P2", "outcome": outcome, "at": at("07:00", D2)})
    assert driver.live() == before


def test_a_case_moved_to_another_person_renames_its_secondary_alerts(driver: Driver):
    # P9 sits two rows from P2 on the same flight: P2 stays close, with the same exposure period.
    driver.feed(*BASE, trip("P9", seat="13A", trip_id="f9"), REPORT)
    driver.feed(case("C1", "P9", onset="2020-01-21", reported_at=at("12:00", D2)))
    alert = next(a for a in driver.live().values() if a["contact_person_id"] == "P5")
    assert (alert["case_person_id"], alert["via_person_id"]) == ("P9", "P2")


def test_on_days_it_does_not_deliver_the_engine_makes_only_close_alerts_of_cases(store):
    """A Kafka partition on days it does not own: the close alerts of cases are what secondary
    tracing needs there (to derive via windows and mark close contacts); nothing else is made."""
    everything, partial = Driver(MemoryStore()), Driver(store)
    partial.engine = Engine(store, partial.rules, delivers=lambda day: not day.startswith(D1))
    events = [*BASE, trip("P8", seat="30A", trip_id="f8"), REPORT]  # P8: general on the D1 flight
    everything.feed(*events)
    partial.feed(*events)
    levels = {(a["contact_person_id"], a["date"]): a["level"] for a in everything.live().values()}
    assert levels[("P8", D1)] == "general" and levels[("P2", D1)] == "close"
    kept = {(a["contact_person_id"], a["date"]): a["level"] for a in partial.live().values()}
    # D1 undelivered: its close alert stays (P5's secondary alert on D2 is derived from it), not P8's.
    assert kept == {k: v for k, v in levels.items() if k != ("P8", D1)}
    assert kept[("P5", D2)] == "secondary"


def test_with_secondary_tracing_off_no_later_event_makes_a_secondary_alert():
    """A quarantine, a re-report that moves the default isolation: each re-derives via sources
    when secondary tracing is on, and must make none when it is off (they once did)."""
    from dataclasses import replace

    from tracer.settings import RuleSettings

    driver = Driver(MemoryStore(), replace(RuleSettings(), trace_secondary=False))
    driver.feed(*BASE, REPORT)
    driver.feed({"type": "quarantine", "person_id": "P2", "at": at("15:00", D3)})
    driver.feed(case("C1", "P1", onset="2020-01-21", reported_at=at("15:00", D2)))
    assert driver.secondary() == set()
    assert driver.levels()["P2"] == "close"
