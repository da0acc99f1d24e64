"""The simulated street offices on hand-made services: whom they call, when, and when they release."""

from __future__ import annotations

import io
import random
from datetime import date
from typing import Any

import orjson
import pytest

from tests.builders import trip
from tracer.simulate.city import Population
from tracer.simulate.clock import DAY, Clock
from tracer.simulate.contacts import neighbours
from tracer.simulate.offices import Offices
from tracer.simulate.outbreak import HOUR, Traced
from tracer.simulate.stream import EventStream

CASE = Traced("P00000001", window=0, isolated=10 * HOUR, reported=20 * HOUR, excluded=None)  # 2020-01-20


class City:
    """Offices over 50 residents and 20 days from 2020-01-20, writing into memory."""

    def __init__(self, *cases: Traced) -> None:
        self.clock = Clock(date(2020, 1, 20), 20)
        self.population = Population(50, random.Random(1))
        self.homes = self.population.homes(random.Random(2), 50)
        self._out = io.BytesIO()
        self._stream = EventStream(self._out, random.Random(3))
        self.offices = Offices(self._stream, self.clock, self.population, list(cases), random.Random(4))
        self.offices.settle(self.homes)

    def ride(self, *rides: dict[str, Any]) -> None:
        """One service's rides (their day: 2020-01-20 plus ``day``)."""
        self.offices.service(list(rides))

    def followups(self) -> list[dict[str, Any]]:
        self.offices.release_before(self.clock.end // 60)
        self._stream.close()
        return [orjson.loads(line) for line in self._out.getvalue().splitlines()]


def metro(person: str, carriage: int, board: str, alight: str, day: str = "2020-01-20") -> dict[str, Any]:
    return trip(person, mode="metro", service=f"L1-{day}", day=day, board=board, alight=alight, carriage=carriage)


def test_the_case_s_carriage_is_called_after_the_report_and_released_two_weeks_after() -> None:
    city = City(CASE)
    city.ride(
        metro("P00000001", 2, "08:00", "08:30"),
        metro("P00000002", 2, "08:10", "08:40"),  # close
        metro("P00000003", 3, "08:00", "08:30"),  # another carriage
        metro("P00000004", 2, "08:40", "09:00"),  # boards as the close contact alights
        metro("V000001", 2, "08:00", "08:30"),  # a visitor: no office
    )
    lines = city.followups()
    assert {line["person_id"] for line in lines} == {"P00000002"}
    *calls, release = lines
    assert all(line["at"] >= "2020-01-20T20:00:00+08:00" for line in calls)  # the report
    assert calls[-1]["outcome"] in ("reached", "quarantined")
    assert release == {"type": "followup", "person_id": "P00000002", "outcome": "released",
                       "at": "2020-02-03T08:30:00+08:00", "by": city.homes[2], "note": "14 days of observation ended"}
    assert {line["by"] for line in lines} == {city.homes[2]}


def test_a_close_contact_exposes_others_until_isolated() -> None:
    city = City(CASE)
    city.ride(metro("P00000001", 2, "08:00", "08:30"), metro("P00000002", 2, "08:10", "08:40"))
    city.ride(metro("P00000002", 1, "09:00", "09:20"), metro("P00000005", 1, "09:10", "09:30"))
    later = "2020-01-23"
    city.ride(metro("P00000002", 5, "09:00", "09:20", later), metro("P00000006", 5, "09:10", "09:30", later))
    lines = city.followups()
    quarantined = [line["at"] for line in lines if (line["person_id"], line["outcome"]) == ("P00000002", "quarantined")]
    isolated = min(quarantined, default="2020-01-21T20:00:00+08:00")  # else the report + 24 h
    assert isolated < "2020-01-23T09:10:00+08:00"
    assert {line["person_id"] for line in lines} == {"P00000002", "P00000005"}


def test_the_same_service_exposes_through_a_contact_found_on_it() -> None:
    city = City(CASE)
    city.ride(
        metro("P00000001", 2, "08:00", "08:20"),
        metro("P00000002", 2, "08:10", "09:00"),  # close, then rides on
        metro("P00000007", 2, "08:40", "09:00"),  # meets only P00000002: secondary
    )
    assert {line["person_id"] for line in city.followups()} == {"P00000002", "P00000007"}


def test_a_later_exposure_postpones_the_release() -> None:
    second = Traced("P00000008", window=0, isolated=None, reported=2 * DAY, excluded=None)
    city = City(CASE, second)
    city.ride(metro("P00000001", 2, "08:00", "08:30"), metro("P00000002", 2, "08:10", "08:40"))
    later = "2020-01-22"
    city.ride(metro("P00000008", 4, "18:00", "18:30", later), metro("P00000002", 4, "18:00", "18:20", later))
    releases = [line["at"] for line in city.followups() if line["outcome"] == "released"]
    assert releases == ["2020-02-05T18:20:00+08:00"]


def test_no_call_after_the_case_is_excluded() -> None:
    excluded = CASE._replace(excluded=21 * HOUR)
    city = City(excluded)
    city.ride(*(metro(f"P{n:08d}", 2, "08:00", "08:30") for n in range(1, 40)))
    lines = city.followups()
    assert lines and all(line["at"] < "2020-01-20T21:00:00+08:00" for line in lines)
    assert all(line["outcome"] != "released" for line in lines)


@pytest.mark.parametrize(("source", "other", "close"), [
    (trip("A", seat="12C"), trip("B", seat="15F"), True),
    (trip("A", seat="12C"), trip("B", seat="16A"), False),
    (trip("A", seat="12C"), trip("B", role="crew", crew_rows="1-12"), True),
    (trip("A", seat="12C"), trip("B", role="crew", crew_rows="13-30"), False),
    (trip("A", role="crew"), trip("B", seat="30A"), True),
    (trip("A", mode="train", carriage=3, compartment=4, sealed=False), trip("B", mode="train", carriage=3,
                                                                           compartment=5, sealed=False), True),
    (trip("A", mode="train", carriage=3, compartment=4, sealed=False), trip("B", mode="train", carriage=3,
                                                                           compartment=6, sealed=False), False),
    (trip("A", mode="train", carriage=3, compartment=4, berth="soft_sleeper"), trip("B", mode="train", carriage=3,
                                                                                  compartment=5), False),
    (trip("A", mode="train", carriage=3, compartment=4), trip("B", mode="train", carriage=3, role="crew"), True),
    (trip("A", mode="train", carriage=3, seat="01A"), trip("B", mode="train", carriage=4, seat="01B"), False),
])
def test_who_sits_close(source: dict[str, Any], other: dict[str, Any], close: bool) -> None:
    assert (other in neighbours(source, [source, other])) is close
