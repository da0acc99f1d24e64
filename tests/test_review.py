"""A reviewer's attacks on issue 16's intake, formats and published exposures: each test failed
before the fix committed with it."""

from __future__ import annotations

import orjson
import pytest

from tracer.formats import FormatHint
from tracer.intake import Intake
from tracer.settings import Settings

BROKEN = "broken JSON: unexpected character: line 1 column 1 (char 0)"


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


@pytest.mark.parametrize("first", [
    b'"person_id":"P-SECRET-1","mode":"flight","service":"MU5101"}',  # a JSON line cut at its start
    b"MU5101,2020-01-15,id_card,310104195001018832,12A",  # a manifest without its header
    b"SPTCP000008245,2020-01-15 06:56:30,in,L2,L2-01",  # taps without their header
])
def test_a_first_line_that_is_data_is_never_copied_into_other_lines_reasons(first):
    """The first line decides for the input; when it is data, not a header, its values (a person
    id, an ID number, a card) must not appear in the reason of every later line."""
    hint = FormatHint(sees_first_line=True)
    first_reason = hint.reason(1, first, BROKEN)
    later = hint.reason(3, b'{"type":"trip","person_id":"P3",', BROKEN)
    for secret in (b"P-SECRET-1", b"310104195001018832", b"SPTCP000008245"):
        assert secret.decode() not in first_reason and secret.decode() not in later
    assert first_reason.startswith("not JSON Lines but a row of delimited values (a CSV file?)")
