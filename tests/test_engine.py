"""Streaming semantics of the engine, on both store backends."""

from __future__ import annotations

import random

from tests.builders import at, case, person, trip
from tests.conftest import Driver
from tracer.settings import RuleSettings

FLIGHT = [
    trip("P1", seat="10A", trip_id="t1"),
    trip("P2", seat="12B", trip_id="t2"),
    trip("P3", seat="20C", trip_id="t3"),
    trip("P4", seat="13A", trip_id="t4"),
]


def test_case_after_trips(driver: Driver):
    driver.feed(*FLIGHT, case("C1", "P1"))
    assert driver.levels() == {"P2": "close", "P3": "general", "P4": "close"}


def test_late_trip_meets_stored_case(driver: Driver):
    driver.feed(FLIGHT[0], case("C1", "P1"), *FLIGHT[1:])
    assert driver.levels() == {"P2": "close", "P3": "general", "P4": "close"}


def test_late_case_trip_meets_stored_riders(driver: Driver):
    driver.feed(case("C1", "P1"), *FLIGHT[1:], FLIGHT[0])
    assert driver.levels() == {"P2": "close", "P3": "general", "P4": "close"}


def test_case_person_is_never_own_contact(driver: Driver):
    driver.feed(
        *FLIGHT,
        trip("P1", seat="10A", service="MU5101", trip_id="t1b", board="08:00", alight="09:00"),
        case("C1", "P1"),
    )
    assert "P1" not in driver.levels()


def test_redelivery_and_repeated_case_emit_nothing(driver: Driver):
    driver.feed(*FLIGHT, case("C1", "P1"))
    assert driver.feed(*FLIGHT, case("C1", "P1")) == []
    without_id = trip("P9", seat="11A")
    assert [c.after["via_person_id"] for c in driver.feed(without_id)].count(None) == 1
    assert driver.feed(without_id) == []


def test_exclusion_retracts_everything(driver: Driver):
    driver.feed(*FLIGHT, case("C1", "P1"))
    changes = driver.feed(case("C1", "P1", status="excluded"))
    assert len(changes) == len(driver.records["contacts"]) // 2 and all(c.after is None for c in changes)
    assert driver.live() == {}
    driver.feed(trip("P5", seat="10B"))  # a late rider of an excluded case is not a contact
    assert driver.live() == {}


def test_suspected_then_confirmed_is_no_change(driver: Driver):
    driver.feed(*FLIGHT, case("C1", "P1", status="suspected"))
    assert driver.feed(case("C1", "P1", status="confirmed")) == []


def test_isolation_update_shrinks_then_retracts(driver: Driver):
    driver.feed(*FLIGHT, case("C1", "P1"))
    changes = [c for c in driver.feed(case("C1", "P1", isolated_at=at("09:00"))) if c.before and c.after]
    assert {c.after["exposure_end"] for c in changes if c.after["level"] != "secondary"} == {at("09:00")}
    assert all(c.before["alert_id"] == c.after["alert_id"] for c in changes)  # upserts
    driver.feed(case("C1", "P1", isolated_at=at("08:00")))
    assert driver.live() == {}


def test_onset_update_moves_window(driver: Driver):
    driver.feed(*FLIGHT, case("C1", "P1", onset="2020-01-25"))  # window opens 01-23: no alerts
    assert driver.live() == {}
    driver.feed(case("C1", "P1", onset="2020-01-22"))
    assert len(driver.direct()) == 3


def test_trip_correction_moves_seat(driver: Driver):
    driver.feed(*FLIGHT, case("C1", "P1"))
    driver.feed(trip("P3", seat="11C", trip_id="t3"))  # P3's seat corrected: now close
    assert driver.levels()["P3"] == "close"
    driver.feed(trip("P3", seat="11C", trip_id="t3", service="MU9999"))  # another flight
    assert "P3" not in driver.levels()


def test_case_trip_correction(driver: Driver):
    driver.feed(*FLIGHT, case("C1", "P1"))
    driver.feed(trip("P1", seat="20A", trip_id="t1"))
    assert driver.levels() == {"P2": "general", "P3": "close", "P4": "general"}


def test_registry_routes_and_reroutes(driver: Driver):
    driver.feed(person("P2", "310101002"), *FLIGHT, case("C1", "P1"))
    assert set(driver.records) == {"contacts", "310101002", "unassigned"}
    assert [a["contact_person_id"] for a in driver.direct("unassigned").values()] == ["P4"]
    driver.feed(person("P2", "310101013"))  # P2 moved
    assert driver.live("310101002") == {}
    assert [a["contact_person_id"] for a in driver.direct("310101013").values()] == ["P2"]
    assert driver.live()[next(iter(driver.direct("310101013")))]["subdistrict"] == "310101013"


def test_general_never_reaches_a_queue(driver: Driver):
    driver.feed(person("P3", "310101002"), *FLIGHT, case("C1", "P1"))
    assert "310101002" not in driver.records


def test_queue_gets_retraction_when_downgraded(driver: Driver):
    driver.feed(person("P2", "310101002"), *FLIGHT, case("C1", "P1"))
    driver.feed(trip("P2", seat="30A", trip_id="t2"))
    direct = [r["action"] for r in driver.records["310101002"] if r["via_person_id"] is None]
    assert direct == ["add", "retract"]
    assert driver.levels()["P2"] == "general"


def test_two_cases_one_contact(driver: Driver):
    driver.feed(
        *FLIGHT,
        trip("P3", seat="20D", trip_id="t3x", service="MU5102"),
        trip("P8", seat="20E", service="MU5102"),
        case("C1", "P1"),
        case("C2", "P3"),
    )
    cases = sorted((a["case_id"], a["contact_person_id"]) for a in driver.live().values())
    assert ("C2", "P1") in cases and ("C1", "P3") in cases and ("C2", "P8") in cases


def test_trips_on_other_dates_or_services_never_meet(driver: Driver):
    driver.feed(
        trip("P1", seat="1A"),
        trip("P2", seat="1B", day="2020-01-21"),
        trip("P3", seat="1C", service="MU5102"),
        trip("P4", seat="1C", mode="train", service="MU5101"),
        case("C1", "P1"),
    )
    assert driver.live() == {}


def test_retention_drops_old_days_and_rejects_late_trips(store):
    driver = Driver(store, RuleSettings(retention_days=3, event_time_quorum=1))  # each trip is event time
    driver.feed(trip("P1", seat="1A", trip_id="old"), trip("P2", seat="1B"))
    driver.feed(trip("P5", seat="1A", day="2020-01-25"))  # horizon moves to 2020-01-22
    driver.feed(case("C1", "P1", reported_at=at("09:00", "2020-01-25")))
    assert driver.live() == {}
    driver.feed(trip("P3", seat="1A"))
    assert driver.dead == ["trip date 2020-01-20 is before the retention horizon 2020-01-22"]


def test_window_truncated_flag(store):
    driver = Driver(store, RuleSettings(retention_days=2, event_time_quorum=1))
    driver.feed(
        trip("P9", seat="1A", day="2020-01-23", board="06:00", alight="07:00"),
        trip("P1", seat="1A", day="2020-01-23"),
        trip("P2", seat="2A", day="2020-01-23"),
        case("C1", "P1", onset="2020-01-22", reported_at=at("12:00", "2020-01-23")),
    )
    (alert,) = driver.live().values()
    assert alert["window_truncated"] is True  # window opens 01-20, horizon is 01-21


def shuffled_runs(store_factory, events, seeds=8):
    results = []
    for seed in range(seeds):
        order = list(events)
        trips = [e for e in order if e["type"] == "trip"]
        random.Random(seed).shuffle(trips)
        it = iter(trips)
        order = [next(it) if e["type"] == "trip" else e for e in order]
        driver = Driver(store_factory())
        driver.feed(*order)
        results.append(driver.live())
    return results


def test_order_of_trips_does_not_change_the_result():
    from graph.store import MemoryStore

    rng = random.Random(7)
    events = [person(f"P{i}", "310101002") for i in range(30)]
    for i in range(120):
        events.append(
            trip(
                f"P{rng.randrange(30)}",
                mode="metro",
                service=f"R{rng.randrange(4)}",
                carriage=str(rng.randrange(3)),
                board=f"08:{rng.randrange(0, 30):02d}",
                alight=f"09:{rng.randrange(0, 30):02d}",
                trip_id=f"m{i}",
            )
        )
    events.insert(60, case("C1", "P1"))
    events.insert(90, case("C2", "P2", isolated_at=at("09:10")))
    results = shuffled_runs(MemoryStore, events)
    assert results[0] and all(r == results[0] for r in results)


def test_retention_drops_a_day_in_bounded_batches(store, monkeypatch):
    import tracer.engine

    monkeypatch.setattr(tracer.engine, "_PURGE_BATCH", 100)
    driver = Driver(store, RuleSettings(retention_days=1, event_time_quorum=1))
    driver.feed(*(trip(f"P{i}", mode="metro", service=f"R{i % 7}", trip_id=f"t{i}") for i in range(600)))
    commits = []
    store.commit_hooks.append(lambda: commits.append(store.pending_count))
    driver.feed(trip("P9", mode="metro", service="R1", day="2020-01-23", trip_id="late"))
    assert len(commits) >= 12 and max(commits[1:]) <= 101  # after the first (earlier trips): 100 deletes a batch
    assert store.get("T\x1f", "t1") is None and store.scan("I\x1fP1\x1f") == []
    assert store.get("T\x1f", "late") is not None
