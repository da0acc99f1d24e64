"""A reviewer's attacks on issue 16's intake, formats and published exposures: each test failed
before the fix committed with it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from graph.keys import EXPOSURE_DAYS, EXPOSURES, group
from graph.store import MemoryStore
from tests.builders import case, lines, trip
from tests.conftest import Driver
from tests.test_exposure_retention import clock_at, exposure
from tracer.alerts import fold
from tracer.analysis.lookup import lookup
from tracer.analysis.question import read_question
from tracer.cli import main
from tracer.errors import StateError
from tracer.events import parse_line
from tracer.formats import FormatHint
from tracer.intake import Intake
from tracer.published import keep, purge
from tracer.settings import RuleSettings, Settings

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


def test_a_longer_retention_set_after_a_purge_is_no_false_all_clear():
    """Exposures purged under ``exposure_retention_days`` 10 are gone; asked after the operator
    raised it to 30, the lookup must not answer "no published exposure aboard" for their day (a
    false all-clear) but say it no longer holds that day."""
    rules = RuleSettings(event_time_quorum=3, retention_days=2, exposure_retention_days=10)
    driver = Driver(MemoryStore(), rules)
    driver.feed(*clock_at("2020-01-06"), exposure("OLD", "2020-01-05"), *clock_at("2020-01-20"))
    driver.store.commit()
    assert not list(driver.store.items(group(EXPOSURES)))  # purged: 01-05 is behind 01-10
    longer = RuleSettings(event_time_quorum=3, retention_days=2, exposure_retention_days=30)
    with pytest.raises(StateError, match=r"cannot answer for 2020-01-05: .*2020-01-10"):
        lookup(driver.store, longer, read_question(date="2020-01-05", service="MU5101"))


def test_a_json_lines_file_saved_with_a_byte_order_mark_keeps_its_first_event():
    """Editors on Windows save "UTF-8 with BOM": the first line was a dead letter ("broken JSON"),
    its event lost. It is applied, with a warning saying the mark was dropped."""
    intake = Intake(Settings())
    decoded = intake.decode(b"\xef\xbb\xbf" + _ride("flight", "mu 5101"))
    assert decoded.event.service == "MU5101"
    assert decoded.warning == ("a UTF-8 byte order mark before the event was dropped; "
                               "rewritten to canonical form: service 'mu 5101' -> 'MU5101'")
    assert intake.decode(b"\xef\xbb\xbf" + _ride("flight", "MU5101")).warning == (
        "a UTF-8 byte order mark before the event was dropped")


def test_a_line_with_a_byte_order_mark_reaches_the_worker_of_its_day(tmp_path: Path):
    """``--workers 2`` routes a trip by its service day: a line behind a byte order mark (two files
    saved with one, concatenated) must reach that day's worker and meet the case, as in one process."""
    bom = b"\xef\xbb\xbf"
    source = tmp_path / "in.jsonl"
    source.write_bytes(lines([trip("P1", seat="11A")]) + bom + lines([trip("P2", seat="12A"), case("C1", "P1")]))
    folded = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out-{workers}"
        assert main(["run", str(source), "--out", str(out), "--quiet", "--workers", workers]) == 0
        folded[workers] = fold(orjson.loads(line) for line in (out / "contacts.jsonl").read_bytes().splitlines())
    assert folded["1"] == folded["2"] and len(folded["1"]) == 1


def test_a_day_already_purged_takes_no_trips_after_the_retention_is_lengthened():
    """Trips of a day purged under ``retention_days`` 2 are gone with its cases' rides; a run resumed
    under 10 must refuse a late trip of that day (a dead letter) rather than trace it against the
    nothing left there, silently finding no one."""
    short = RuleSettings(event_time_quorum=3, retention_days=2, exposure_retention_days=10)
    store = MemoryStore()
    driver = Driver(store, short)
    driver.feed(*clock_at("2020-01-15"), *clock_at("2020-01-20"))
    store.commit()
    longer = RuleSettings(event_time_quorum=3, retention_days=10, exposure_retention_days=10)
    resumed = Driver(store, longer)
    resumed.feed(trip("LATE", day="2020-01-15", seat="3A"), exposure("OLD", "2020-01-09"))
    assert resumed.dead == [
        "trip date 2020-01-15 is before the retention horizon 2020-01-18",
        "exposure date 2020-01-09 is before the exposure retention horizon 2020-01-10 (exposure_retention_days 10)",
    ]


def test_a_purge_cut_by_a_crash_leaves_no_exposure_id_behind():
    """The purge deletes the ``EXPOSURES`` range at once and each id's ``EXPOSURE_DAYS`` entry with
    the next commit: killed in between, the run resumed purges again and must still forget the ids."""
    store = MemoryStore()
    for day in ("2020-01-05", "2020-01-06", "2020-01-12"):
        keep(store, parse_line(orjson.dumps(exposure(f"X{day}", day)), 72 * 3_600_000_000))
    store.commit()
    purge(store, "2020-01-10")
    store.close()  # SIGKILL: what was not committed is lost
    purge(store, "2020-01-10")  # the resumed run purges at the same horizon again
    store.commit()
    assert [key.rsplit("\x1f", 1)[1] for key, _ in store.items(group(EXPOSURE_DAYS))] == ["X2020-01-12"]
