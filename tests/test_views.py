"""Follow-ups, health status and call lists kept by the engine's views (docs/rules.md, "Follow-up
and health status"), at their edges. Event time moves with every trip here (quorum 1), so a trip
of a bystander is how a test moves "now"."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from graph.store import MemoryStore
from tests.builders import at, case, person, trip
from tests.conftest import Driver
from tracer.alerts import fold
from tracer.events import parse_line, parse_time
from tracer.settings import RuleSettings, Settings, StatusSettings
from tracer.views import call_list, has_followup, hold, listed_in, status, tracing_kpis

D1, D2, D3 = "2020-01-20", "2020-01-21", "2020-01-22"
OFFICE, OTHER = "310101002", "310101013"
SETTINGS = Settings(rules=RuleSettings(event_time_quorum=1))
# C1 (P1) and P2 share a flight on D1 from 08:00 to 10:00, two rows apart: P2 is a close contact,
# exposed until 10:00 D1, so red until 10:00 on 2020-02-03 (14 days). C1 is reported 12:00 D3.
BASE = [person("P2", OFFICE), trip("P1", seat="10A", trip_id="f1"), trip("P2", seat="12A", trip_id="f2")]
REPORT = case("C1", "P1", onset="2020-01-21", reported_at=at("12:00", D3))
UNTIL = at("10:00", "2020-02-03")


def clock(moment: str, name: str = "tick") -> dict[str, Any]:
    """A bystander's ride boarding at ``moment``: moves event time there (quorum 1)."""
    day, time = moment[:10], moment[11:16]
    return trip("BYSTANDER", mode="metro", service=f"L9-{name}-{moment}", day=day, board=time, alight="23:59",
                trip_id=f"clock-{moment}")


def followup(person_id: str, outcome: str, moment: str, **extra: Any) -> dict[str, Any]:
    return {"type": "followup", "person_id": person_id, "outcome": outcome, "at": moment, **extra}


def drive(*events: dict[str, Any], settings: Settings = SETTINGS, batch: int = 1) -> Driver:
    driver = Driver(MemoryStore(), settings=settings, batch=batch)
    driver.feed(*events)
    return driver


def color(driver: Driver, person_id: str) -> str:
    return status(driver.store, driver.settings, person_id, driver.engine.event_time)["color"]


def folded(driver: Driver) -> dict[str, dict[str, Any]]:
    """The status stream folded by person: the last record of each (absent: green)."""
    last = {record["person_id"]: record for record in driver.statuses}
    return {person_id: record for person_id, record in last.items() if record["color"] != "green"}


def rows(driver: Driver, office: str = OFFICE, **options: Any) -> list[dict[str, Any]]:
    return call_list(driver.store, driver.settings, office, driver.engine.event_time, **options)


def test_a_close_contact_is_red_until_14_days_after_the_exposure():
    driver = drive(*BASE, REPORT, clock(at("09:00", D3)))
    record = folded(driver)["P2"]
    assert record["color"] == "red" and record["until"] == UNTIL
    assert record["reasons"] == [{"kind": "contact", "level": "close", "source_kind": "case", "case_id": "C1",
                                  "exposure_end": at("10:00", D1), "until": UNTIL}]
    assert folded(driver)["P1"]["reasons"] == [{"kind": "case", "case_id": "C1", "status": "confirmed"}]


def test_expiry_exactly_at_the_watermark_turns_green_and_is_emitted_once():
    driver = drive(*BASE, REPORT, clock(at("09:59:59", "2020-02-03")))
    assert color(driver, "P2") == "red"
    driver.feed(clock(UNTIL, "exact"))
    assert color(driver, "P2") == "green"
    assert driver.statuses[-1] == {"person_id": "P2", "color": "green", "reasons": [], "until": None, "at": UNTIL}
    driver.feed(clock(at("12:00", "2020-02-03"), "later"))
    assert [r["color"] for r in driver.statuses if r["person_id"] == "P2"] == ["red", "green"]


def test_release_before_expiry_turns_green_and_a_later_exposure_starts_again():
    driver = drive(*BASE, REPORT, followup("P2", "released", at("12:00", D1)))
    assert color(driver, "P2") == "green"
    row = rows(driver)[0]
    assert row["observation_until"] is None and row["followup"]["outcome"] == "released"
    # A later flight with the case (before its isolation): a new exposure, after the release.
    driver.feed(trip("P1", seat="10A", trip_id="f3", day=D2), trip("P2", seat="11A", trip_id="f4", day=D2))
    assert color(driver, "P2") == "red"


def test_a_release_before_the_exposure_ended_releases_nothing():
    driver = drive(*BASE, REPORT, followup("P2", "released", at("09:30", D1)))
    assert color(driver, "P2") == "red"


def test_a_discharged_case_is_not_red_but_still_traced_and_an_excluded_one_retracts():
    driver = drive(*BASE, REPORT)
    driver.feed(case("C1", "P1", status="discharged", onset="2020-01-21", reported_at=at("12:00", D3)))
    assert color(driver, "P1") == "green" and color(driver, "P2") == "red"
    driver.feed(case("C1", "P1", status="excluded", onset="2020-01-21", reported_at=at("12:00", D3)))
    assert color(driver, "P2") == "green" and rows(driver) == []
    assert folded(driver) == {}


def test_a_followup_before_the_alert_it_answers_counts_once_the_alert_is_made():
    reached = followup("P2", "reached", at("14:00", D3), by=OFFICE)
    early, late = drive(reached, *BASE, REPORT), drive(*BASE, REPORT, reached)
    assert rows(early) == rows(late)
    row = rows(late)[0]
    assert row["answered"] == at("14:00", D3) and row["first_alert"] == at("12:00", D3)
    assert row["due_by"] == at("12:00", "2020-01-23") and row["overdue"] is False


def test_a_followup_before_the_first_alert_time_does_not_answer_it():
    driver = drive(*BASE, REPORT, followup("P2", "reached", at("11:00", D3)), clock(at("12:00", "2020-01-23")))
    row = rows(driver)[0]
    assert row["answered"] is None and row["followup"]["outcome"] == "reached"
    assert row["overdue"] is True  # due exactly now: 24 h after the case report


def test_a_retracted_alert_after_reached_leaves_the_list_and_turns_green():
    driver = drive(*BASE, REPORT, followup("P2", "reached", at("13:00", D3)))
    assert len(rows(driver)) == 1
    driver.feed(trip("P2", seat="30A", trip_id="f2"))  # corrected seat: a general contact now
    assert rows(driver) == [] and color(driver, "P2") == "yellow"
    assert [row["person_id"] for row in rows(driver, include_general=True)] == ["P2"]


def test_a_person_moving_office_moves_the_row():
    driver = drive(*BASE, REPORT)
    driver.feed(person("P2", OTHER))
    assert rows(driver) == [] and [row["person_id"] for row in rows(driver, OTHER)] == ["P2"]
    assert rows(driver, OTHER)[0]["subdistrict_name"] == "外滩街道"


def test_the_views_tell_which_queue_records_they_hold():
    """Kafka mode's console tells an office of a queue record once the views hold it (tracer.views.hold):
    an add when they hold its alert as it is, a retraction when they hold anything but that alert."""
    before, after = drive(*BASE, REPORT), drive(*BASE, REPORT, person("P2", OTHER))
    (added,), (moved,) = before.records[OFFICE], after.records[OTHER]
    retracted = after.records[OFFICE][-1]
    assert retracted["action"] == "retract" and moved["action"] == "add"
    assert hold(before.store, [added, retracted, moved]) == [True, False, False]  # the move not yet taken
    assert hold(after.store, [added, retracted, moved]) == [False, True, True]


def test_followups_out_of_order_the_latest_is_by_time_and_identical_ones_are_one():
    late = followup("P2", "unreachable", at("20:00", D3), by=OFFICE)
    early = followup("P2", "reached", at("13:00", D3), by=OFFICE, note="at home")
    driver = drive(*BASE, REPORT, late, early, early)
    row = rows(driver)[0]
    assert row["followup"] == {"outcome": "unreachable", "at": at("20:00", D3), "by": OFFICE, "note": None}
    assert row["answered"] == at("13:00", D3)
    assert len(driver.store.scan("F\x1fP2\x1f")) == 2


def test_a_followup_for_an_unknown_person_is_kept_and_counts_when_they_are_alerted():
    driver = drive(followup("P2", "quarantined", at("13:00", D3)))
    assert driver.dead == [] and rows(driver) == []
    driver.feed(*BASE, REPORT)
    assert rows(driver)[0]["answered"] == at("13:00", D3)


def test_a_green_general_colour_gives_no_reason():
    settings = replace(SETTINGS, status=StatusSettings(general_color="green"))
    far = trip("P3", seat="30A", trip_id="f5")  # general contact of C1
    assert color(drive(*BASE, far, REPORT), "P3") == "yellow"
    assert color(drive(*BASE, far, REPORT, settings=settings), "P3") == "green"


def test_overdue_close_contacts_come_first():
    second = person("P4", OFFICE)
    rides = [trip("P4", mode="metro", service="L2", day=D2, board="07:30", alight="08:10", carriage="3"),
             trip("P2", mode="metro", service="L2", day=D2, board="07:40", alight="08:00", carriage="3")]
    driver = drive(*BASE, second, *rides, REPORT, clock(at("13:00", "2020-01-25")))
    found = rows(driver)
    assert [(row["person_id"], row["level"], row["overdue"]) for row in found] == [
        ("P2", "close", True), ("P4", "secondary", True)]


@pytest.mark.parametrize("batch", [2, 5, 1000])
def test_batches_give_the_same_views(batch: int):
    events = [*BASE, followup("P2", "reached", at("13:00", D3)), REPORT, clock(at("09:00", "2020-01-25")),
              person("P2", OTHER), clock(UNTIL, "end")]
    one, many = drive(*events), drive(*events, batch=batch)
    assert folded(one) == folded(many)
    assert rows(one, OTHER) == rows(many, OTHER)
    assert fold(one.records["contacts"]) == fold(many.records["contacts"])


def test_a_bad_followup_is_refused_with_a_reason():
    driver = drive(followup("P2", "called", at("13:00", D3)), {"type": "followup", "person_id": "P2",
                                                                   "outcome": "reached", "at": "yesterday"},
                   followup("P2", "reached", at("13:00", D3), note="x" * 501))
    assert driver.dead[0].startswith("unknown outcome 'called' (expected reached, quarantined")
    assert "at is not an ISO 8601 time" in driver.dead[1]
    assert driver.dead[2].startswith("note must be text of at most 500 characters")


def test_now_moves_with_event_time_only():
    driver = drive(*BASE, REPORT)
    assert driver.engine.event_time == parse_time(at("08:00", D1))  # the last board time (quorum 1)


def test_views_forget_alerts_and_releases_behind_the_retention_horizon():
    settings = Settings(rules=RuleSettings(event_time_quorum=1, retention_days=3))
    driver = drive(*BASE, REPORT, followup("P2", "released", at("09:00", D1)), settings=settings)
    assert len(rows(driver)) == 1
    driver.feed(clock(at("08:00", "2020-01-23")))  # horizon 2020-01-20: the flight of D1 is kept
    assert len(rows(driver)) == 1
    driver.feed(clock(at("08:00", "2020-01-24")))  # horizon 2020-01-21: forgotten
    assert rows(driver) == [] and color(driver, "P2") == "green"
    facts = driver.store.get("O\x1f", "P2")
    assert facts is None or b'"r":null' in facts


def test_one_offices_kpis_are_its_row_of_the_citys_and_the_console_reads_its_lists_and_followups():
    """What the web console reads: one office's KPIs (its own residents only), the offices whose
    list holds a person, and whether the state holds a follow-up yet."""
    answered = followup("P2", "reached", at("13:00", D3), by=OFFICE)
    driver = drive(*BASE, person("P3", OTHER), trip("P3", seat="11C", trip_id="f3"), REPORT, answered)
    every = tracing_kpis(driver.store, driver.settings, driver.engine.event_time)
    for office in (OFFICE, OTHER):
        alone = tracing_kpis(driver.store, driver.settings, driver.engine.event_time, office)
        (listed,) = [counts for counts in every["offices"] if counts["subdistrict"] == office]
        assert alone["offices"] == [listed] and alone["city"] == {**listed, "subdistrict": "city", "name": None}
    assert (listed_in(driver.store, "P2"), listed_in(driver.store, "P3"), listed_in(driver.store, "P9")) == (
        {OFFICE}, {OTHER}, set())
    event = parse_line(orjson.dumps(answered), 1)
    assert has_followup(driver.store, event) and not has_followup(driver.store, replace(event, note="again"))
