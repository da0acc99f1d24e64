"""The console's parts that need no server: the follow-up writer, the reads kept until the state is
caught up, the rate limits, the progress chart and the labels."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.console import chart
from streams.console.followups import FollowupLog
from streams.console.ratelimit import RateLimit
from streams.console.text import _EN, _ZH
from tests.builders import lines, person, trip
from tests.console import FLIGHT_A, A, make_world
from tracer.cli import main
from tracer.errors import ConfigError, InvalidEvent
from tracer.intake import Intake
from tracer.settings import Settings, load_settings

REACHED = {"type": "followup", "person_id": "P1", "outcome": "reached", "at": "2020-01-22T13:00:00+08:00",
           "by": "310101002"}


def log_at(path: Path) -> FollowupLog:
    return FollowupLog(path, Intake(Settings()))


def test_the_writer_appends_a_follow_up_once_as_the_engine_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "followups.jsonl"
    other = {"outcome": "reached", "by": "310101002", "at": "2020-01-22T05:00:00Z", "person_id": "P1",
             "type": "followup", "note": "  "}  # the same follow-up, written by someone else
    path.write_bytes(b"not json\n" + orjson.dumps(other) + b"\n" + b'{"type": "quarantine"}\n')
    log = log_at(path)
    assert log.append(REACHED) is None
    assert log.append({**REACHED, "note": "called twice"}).note == "called twice"  # type: ignore[union-attr]
    assert log.append({**REACHED, "note": "called twice "}) is None
    assert log_at(path).append({**REACHED, "note": "called twice"}) is None  # read again at start
    assert path.read_bytes().count(b"\n") == 4 and path.read_bytes().endswith(b'"note":"called twice"}\n')


def test_the_writer_refuses_what_the_run_would_refuse_and_a_file_cut_mid_line(tmp_path: Path) -> None:
    path = tmp_path / "followups.jsonl"
    log = log_at(path)
    with pytest.raises(InvalidEvent, match="unknown outcome"):
        log.append({**REACHED, "outcome": "cured"})
    with pytest.raises(InvalidEvent, match="not a followup"):
        log.append({"type": "person", "person_id": "P1", "subdistrict": "310101002"})
    assert not path.exists()
    path.write_bytes(orjson.dumps(REACHED) + b"\n" + orjson.dumps(REACHED)[:20])
    with pytest.raises(ConfigError, match="ends in the middle of a line"):
        log_at(path)


def test_the_lists_read_are_kept_until_the_state_is_caught_up(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    data = world.embedded(load_settings(world.config), tmp_path / "secondary")
    try:
        before, kpis, now = data.call_list(A), data.office_kpis(A), data.now()
        assert data.call_list(A) is before and data.call_list(A, include_general=True) is not before
        more = tmp_path / "more.jsonl"  # a new close contact in office A, read by a run continuing the state
        more.write_bytes(lines([person("PA3", A), trip("PA3", seat="21A", trip_id="t-PA3", **FLIGHT_A)]))
        assert main(["run", str(more), "--new-inputs", *world.run_args()[3:]]) == 0
        assert data.call_list(A) is before  # the state as it was until it is caught up
        assert A in data.poll().offices
        after = {row["person_id"] for row in data.call_list(A)}
        assert after == {row["person_id"] for row in before} | {"PA3"}
        assert data.office_kpis(A)["alerted"] == kpis["alerted"] + 1 and data.now() >= now  # type: ignore[operator]
    finally:
        data.close()


def test_a_rate_limit_counts_per_key_and_forgets_keys_beyond_its_bound() -> None:
    limit = RateLimit(2, 3600, max_keys=2)
    assert [limit.take("a") for _ in range(3)] == [True, True, False]
    assert limit.take("b") and limit.exceeded("a")
    limit.take("c")  # a third key: the one seen least recently ("a") is forgotten
    assert limit.take("a")
    limit.forget("a")
    assert not limit.exceeded("a")


def row(first: str, answered: str | None, due: str) -> dict[str, str | None]:
    day = "2020-01-22T{}:00:00+08:00"
    return {"first_alert": day.format(first), "answered": answered and day.format(answered),
            "due_by": day.format(due)}


def test_progress_counts_what_was_known_reached_and_overdue_at_each_step() -> None:
    rows = [row("01", "02", "05"), row("01", None, "05"), row("08", "20", "11")]
    points = chart.progress(rows, "2020-01-22T20:00:00+08:00")
    assert [(p.at.hour, p.alerted, p.reached, p.overdue) for p in points] == [
        (1, 2, 0, 0), (7, 2, 1, 1), (13, 3, 1, 2), (19, 3, 1, 2)]
    drawn = chart.svg(points, _EN)
    assert drawn.startswith("<svg") and drawn.count("<polyline") == 3 and "overdue" in drawn
    assert chart.progress([], None) == [] and chart.svg([], _EN) == ""


def test_every_label_is_in_both_languages() -> None:
    assert set(_ZH) == set(_EN)
    assert [key for key in _ZH if _ZH[key].count("{") != _EN[key].count("{")] == []
