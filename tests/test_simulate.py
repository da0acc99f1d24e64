"""The city simulator: deterministic, realistic enough to trace, disordered like real feeds."""

from __future__ import annotations

import argparse
import math
import re
import statistics
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tracer.errors import TracerError
from tracer.oracle import expected_alerts
from tracer.simulate import add_generate_arguments, generate, run_generate
from tracer.simulate.city import subdistrict_codes
from tracer.simulate.generate import MAX_DAYS

TRIP_FIELDS = ("person_id", "mode", "service", "date", "board_time", "alight_time")
LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("small")
    return out, generate(3000, 6, 12, 11, out)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], float]:
    """About 100k trips without truth: the scale smoke test, and enough lines to count disorder."""
    out = tmp_path_factory.mktemp("large")
    started = time.perf_counter()
    stats = generate(33_000, 7, 60, 5, out, truth=False)
    return out, stats, time.perf_counter() - started


def lines(out: Path) -> list[bytes]:
    return (out / "events.jsonl").read_bytes().splitlines()


def decoded(out: Path) -> list[dict[str, Any] | None]:
    """Each line decoded, None for the lines that are not JSON."""
    result: list[dict[str, Any] | None] = []
    for line in lines(out):
        try:
            result.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            result.append(None)
    return result


def well_formed(event: dict[str, Any] | None) -> bool:
    """The checks the simulator's malformed lines fail (a second opinion next to the oracle's)."""
    if event is None:
        return False
    if event["type"] == "person":
        return "person_id" in event and "subdistrict" in event
    if event["type"] == "trip":
        return (
            all(field in event for field in TRIP_FIELDS)
            and event["mode"] in ("metro", "train", "flight")
            and event["alight_time"] > event["board_time"]
        )
    return True


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, small: tuple[Path, dict[str, Any]]) -> None:
    out, _ = small
    generate(3000, 6, 12, 11, tmp_path / "again")
    generate(3000, 6, 12, 12, tmp_path / "other")
    for name in ("events.jsonl", "truth.jsonl"):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes()
        assert (tmp_path / "other" / name).read_bytes() != (out / name).read_bytes()


def test_stats_add_up(small: tuple[Path, dict[str, Any]]) -> None:
    out, stats = small
    events = decoded(out)
    assert stats["lines"] == len(events) == sum(stats["events"].values()) + stats["malformed"]
    valid = Counter(event["type"] for event in events if well_formed(event))
    assert dict(valid) == stats["events"]
    assert sum(not well_formed(event) for event in events) == stats["malformed"]
    trips = stats["trips"]
    assert set(trips) == {"metro", "train", "flight"}
    assert trips["metro"] > 0.8 * sum(trips.values())
    assert trips["train"] > trips["flight"] > 0
    assert stats["events"]["person"] >= 0.99 * 3000
    assert stats["outbreak"]["confirmed"] + stats["outbreak"]["asymptomatic"] + stats["outbreak"]["suspected"] == 12


def test_events_follow_the_schema_and_the_city(small: tuple[Path, dict[str, Any]]) -> None:
    out, _ = small
    codes = set(subdistrict_codes())
    assert len(codes) == 234
    seen: Counter[str] = Counter()
    for event in filter(well_formed, decoded(out)):
        assert event is not None
        if event["type"] == "person":
            assert event["subdistrict"] in codes
        elif event["type"] == "case":
            assert LOCAL_TIME.fullmatch(event["reported_at"])
        elif event["type"] == "trip":
            assert LOCAL_TIME.fullmatch(event["board_time"]) and LOCAL_TIME.fullmatch(event["alight_time"])
            seen[_kind(event)] += 1
    assert {"metro", "G", "D soft_sleeper", "K hard_sleeper", "K soft_sleeper", "flight crew_rows"} <= set(seen)


def _kind(trip: dict[str, Any]) -> str:
    if trip["mode"] == "metro":
        assert re.fullmatch(r"L\d+-\d{8}-\d{4}", trip["service"]) and 1 <= trip["carriage"] <= 8
        return "metro"
    if trip["mode"] == "flight":
        if trip.get("role") == "crew":
            return "flight crew_rows" if "crew_rows" in trip else "flight crew"
        assert re.fullmatch(r"([1-9]|[1-3]\d|40)[A-F]", trip["seat"])
        return "flight"
    assert trip.get("sealed", True) is (trip["service"][0] != "K")
    if trip.get("berth") == "hard_sleeper":
        assert 1 <= trip["compartment"] <= 11
    return f"{trip['service'][0]} {trip.get('berth', 'seat')}".replace(" seat", "")


def test_small_run_has_close_and_general_contacts_in_truth(small: tuple[Path, dict[str, Any]]) -> None:
    out, stats = small
    truth = [orjson.loads(line) for line in (out / "truth.jsonl").read_bytes().splitlines()]
    assert [alert["alert_id"] for alert in truth] == sorted(alert["alert_id"] for alert in truth)
    levels = Counter(alert["level"] for alert in truth)
    assert stats["alerts"] == dict(sorted(levels.items()))
    assert levels["close"] >= 50 and levels["general"] >= 200 and levels["secondary"] >= 50
    assert {alert["mode"] for alert in truth} == {"metro", "train", "flight"}
    assert {alert["case_id"] for alert in truth} >= {f"C{n:05d}" for n in (1, 2, 3)}
    assert any(alert["subdistrict"] is None for alert in truth)  # visitors are not in the registry


def test_every_case_travels_in_its_window(small: tuple[Path, dict[str, Any]]) -> None:
    out, _ = small
    events = [event for event in decoded(out) if well_formed(event)]
    travellers = {event["person_id"] for event in events if event and event["type"] == "trip"}
    cases = {event["person_id"] for event in events if event and event["type"] == "case"}
    assert cases <= travellers


def test_stream_is_in_event_time_order_but_for_deliberate_disorder(
    large: tuple[Path, dict[str, Any], float],
) -> None:
    out, stats, _ = large
    events = decoded(out)
    assert all(event is None or event["type"] == "person" for event in events[:33_000])  # the registry first
    behind, newest = 0, ""
    for event in events[33_000:]:
        if well_formed(event) and event and event["type"] == "trip":
            minute = event["board_time"][:16]
            if minute < newest:
                behind += 1
            newest = max(newest, minute)
    disorder = stats["disorder"]
    assert 0 < behind <= disorder["late"] + disorder["duplicate"] + disorder["correction"]


def test_disorder_of_real_feeds(large: tuple[Path, dict[str, Any], float]) -> None:
    out, stats, _ = large
    assert 0.0005 < stats["malformed"] / stats["lines"] < 0.002
    assert all(stats["disorder"][kind] > 0 for kind in ("duplicate", "correction", "late"))
    assert all(stats["outbreak"][kind] > 0 for kind in ("excluded", "corrected", "late_ride", "asymptomatic"))
    assert stats["moves"] == 66
    repeated = Counter(lines(out))
    assert sum(count > 1 for count in repeated.values()) >= stats["disorder"]["duplicate"]
    trips = [event for event in decoded(out) if well_formed(event) and event and event["type"] == "trip"]
    assert 0.05 < sum("trip_id" not in trip for trip in trips) / len(trips) < 0.15
    by_id = Counter(trip["trip_id"] for trip in trips if "trip_id" in trip)
    assert sum(count > 1 for count in by_id.values()) >= stats["disorder"]["correction"]


def test_scale_smoke(large: tuple[Path, dict[str, Any], float]) -> None:
    out, stats, seconds = large
    assert sum(stats["trips"].values()) > 100_000
    assert seconds < 20
    assert not (out / "truth.jsonl").exists()


def test_truth_is_the_oracle_on_the_same_lines(small: tuple[Path, dict[str, Any]]) -> None:
    out, _ = small
    alerts = expected_alerts(event for event in decoded(out) if event is not None)
    truth = [orjson.loads(line) for line in (out / "truth.jsonl").read_bytes().splitlines()]
    assert truth == [alerts[key] for key in sorted(alerts)]


def test_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(TracerError, match="--days"):
        generate(100, MAX_DAYS + 1, 1, 0, tmp_path)
    with pytest.raises(TracerError, match="--cases"):
        generate(10, 3, 11, 0, tmp_path)
    with pytest.raises(TracerError, match="--start-date"):
        generate(10, 3, 1, 0, tmp_path, start_date="15.01.2020")
    assert MAX_DAYS == 18
    assert generate(50, MAX_DAYS, 2, 0, tmp_path, start_date="2020-02-01")["days"] == MAX_DAYS


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    out = tmp_path / "demo"
    argv = ["--persons", "500", "--days", "3", "--cases", "2", "--seed", "1", "--out", str(out)]
    assert run_generate(parser.parse_args(argv)) == 0
    assert orjson.loads(capsys.readouterr().out)["persons"] == 500
    assert (out / "truth.jsonl").exists()
    assert b'"type":"followup"' in (out / "events.jsonl").read_bytes()
    assert run_generate(parser.parse_args([*argv, "--no-truth", "--start-date", "2020-01-20", "--no-followups"])) == 0
    assert not (out / "truth.jsonl").exists()
    assert b'"date":"2020-01-20"' in (out / "events.jsonl").read_bytes()
    assert b'"type":"followup"' not in (out / "events.jsonl").read_bytes()


# -- the street offices' follow-ups ---------------------------------------------------------------
OUTCOMES = ("reached", "quarantined", "unreachable", "released")
ANSWERS = ("reached", "quarantined", "released")


@pytest.fixture(scope="module")
def fortnight(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Sixteen days: long enough for observations to end within the run."""
    out = tmp_path_factory.mktemp("fortnight")
    return out, generate(2000, 16, 10, 3, out)


def followups(out: Path) -> list[dict[str, Any]]:
    return [event for event in decoded(out) if event is not None and event["type"] == "followup"]


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def test_followups_change_no_other_line(tmp_path: Path, small: tuple[Path, dict[str, Any]]) -> None:
    out, stats = small
    generate(3000, 6, 12, 11, tmp_path, followups=False)
    assert [line for line in lines(out) if not line.startswith(b'{"type":"followup"')] == lines(tmp_path)
    assert len(lines(out)) - len(lines(tmp_path)) == stats["events"]["followup"] > 500
    # (truth.jsonl may differ: a quarantined follow-up ends a close contact's secondary-exposure period)


@pytest.mark.parametrize("city", ["small", "fortnight"])
def test_followups_follow_the_docs(city: str, request: pytest.FixtureRequest) -> None:
    out, stats = request.getfixturevalue(city)
    events = [event for event in decoded(out) if well_formed(event)]
    homes = {event["person_id"]: event["subdistrict"] for event in events if event and event["type"] == "person"}
    codes = set(subdistrict_codes())
    written = followups(out)
    counted = Counter(line["outcome"] for line in written)
    assert stats["followups"]["outcomes"] == {outcome: counted[outcome] for outcome in OUTCOMES}
    assert stats["followups"]["offices"] == len({line["by"] for line in written})
    for line in written:
        assert set(line) <= {"type", "person_id", "outcome", "at", "by", "note"} and line["outcome"] in OUTCOMES
        assert LOCAL_TIME.fullmatch(line["at"])
        assert line["by"] in codes and homes.get(line["person_id"], line["by"]) == line["by"]  # their own office
        note = line.get("note", "")
        assert note.isprintable() and len(note) <= 500


def test_offices_answer_after_the_report_mostly_within_a_day(small: tuple[Path, dict[str, Any]]) -> None:
    """Against the oracle's alerts: the residents with a close or secondary alert, when each could first
    be worked (the later of the exposure's end and the case's report), and the first answer after it."""
    out, stats = small
    cases = {event["case_id"]: event for event in decoded(out) if event and event["type"] == "case"}
    known: dict[str, float] = {}  # resident -> first alert
    reported: dict[str, float] = {}  # resident -> the earliest report of their alerts' cases
    close = set()
    for alert in map(orjson.loads, (out / "truth.jsonl").read_bytes().splitlines()):
        person, report = alert["contact_person_id"], seconds(cases[alert["case_id"]]["reported_at"])
        if alert["level"] != "general" and person.startswith("P"):
            known[person] = min(known.get(person, math.inf), max(seconds(alert["exposure_end"]), report))
            reported[person] = min(reported.get(person, math.inf), report)
            close |= {person} if alert["level"] == "close" else set()
    calls: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in followups(out):
        calls[line["person_id"]].append(line)
    assert all(seconds(line["at"]) >= reported[person] for person in known for line in calls[person]
               if line["outcome"] in ("reached", "quarantined"))
    assert sum(person in calls for person in close) >= 0.95 * len(close)
    assert sum(person in calls for person in known) >= 0.85 * len(known)
    hours = {person: min((seconds(line["at"]) - known[person]) / 3600 for line in calls[person]
                         if line["outcome"] in ANSWERS and seconds(line["at"]) >= known[person])
             for person in known if any(line["outcome"] in ANSWERS for line in calls[person])}
    within = Counter(limit for delay in hours.values() for limit in (2, 24) if delay <= limit)
    assert 0.03 < within[2] / len(known) < within[24] / len(known) < 0.9  # most within a day, not all
    assert sum(delay > 24 for delay in hours.values()) > 0.05 * len(known)  # some late
    unreachable = {line["person_id"] for person in calls for line in calls[person] if line["outcome"] == "unreachable"}
    assert 0.02 < len(unreachable) / len(calls) < 0.1
    slow = set(stats["followups"]["slow_offices"])
    by_office = defaultdict(list)
    for person, delay in hours.items():
        by_office[calls[person][0]["by"] in slow].append(delay)
    assert statistics.median(by_office[True]) > 3 * statistics.median(by_office[False])


def test_observation_ends_two_weeks_after_the_last_exposure(fortnight: tuple[Path, dict[str, Any]]) -> None:
    out, stats = fortnight
    ends: defaultdict[str, set[float]] = defaultdict(set)
    for alert in map(orjson.loads, (out / "truth.jsonl").read_bytes().splitlines()):
        ends[alert["contact_person_id"]].add(seconds(alert["exposure_end"]))
    released = [line for line in followups(out) if line["outcome"] == "released"]
    assert len(released) == stats["followups"]["outcomes"]["released"] > 5
    assert all(seconds(line["at"]) - 14 * 86_400 in ends[line["person_id"]] for line in released)
