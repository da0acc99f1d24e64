"""Event time cannot be moved by one record (issue 12, item 1; docs/rules.md, "Event time").

Only accepted events advance the watermark; an event more than ``max_clock_skew_hours`` past it is
a dead letter; a ride's board time (an exposure's start) must lie near its service date; every check
happens before anything is written. The same holds on each Kafka partition.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.kafka.routing import COPY_HEADER, COPY_TRIP, partition_of_day, trip_record
from graph.keys import META, TRIPS, WATERMARK, group, service_day
from graph.store import SEP, MemoryStore, RocksStore, Store
from streams.embedded import run_embedded
from streams.kafka.partition import PartitionTask
from tests.builders import at, case, trip
from tests.conftest import Driver
from tests.kafka.harness import MemoryBus, Rec, Reference, drain, embedded_reference, open_tasks, queues_of
from tracer.alerts import fold
from tracer.errors import ConfigError
from tracer.events import format_time, parse_line, parse_time
from tracer.settings import RuleSettings, load_settings
from tracer.simulate import generate

SETTINGS = load_settings()
HOUR = 3_600_000_000
QUARANTINE_2099 = b'{"type":"quarantine","person_id":"NOBODY","at":"2099-12-31T00:00:00+08:00"}'
TRIP_2099 = orjson.dumps(trip("NOBODY", mode="metro", service="X", day="2020-01-01", trip_id="BAD")
                         | {"board_time": "2099-12-31T00:00:00+08:00", "alight_time": "2099-12-31T01:00:00+08:00"})
SKEW = "more than rules.max_clock_skew_hours (72)"


# -- the reproduction on a generated city ----------------------------------------------
@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], Path]:
    """The issue's city (2,000 persons, 1 day, 5 cases, seed 7) and its run without a bad line."""
    folder = tmp_path_factory.mktemp("city")
    generate(2000, 1, 5, 7, folder, truth=False)
    run_embedded([str(folder / "events.jsonl")], folder / "clean", SETTINGS)
    return (folder / "events.jsonl").read_bytes().splitlines(), folder / "clean"


def _outputs(out: Path) -> dict[str, bytes]:
    return {str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*.jsonl"))
            if path.name != "dead-letter.jsonl"}


def _dead(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (out / "dead-letter.jsonl").read_bytes().splitlines()]


def _run_with(lines: list[bytes], index: int, bad: bytes, out: Path) -> Path:
    events = out.parent / "events.jsonl"
    events.write_bytes(b"\n".join([*lines[:index], bad, *lines[index:]]) + b"\n")
    run_embedded([str(events)], out, SETTINGS)
    return out


def _middle_of_the_rides(lines: list[bytes]) -> int:
    timed = [i for i, line in enumerate(lines) if not line.startswith(b'{"type":"person"')]
    return timed[len(timed) // 2]


@pytest.mark.parametrize("bad", [QUARANTINE_2099, TRIP_2099], ids=["quarantine", "trip"])
def test_a_far_future_line_among_the_rides_is_a_dead_letter_and_changes_no_alert(city, tmp_path: Path,
                                                                                  bad: bytes) -> None:
    lines, clean = city
    index = _middle_of_the_rides(lines)
    out = _run_with(lines, index, bad, tmp_path / "out")
    assert _outputs(out) == _outputs(clean)
    assert b'"level":"close"' in (clean / "contacts.jsonl").read_bytes()
    dead, before = _dead(out), _dead(clean)
    (letter,) = [d for d in dead if d["raw"] == bad.decode()]
    assert letter["line"] == index + 1
    assert letter["reason"].startswith("event time 2099-12-31T00:00:00+08:00 is ") and letter["reason"].endswith(SKEW)
    assert " past the stream's event time 2020-01-15T" in letter["reason"]
    assert [(d["raw"], d["reason"]) for d in dead if d is not letter] == [(d["raw"], d["reason"]) for d in before]


@pytest.mark.parametrize("bad", [QUARANTINE_2099, TRIP_2099], ids=["quarantine", "trip"])
def test_a_far_future_line_before_any_event_time_cannot_set_it_alone(city, tmp_path: Path, bad: bytes) -> None:
    """The issue's placement: the middle line of the city, inside its registry, before any ride. No
    time is known yet to judge it by; it is applied (a trip dated far from its board time is still
    rejected), but one line alone does not set the stream's event time: the rides after it do."""
    lines, clean = city
    out = _run_with(lines, len(lines) // 2, bad, tmp_path / "out")
    assert _outputs(out) == _outputs(clean)
    reasons = [d["reason"] for d in _dead(out) if d["raw"] == bad.decode()]
    assert reasons == ([] if bad is QUARANTINE_2099 else
                       ["board_time 2099-12-31T00:00:00+08:00 is too far from service date 2020-01-01 (allowed: "
                        "from the day before it to max_ride_hours after the day after it)"])


def test_generated_cities_never_meet_the_bound(tmp_path: Path) -> None:
    """The simulator's late lines, corrections and overnight trains stay well within the default."""
    generate(3000, 6, 12, 3, tmp_path, truth=False)
    run_embedded([str(tmp_path / "events.jsonl")], tmp_path / "out", SETTINGS)
    reasons = [d["reason"] for d in _dead(tmp_path / "out")]
    assert reasons and not [r for r in reasons if "max_clock_skew_hours" in r or "service date" in r]


# -- the bound, exactly --------------------------------------------------------------------------
def _shifted(event: dict[str, Any], micros: int) -> dict[str, Any]:
    """``event`` with its event time (and the times that go with it) ``micros`` after 08:00 on 2020-01-20."""
    zone = SETTINGS.rules.zone
    base = parse_line(orjson.dumps(trip("P0")), 72 * HOUR).board

    def moment(offset: int = 0) -> str:
        return format_time(base + micros + offset, zone)

    kind = event["type"]
    if kind == "trip":
        return {**event, "board_time": moment(), "alight_time": moment(HOUR)}
    if kind == "case":
        return {**event, "reported_at": moment()}
    if kind == "quarantine":
        return {**event, "at": moment()}
    return {**event, "start": moment(), "end": moment(HOUR)}


KINDS = {
    "trip": trip("P9", day="2020-01-22", service="MU9"),
    "case": case("C9", "P9"),
    "quarantine": {"type": "quarantine", "person_id": "P9"},
    "exposure": {"type": "exposure", "exposure_id": "E9", "mode": "train", "service": "G9", "date": "2020-01-22"},
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("past", "accepted"), [(0, True), (1, False)], ids=["at", "past"])
def test_exactly_at_the_bound_is_accepted_one_microsecond_past_is_rejected(kind: str, past: int,
                                                                          accepted: bool) -> None:
    driver = Driver(MemoryStore())
    driver.feed(trip("P0"), trip("P1"))  # two agree: event time is 2020-01-20 08:00
    driver.feed(_shifted(KINDS[kind], 72 * HOUR + past))
    if accepted:
        assert driver.dead == []
    else:
        assert driver.dead == ["event time 2020-01-23T08:00:00.000001+08:00 is 72 h 0.000001 s past the stream's "
                               "event time 2020-01-20T08:00:00+08:00; more than rules.max_clock_skew_hours (72)"]


# -- nothing is written before an event is rejected ---------------------------------------------
def _contents(store: Store) -> dict[str, list[tuple[str, bytes]]]:
    """Everything the store holds, committed first (``items`` commits whatever was staged)."""
    return {family: list(store.items(family + SEP)) for family in string.ascii_uppercase}


REJECTED = {
    "far-future quarantine": {"type": "quarantine", "person_id": "P1", "at": "2099-12-31T00:00:00+08:00"},
    "far-future case": case("C2", "P1", reported_at="2099-12-31T00:00:00+08:00"),
    "far-future trip dated long before": orjson.loads(TRIP_2099),
    "far-future exposure": {"type": "exposure", "exposure_id": "E1", "mode": "flight", "service": "MU5101",
                            "date": "2099-12-31"},
    # board time the newest of the stream (within the bound), service date behind the horizon: main
    # moved event time to the board time before it rejected the date.
    "trip behind the horizon": trip("P3", seat="1C", day="2020-01-21")
    | {"board_time": at("09:00", "2020-01-24"), "alight_time": at("10:00", "2020-01-24")},
    "trip far from its service date": trip("P3", day="2020-01-30", board="08:00")
    | {"board_time": at("08:00", "2020-01-24"), "alight_time": at("09:00", "2020-01-24")},
}


@pytest.mark.parametrize("name", REJECTED)
def test_a_rejected_event_writes_nothing(tmp_path: Path, name: str) -> None:
    store = RocksStore(tmp_path / "state")
    try:
        driver = Driver(store, RuleSettings(retention_days=1))
        driver.feed(trip("P1", seat="1A", day="2020-01-23"), trip("P2", seat="1B", day="2020-01-23"),
                    case("C1", "P1", onset="2020-01-23", reported_at=at("12:00", "2020-01-23")))
        assert driver.dead == [] and driver.live()  # horizon 2020-01-22
        before = _contents(store)
        driver.feed(REJECTED[name])
        assert len(driver.dead) == 1
        assert _contents(store) == before
    finally:
        store.close()


# -- board time and service date ------------------------------------------------------------------
@pytest.mark.parametrize(("board", "accepted"), [
    ("2020-01-19T00:00:00+08:00", True),  # the day before the service date, from its start
    ("2020-01-18T23:59:59.999999+08:00", False),
    ("2020-01-24T23:59:59.999999+08:00", True),  # 72 h (max_ride_hours) after the day after it
    ("2020-01-25T00:00:00+08:00", False),
])
def test_a_board_time_must_lie_near_its_service_date(board: str, accepted: bool) -> None:
    """Even as the first event of a stream, where no event time judges it yet."""
    driver = Driver(MemoryStore())
    alight = format_time(parse_time(board) + HOUR, SETTINGS.rules.zone)
    driver.feed(trip("P1") | {"board_time": board, "alight_time": alight},
                {"type": "exposure", "exposure_id": "E1", "mode": "flight", "service": "MU5101",
                 "date": "2020-01-20", "start": board, "end": alight})
    if accepted:
        assert driver.dead == []
    else:
        assert [reason.split(" ", 1)[0] for reason in driver.dead] == ["board_time", "start"]
        assert all("too far from service date 2020-01-20" in reason for reason in driver.dead)


# -- the first event time of a stream -------------------------------------------------------------
def test_one_line_cannot_set_the_first_event_time_of_a_stream() -> None:
    driver = Driver(MemoryStore())
    driver.feed({"type": "quarantine", "person_id": "NOBODY", "at": "2099-12-31T00:00:00+08:00"},
                trip("P1", seat="1A"), trip("P2", seat="1B"), case("C1", "P1", onset="2020-01-20"),
                {"type": "quarantine", "person_id": "NOBODY", "at": "2099-12-31T00:00:00+08:00"})
    assert set(driver.levels().items()) == {("P2", "close")}
    assert len(driver.dead) == 1 and driver.dead[0].endswith("more than rules.max_clock_skew_hours (72)")


def test_event_time_survives_a_restart(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "state")
    Driver(store).feed(trip("P1"), trip("P2"))
    store.commit()
    store.close()
    store = RocksStore(tmp_path / "state")
    try:
        driver = Driver(store)
        driver.feed(trip("P3", day="2020-01-24"))
        assert driver.dead and driver.dead[0].endswith("more than rules.max_clock_skew_hours (72)")
    finally:
        store.close()


def test_the_bound_is_a_setting(tmp_path: Path) -> None:
    assert SETTINGS.rules.max_clock_skew_hours == 72
    driver = Driver(MemoryStore(), RuleSettings(max_clock_skew_hours=1.5))
    driver.feed(trip("P1"), trip("P2"), trip("P3", board="09:30", alight="10:00"),
                trip("P4", board="11:00:00.000001", alight="12:00"))
    assert [reason[-40:] for reason in driver.dead] == ["more than rules.max_clock_skew_hours (1.5)"[-40:]]
    for value in ("0", "-1", "nan", "inf", "1e9"):
        (tmp_path / "bad.toml").write_text(f"[rules]\nmax_clock_skew_hours = {value}\n")
        with pytest.raises(ConfigError, match="max_clock_skew_hours"):
            load_settings(tmp_path / "bad.toml")


# -- Kafka partitions -----------------------------------------------------------------------------
def _partitioned(lines: list[bytes], state: Path, partitions: int = 3) -> MemoryBus:
    bus = MemoryBus(partitions)
    bus.publish(lines, SETTINGS)
    tasks = open_tasks(bus, state, SETTINGS)
    try:
        drain(bus, tasks, seed=partitions)
    finally:
        for task in tasks:
            task.close()
    return bus


def _same_alerts(bus: MemoryBus, reference: Reference) -> None:
    assert fold(bus.records(bus.kafka.contacts_topic)) == reference.contacts
    topics = {name: bus.records(name) for name in bus.topics}
    assert queues_of(topics, bus.kafka.queue_topic_prefix) == reference.queues


@pytest.mark.parametrize("bad", [QUARANTINE_2099, TRIP_2099], ids=["quarantine", "trip"])
def test_a_far_future_line_moves_no_partition(city, tmp_path: Path, bad: bytes) -> None:
    """Each partition keeps its event time; the bad trip is one dead letter (trips reach one
    partition). Records placed on every partition do not take part in a partition's event time
    (docs/rules.md), so the quarantine is applied alike everywhere and moves none."""
    lines, _ = city
    reference = embedded_reference(_events(lines, tmp_path), tmp_path / "reference", SETTINGS)
    for index in (len(lines) // 2, _middle_of_the_rides(lines)):
        bus = _partitioned([*lines[:index], bad, *lines[index:]], tmp_path / f"state{index}")
        _same_alerts(bus, reference)
        letters = [d for d in bus.records(bus.kafka.dead_letter_topic) if d["raw"] == bad.decode()]
        assert len(letters) == (0 if bad is QUARANTINE_2099 else 1)


def _events(lines: list[bytes], folder: Path) -> Path:
    path = folder / "clean.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_an_exposure_rejected_on_every_partition_is_one_dead_letter(tmp_path: Path) -> None:
    exposure = {"type": "exposure", "exposure_id": "E1", "mode": "flight", "service": "MU5101",
                "date": "2020-01-20", "start": at("08:00", "2020-01-26"), "end": at("09:00", "2020-01-26")}
    bus = _partitioned([orjson.dumps(e) for e in (trip("P1"), trip("P2"), exposure)], tmp_path, partitions=4)
    letters = bus.records(bus.kafka.dead_letter_topic)
    assert [d["reason"].split(" ", 1)[0] for d in letters] == ["start"]
    assert letters[0]["source"] == f"events/{partition_of_day(service_day('2020-01-20', 'flight', 'MU5101'), 4)}"


def test_a_partition_applies_a_copied_ride_whatever_its_own_event_time(tmp_path: Path) -> None:
    """A copy is a ride its owner accepted: the receiver neither judges it by its own event time
    (which lags when its own days are quiet) nor moves its event time with it."""
    kafka = MemoryBus(2).kafka
    task = PartitionTask(tmp_path, kafka.events_topic, 0, 2, SETTINGS, kafka)
    try:
        task.process([Rec(0, orjson.dumps(trip("P1"))), Rec(1, orjson.dumps(trip("P2")))])
        mark = task.store.get(group(META), WATERMARK)
        assert mark is not None
        copied = parse_line(orjson.dumps(trip("P3", day="2020-01-25", trip_id="far")), 72 * HOUR)
        assert task.process([Rec(2, trip_record(copied, SETTINGS.rules.zone), ((COPY_HEADER, COPY_TRIP),))]) == []
        assert task.store.get(group(TRIPS), "far") is not None
        assert task.store.get(group(META), WATERMARK) == mark
    finally:
        task.close()


def _dates_of(partition: int, partitions: int) -> list[str]:
    return [day for day in (f"2020-01-{d:02d}" for d in range(1, 32))
            if partition_of_day(service_day(day, "flight", "MU5101"), partitions) == partition]


def test_records_on_every_partition_are_applied_alike(tmp_path: Path) -> None:
    """A case reported beyond one partition's event time but within another's is applied by both
    (records placed on every partition take no part in a partition's event time), and its alerts
    come from the partition of their day."""
    early = _dates_of(0, 2)[0]
    late = next(day for day in _dates_of(1, 2) if day >= f"{early[:8]}{int(early[8:]) + 5:02d}")
    stream = [trip("P1", seat="1A", day=early), trip("P2", seat="1B", day=early),
              trip("P3", seat="1A", day=late), trip("P4", seat="1B", day=late),
              case("C1", "P3", onset=late, reported_at=at("12:00", late))]
    bus = _partitioned([orjson.dumps(e) for e in stream], tmp_path, partitions=2)
    assert bus.records(bus.kafka.dead_letter_topic) == []
    (alert,) = fold(bus.records(bus.kafka.contacts_topic)).values()
    assert (alert["contact_person_id"], alert["level"]) == ("P4", "close")
