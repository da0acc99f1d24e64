"""A reviewer's attacks on issue 16's intake, formats and published exposures: each test failed
before the fix committed with it."""

from __future__ import annotations

import orjson

from tracer.intake import Intake
from tracer.settings import Settings


def _ride(mode: str, service: str) -> bytes:
    ride = {"type": "trip", "trip_id": f"T-{mode}", "person_id": "P1", "mode": mode, "service": service,
            "date": "2020-01-20", "board_time": "2020-01-20T08:00:00+08:00",
            "alight_time": "2020-01-20T10:00:00+08:00", "seat": "11A"}
    if mode != "flight":
        ride["carriage"] = "5"
    return orjson.dumps(ride)


def test_a_number_canonical_for_one_mode_is_still_rewritten_for_another():
    """``g5 1234`` is no train number (left as it is) but flight G51234: a train line naming it
    first must not make the flights that follow keep their spelling (same lines, other order,
    other output; two spellings of one flight never meet)."""
    alone, after_train = Intake(Settings()), Intake(Settings())
    after_train.decode(_ride("train", "g5 1234"))
    for intake in (alone, after_train):
        decoded = intake.decode(_ride("flight", "g5 1234"))
        assert decoded.event.service == "G51234"
        assert decoded.warning == "rewritten to canonical form: service 'g5 1234' -> 'G51234'"
