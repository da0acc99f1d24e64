"""Published exposures (no person id) and the importer of the 2020 public feed."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.importers.report import Report as ImportReport
from connectors.nosugar import import_nosugar, read_records
from graph.store import MemoryStore
from tests.builders import at, trip
from tests.conftest import Driver
from tracer.settings import RuleSettings

FEED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nosugar_trips.csv"
TRAIN = {"mode": "train", "service": "G420", "day": "2020-02-08"}


def exposure(**fields) -> dict:
    base = {"type": "exposure", "exposure_id": "X1", "mode": "train", "service": "G420", "date": "2020-02-08"}
    return {**base, **fields}


def test_exposure_traces_riders_like_a_case_ride(driver: Driver):
    driver.feed(trip("P1", **TRAIN, carriage="12", trip_id="a"), trip("P2", **TRAIN, carriage="3", trip_id="b"),
                exposure(carriages=["11", "12", "13"], start=at("08:00", "2020-02-08"), end=at("09:00", "2020-02-08")))
    live = {a["contact_person_id"]: a for a in driver.live().values()}
    assert live["P1"]["level"] == "close" and live["P2"]["level"] == "general"
    assert live["P1"]["case_id"] == "X1" and live["P1"]["case_person_id"] is None
    assert live["P1"]["case_carriage"] == "12"


def test_exposure_times_bound_the_exposure(driver: Driver):
    driver.feed(exposure(start=at("10:00", "2020-02-08"), end=at("11:00", "2020-02-08")),
                trip("P1", **TRAIN, board="08:00", alight="10:00"), trip("P2", **TRAIN, board="08:00", alight="10:01"))
    assert set(driver.levels()) == {"P2"}


def test_flight_exposure_with_seats(driver: Driver):
    flight = {"mode": "flight", "service": "8L9894", "day": "2020-01-23"}
    driver.feed(exposure(mode="flight", service="8L9894", date="2020-01-23", seats=["12A"]),
                trip("P1", **flight, seat="15C"), trip("P2", **flight, seat="16C"))
    assert driver.levels() == {"P1": "close", "P2": "general"}


def test_exposure_contacts_have_no_secondary_tracing(driver: Driver):
    driver.feed(exposure(carriages=["3"]), trip("P1", **TRAIN, carriage="3"),
                trip("P1", mode="metro", service="M1", day="2020-02-09", carriage="1"),
                trip("P2", mode="metro", service="M1", day="2020-02-09", carriage="1"))
    assert driver.secondary() == set()


def test_invalid_exposure_is_a_dead_letter(driver: Driver):
    driver.feed(exposure(carriages="3"), exposure(start=at("10:00", "2020-02-08"), end=at("09:00", "2020-02-08")))
    assert driver.dead == ["carriages must be a list of at most 64 labels", "end is not after start"]


@pytest.mark.parametrize(("text", "mode", "carriages", "seats"), [
    ("11-16号车厢", "train", [str(n) for n in range(11, 17)], None),
    ("3车", "train", ["3"], None),
    ("03号车厢", "train", ["3"], None),
    ("2车厢，9A", "train", ["2"], ["9A"]),
    ("加1号车厢", "train", ["加1"], None),
    ("第3节车厢", "metro", ["3"], None),
    ("中间车厢", "metro", None, None),
    ("座次12A", "flight", None, ["12A"]),
    ("座位：6A、6C", "flight", None, ["6A", "6C"]),
    ("X仓", "flight", None, None),
])
def test_free_text_carriages_and_seats(text, mode, carriages, seats):
    kind = {"flight": "1", "train": "2", "metro": "3"}[mode]
    number = {"flight": "MU5101", "train": "G420", "metro": "南京地铁10号线"}[mode]
    record = {"id": "1", "t_date": "2020-02-08", "t_start": "2020/02/08 08:00:00", "t_end": "2020/02/08 12:00:00",
              "t_type": kind, "t_no": number, "t_no_sub": text, "t_pos_start": "A", "t_pos_end": "B", "source": "u"}
    (event,) = import_nosugar([record], ImportReport())
    assert (event["carriages"], event["seats"]) == (carriages, seats)


def test_split_numbers_become_one_exposure_each():
    record = {"id": "7", "t_date": "2020-01-20", "t_start": "", "t_end": "", "t_type": "2", "t_no": "C6506/6507",
              "t_no_sub": ""}
    events = list(import_nosugar([record], report := ImportReport()))
    assert [e["service"] for e in events] == ["C6506", "C6507"] and report.notes
    assert [e["exposure_id"] for e in events] == ["nosugar:7/1", "nosugar:7/2"]


@pytest.mark.skipif(not FEED.exists(), reason="shared/data is not beside the checkout")
def test_the_real_2020_feed():
    report = ImportReport()
    events = list(import_nosugar(read_records(str(FEED)), report))
    assert report.records == 3092
    assert sum(report.not_traced.values()) == 3092 - 365 - 1268 - 68  # coach, bus, taxi, ship, places
    assert report.events == len(events) >= 1690
    assert sum(report.rejected.values()) <= 10 and report.clean >= 1500
    driver = Driver(MemoryStore(), RuleSettings(retention_days=120))  # the feed spans two months
    driver.feed(*events)
    assert driver.dead == []  # every imported exposure is valid input
