"""Published exposures are facts about the past (issue 16, item 7): they move no event time, no file
order loses them, and the lookup answers for them for ``exposure_retention_days`` whatever the trip
retention, saying when that day's trips are gone (``rides_kept``)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from connectors.importers.report import Report
from connectors.nosugar import import_nosugar, read_records
from graph.keys import EXPOSURE_DAYS, EXPOSURES, group
from graph.store import MemoryStore
from tests.builders import at, trip
from tests.conftest import Driver
from tests.test_exposures import FEED
from tracer.analysis.lookup import lookup, summary
from tracer.analysis.question import read_question
from tracer.errors import ConfigError, StateError
from tracer.settings import RuleSettings, Settings, load_settings

RULES = RuleSettings(event_time_quorum=3, retention_days=2, exposure_retention_days=10)


def exposure(exposure_id: str, day: str, service: str = "MU5101", **extra: object) -> dict[str, object]:
    return {"type": "exposure", "exposure_id": exposure_id, "mode": "flight", "service": service, "date": day,
            **extra}


def days(first: str, count: int) -> list[str]:
    return [(date.fromisoformat(first) + timedelta(days=n)).isoformat() for n in range(count)]


def clock_at(day: str) -> list[dict[str, object]]:
    """Trips enough (the quorum) to put event time on ``day``."""
    return [trip(f"T{day}{board}", service="CA1", day=day, board=board, alight="09:00")
            for board in ("07:00", "07:30", "08:00")]


def ask(driver: Driver, day: str, service: str = "MU5101"):
    driver.store.commit()  # event time is saved with a commit, as a run's lookup finds it
    return lookup(driver.store, RULES, read_question(date=day, service=service))


def test_exposures_out_of_date_order_beside_the_trips_are_all_kept():
    """Trips move event time to 01-20 (trip horizon 01-18, exposure horizon 01-10); a published
    feed in no date order, interleaved with them, loses only what is older than the exposures' horizon."""
    driver = Driver(MemoryStore(), RULES)
    published = [exposure(f"X{day}", day) for day in reversed(days("2020-01-08", 13))]  # 01-20 back to 01-08
    stream = []
    for index, event in enumerate(published):
        stream.append(event)
        if index == 2:
            stream += clock_at("2020-01-20")
    driver.feed(*stream)
    assert driver.dead == [
        "exposure date 2020-01-09 is before the exposure retention horizon 2020-01-10 (exposure_retention_days 10)",
        "exposure date 2020-01-08 is before the exposure retention horizon 2020-01-10 (exposure_retention_days 10)",
    ]
    kept = {key.rsplit("\x1f", 1)[1] for key, _ in driver.store.items(group(EXPOSURES))}
    assert kept == {f"X{day}" for day in days("2020-01-10", 11)}
    assert driver.engine.event_time is not None  # trips moved it; the exposures did not


def test_exposures_alone_move_no_event_time_and_keep_every_line():
    driver = Driver(MemoryStore(), RULES)
    driver.feed(*(exposure(f"X{day}", day) for day in days("2019-06-01", 200)))
    assert driver.dead == [] and driver.engine.event_time is None


def test_the_lookup_answers_for_an_exposure_whose_trips_are_gone():
    driver = Driver(MemoryStore(), RULES)
    driver.feed(*clock_at("2020-01-20"), exposure("OLD", "2020-01-12", seats=["3A"]),
                exposure("NEW", "2020-01-19"), trip("P1", day="2020-01-19"))
    old = ask(driver, "2020/1/12", "mu 5101")
    assert [(ride["case_id"], ride["seat"], ride["rides_kept"]) for ride in old.rides] == [("OLD", "3A", False)]
    assert not old.rides_kept and summary(old) == (
        "a published exposure was aboard flight MU5101 on 2020-01-12 (tracer no longer keeps that day's trips, so "
        "only published exposures answer)")
    none = ask(driver, "2020-01-12", "CA9")
    assert not none.rides and summary(none).startswith("no published exposure aboard flight CA9 on 2020-01-12; "
                                                       "tracer no longer keeps that day's trips")
    new = ask(driver, "2020-01-19")
    assert [(ride["case_id"], ride["rides_kept"]) for ride in new.rides] == [("NEW", True)] and new.known
    assert driver.direct() and {a["case_id"] for a in driver.direct().values()} == {"NEW"}  # traced: P1 rode it
    with pytest.raises(StateError, match=r"cannot answer for 2020-01-09: the state keeps published exposures from "
                                         r"2020-01-10 on \(exposure_retention_days 10\) and trips from 2020-01-18"):
        ask(driver, "2020-01-09")


def test_exposures_are_purged_by_their_own_horizon():
    driver = Driver(MemoryStore(), RULES)
    driver.feed(*clock_at("2020-01-20"), exposure("A", "2020-01-12"), exposure("B", "2020-01-15"))
    driver.feed(*clock_at("2020-01-24"))  # exposure horizon 01-14: A goes, B stays
    assert [ride["case_id"] for ride in ask(driver, "2020-01-15").rides] == ["B"]
    assert [key for key, _ in driver.store.items(group(EXPOSURE_DAYS))] == [group(EXPOSURE_DAYS) + "B"]
    with pytest.raises(StateError):
        ask(driver, "2020-01-12")


def test_a_corrected_exposure_replaces_its_earlier_version_and_its_alerts():
    """Re-published on another day: the earlier day answers no more, and the alerts it made on a
    kept day are retracted even when the new day's trips are already gone."""
    driver = Driver(MemoryStore(), RULES)
    driver.feed(*clock_at("2020-01-20"), trip("P1", day="2020-01-19"), exposure("X", "2020-01-19"))
    assert {a["contact_person_id"] for a in driver.direct().values()} == {"P1"}
    driver.feed(exposure("X", "2020-01-13", start=at("08:00", "2020-01-13")))
    assert driver.direct() == {} and driver.dead == []
    assert ask(driver, "2020-01-19").rides == []
    assert [ride["board_time"] for ride in ask(driver, "2020-01-13").rides] == ["2020-01-13T08:00:00+08:00"]


def test_exposure_retention_may_not_be_shorter_than_the_trips(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text("[rules]\nretention_days = 30\nexposure_retention_days = 29\n")
    with pytest.raises(ConfigError, match=r"exposure_retention_days \(29\) must be at least rules.retention_days"):
        load_settings(config)
    config.write_text("[rules]\nretention_days = 30\nexposure_retention_days = 30\n")
    assert load_settings(config).rules.exposure_retention_days == 30
    assert load_settings().rules.exposure_retention_days == 60


@pytest.mark.skipif(not FEED.exists(), reason="shared/data is not beside the checkout")
def test_the_real_feed_after_a_day_of_trips_keeps_every_exposure():
    """The issue's figure: read after trips put event time at 2020-02-10 (trip horizon 2020-01-20),
    the feed lost 611 of its 1,740 exposures; every one is kept now, and asked about."""
    exposures = list(import_nosugar(read_records(str(FEED)), Report()))
    rules = Settings().rules  # the shipped ones: retention_days 21, exposure_retention_days 60, quorum 100
    driver = Driver(MemoryStore(), rules)
    driver.feed(*(trip(f"T{n}", service="G1", day="2020-02-10", board=f"08:{n % 60:02d}", alight="12:00")
                  for n in range(rules.event_time_quorum)))
    driver.feed(*exposures)
    assert len(exposures) == 1740 and driver.dead == []
    assert sum(1 for _ in driver.store.items(group(EXPOSURE_DAYS))) == 1740
    old = min(exposures, key=lambda exposure: exposure["date"])
    driver.store.commit()
    answer = lookup(driver.store, rules, read_question(date=old["date"], service=old["service"], mode=old["mode"]))
    assert answer.rides and not answer.rides_kept
