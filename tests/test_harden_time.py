"""Event time cannot be moved by one record, nor by a few (issue 12, item 1; docs/rules.md, "Event time").

Event time is the ``event_time_quorum``-th latest board time of the accepted trips: cases,
quarantines and exposures never move it, and fewer trips than the quorum cannot. A ride's board time
(an exposure's start) must lie near its service date; every check happens before anything is
written. The same holds on each Kafka partition.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.kafka.routing import COPY_HEADER, COPY_TRIP, partition_of_day, trip_record
from graph.keys import LATEST_TIMES, META, TRIPS, WATERMARK, group, service_day
from graph.store import SEP, MemoryStore, RocksStore, Store
from streams.embedded import run_embedded
from tests.builders import at, case, trip
from tests.conftest import Driver
from tests.kafka.harness import (
    MemoryBus,
    Rec,
    Reference,
    embedded_reference,
    open_tasks,
    queues_of,
    run_partitioned,
)
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
ZONE = SETTINGS.rules.zone
FAR_DATE = "too far from service date"


def _quarantine(moment: str) -> bytes:
    return orjson.dumps({"type": "quarantine", "person_id": "NOBODY", "at": moment})


def _trip_at(day: str, number: int) -> bytes:
    """A trip of nobody on a service nobody else rides, boarding at 08:00 on ``day``."""
    return orjson.dumps(trip(f"NOBODY{number}", mode="metro", service="X", day=day, trip_id=f"BAD{day}-{number}"))


def _creeping(make: Any, count: int) -> list[bytes]:
    """``count`` lines each 71 h after the one before, from the city's day on: each within any
    per-event bound, together weeks ahead."""
    base = parse_time("2020-01-15T12:00:00+08:00")
    days = [format_time(base + 71 * HOUR * k, ZONE) for k in range(1, count + 1)]
    return [make(moment) for moment in days]


# The attacks: lines that tried to move event time in the review (each alone, or a few together).
ATTACKS = {
    "a far-future quarantine": [QUARANTINE_2099],
    "a trip dated long before its board time": [TRIP_2099],
    "two agreeing far-past quarantines": [_quarantine("2000-01-01T00:00:00+08:00")] * 2,
    "two agreeing far-future quarantines": [_quarantine("2099-12-30T00:00:00+08:00")] * 2,
    "two agreeing far-past trips": [_trip_at("2000-01-01", n) for n in range(2)],
    "two agreeing far-future trips": [_trip_at("2099-12-30", n) for n in range(2)],
    "eleven creeping quarantines": _creeping(_quarantine, 11),
    "eleven creeping trips": _creeping(lambda m: _trip_at(m[:10], 0), 11),
    "99 far-future trips (one short of the quorum)": [_trip_at("2099-12-30", n) for n in range(99)],
}


# -- the reproduction on a generated city ----------------------------------------------
@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], Path]:
    """The issue's city (2,000 persons, 1 day, 5 cases, seed 7) and its run without a bad line."""
    folder = tmp_path_factory.mktemp("city")
    generate(2000, 1, 5, 7, folder, truth=False)
    run_embedded([str(folder / "events.jsonl")], folder / "clean", SETTINGS)
    return (folder / "events.jsonl").read_bytes().splitlines(), folder / "clean"


def _outputs(out: Path) -> dict[str, Any]:
    """The alert outputs byte for byte, and the health statuses they fold to. (A status change says
    when it happened, in event time: few lines cannot move event time beyond the stream's own trips,
    but they can move it within them, so "at" may differ.)"""
    found: dict[str, Any] = {str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*.jsonl"))
                             if path.name not in ("dead-letter.jsonl", "status.jsonl")}
    records = map(orjson.loads, (out / "status.jsonl").read_bytes().splitlines())
    last = {record["person_id"]: record for record in records}
    found["status"] = {person: {**record, "at": None} for person, record in last.items()}
    return found


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


@pytest.mark.parametrize("where", ["head", "registry", "rides"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_hostile_lines_anywhere_change_no_alert(city, tmp_path: Path, attack: str, where: str) -> None:
    """The review's city with each attack inserted at the head of the stream, in the middle of the
    registry (before any ride) or in the middle of the rides: the alerts and queues are byte-equal
    to the clean run's (143 queue records); a trip dated far from its board time is a dead letter."""
    lines, clean = city
    index = {"head": 0, "registry": len(lines) // 2, "rides": _middle_of_the_rides(lines)}[where]
    bad = ATTACKS[attack]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join([*lines[:index], *bad, *lines[index:]]) + b"\n")
    run_embedded([str(events)], tmp_path / "out", SETTINGS)
    assert _outputs(tmp_path / "out") == _outputs(clean)
    assert b'"level":"close"' in (clean / "contacts.jsonl").read_bytes()
    letters = [d["reason"] for d in _dead(tmp_path / "out") if d["raw"].encode() in bad]
    if bad == [TRIP_2099]:
        assert letters == ["board_time 2099-12-31T00:00:00+08:00 is too far from service date 2020-01-01 (allowed: "
                           "from the day before it to max_ride_hours after the day after it)"]
    else:  # applied; only a far-past trip among the rides is behind the retention horizon
        expected = len(bad) if attack == "two agreeing far-past trips" and where == "rides" else 0
        assert len(letters) == expected and all("before the retention horizon" in r for r in letters)


def test_a_case_reported_days_after_the_last_trip_is_traced(city, tmp_path: Path) -> None:
    """A real gap needs no attacker: a case reported four days after the rides (a late report, or a
    feed that paused) is traced like any other. Reports never move event time, so nothing bounds them."""
    lines, _ = city
    (report,) = [orjson.loads(line) for line in lines if b'"case_id":"C00001"' in line][:1]
    late = orjson.dumps({**report, "case_id": "CNEW", "reported_at": "2020-01-20T09:00:00+08:00"})
    run = _run_with(lines, len(lines), late, tmp_path / "out")
    assert not [d for d in _dead(run) if d["raw"] == late.decode()]
    live = fold(orjson.loads(line) for line in (run / "contacts.jsonl").read_bytes().splitlines())
    original = {(a["contact_person_id"], a["level"]) for a in live.values() if a["case_id"] == "C00001"}
    late_alerts = {(a["contact_person_id"], a["level"]) for a in live.values() if a["case_id"] == "CNEW"}
    assert original and late_alerts == original


def test_trips_after_a_gap_move_event_time_once_a_quorum_shows_it() -> None:
    """Rides four days later (a feed that paused) are traced, and the quorum of them moves event time
    (and retention) on."""
    rules = RuleSettings(event_time_quorum=3)
    store = MemoryStore()
    driver = Driver(store, rules)
    driver.feed(*(trip(f"P{n}", seat=f"{n}A", trip_id=f"t{n}") for n in range(3)))
    assert _watermark(store) == at("08:00", "2020-01-20")
    later = "2020-01-24"
    driver.feed(trip("Q1", seat="1A", day=later), trip("Q2", seat="1B", day=later))
    assert _watermark(store) == at("08:00", "2020-01-20")  # two of three: not yet
    driver.feed(trip("Q3", seat="9A", day=later), case("C1", "Q1", onset=later, reported_at=at("12:00", later)))
    assert _watermark(store) == at("08:00", later) and driver.dead == []
    assert set(driver.levels().items()) >= {("Q2", "close")}


def _watermark(store: Store) -> str | None:
    """The event time in the store, as a commit leaves it (the engine puts it at each commit)."""
    store.commit()
    mark = store.get(group(META), WATERMARK)
    return None if mark is None else format_time(int(mark), ZONE)


def test_event_time_is_the_quorum_th_latest_trip_and_only_trips_move_it() -> None:
    store = MemoryStore()
    driver = Driver(store, RuleSettings(event_time_quorum=2))
    driver.feed(trip("P1", board="08:00", alight="09:00"))
    assert _watermark(store) is None  # one trip: no event time yet
    driver.feed(trip("P2", board="09:00", alight="10:00"))
    assert _watermark(store) == at("08:00", "2020-01-20")
    driver.feed(case("C1", "P1", reported_at=at("12:00", "2020-01-23")),
                {"type": "quarantine", "person_id": "P2", "at": at("12:00", "2020-01-23")},
                {"type": "exposure", "exposure_id": "E1", "mode": "train", "service": "G9", "date": "2020-01-23"},
                trip("P3", board="07:00", alight="07:30"))  # an earlier trip: never back
    assert _watermark(store) == at("08:00", "2020-01-20")
    driver.feed(trip("P4", board="11:00", alight="12:00"))
    assert _watermark(store) == at("09:00", "2020-01-20") and driver.dead == []


def test_generated_cities_keep_every_line(tmp_path: Path) -> None:
    """The simulator's late lines, corrections and overnight trains never meet the service-date rule."""
    generate(3000, 6, 12, 3, tmp_path, truth=False)
    run_embedded([str(tmp_path / "events.jsonl")], tmp_path / "out", SETTINGS)
    reasons = [d["reason"] for d in _dead(tmp_path / "out")]
    assert reasons and not [r for r in reasons if FAR_DATE in r]


# -- nothing is written before an event is rejected ---------------------------------------------
def _contents(store: Store) -> dict[str, list[tuple[str, bytes]]]:
    """Everything the store holds, committed first (``items`` commits whatever was staged)."""
    return {family: list(store.items(family + SEP)) for family in string.ascii_uppercase}


REJECTED = {
    "far-future trip dated long before": orjson.loads(TRIP_2099),
    "exposure behind the horizon": {"type": "exposure", "exposure_id": "E1", "mode": "flight",  # 60 days
                                    "service": "MU5101", "date": "2019-11-20"},
    "case with its onset weeks after its report": case("C2", "P1", onset="2020-02-07",
                                                       reported_at=at("12:00", "2020-01-23")),
    # board time the newest of the stream, service date behind the horizon: main moved event time
    # to the board time before it rejected the date.
    "trip behind the horizon": trip("P3", seat="1C", day="2020-01-21")
    | {"board_time": at("09:00", "2020-01-24"), "alight_time": at("10:00", "2020-01-24")},
    "trip far from its service date": trip("P3", day="2020-01-30", board="08:00")
    | {"board_time": at("08:00", "2020-01-24"), "alight_time": at("09:00", "2020-01-24")},
}


@pytest.mark.parametrize("name", REJECTED)
def test_a_rejected_event_writes_nothing(tmp_path: Path, name: str) -> None:
    store = RocksStore(tmp_path / "state")
    try:
        driver = Driver(store, RuleSettings(retention_days=1, event_time_quorum=1))
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


def test_event_time_survives_a_restart(tmp_path: Path) -> None:
    rules = RuleSettings(event_time_quorum=2)
    store = RocksStore(tmp_path / "state")
    Driver(store, rules).feed(trip("P1"))
    store.commit()
    store.close()
    store = RocksStore(tmp_path / "state")
    try:
        Driver(store, rules).feed(trip("P2", board="09:00", alight="10:00"))  # the second of the quorum
        assert _watermark(store) == at("08:00", "2020-01-20")
    finally:
        store.close()


def test_the_quorum_is_a_setting(tmp_path: Path) -> None:
    assert SETTINGS.rules.event_time_quorum == 100
    for value in ("0", "-1", "1.5", "1000000"):
        (tmp_path / "bad.toml").write_text(f"[rules]\nevent_time_quorum = {value}\n")
        with pytest.raises(ConfigError, match="event_time_quorum"):
            load_settings(tmp_path / "bad.toml")


# -- Kafka partitions -----------------------------------------------------------------------------
def _partitioned(lines: list[bytes], state: Path, partitions: int = 3) -> MemoryBus:
    return run_partitioned(lines, state, SETTINGS, partitions, seed=partitions)


def _same_alerts(bus: MemoryBus, reference: Reference) -> None:
    assert fold(bus.records(bus.kafka.contacts_topic)) == reference.contacts
    topics = {name: bus.records(name) for name in bus.topics}
    assert queues_of(topics, bus.kafka.queue_topic_prefix) == reference.queues


@pytest.mark.parametrize("attack", ["a far-future quarantine", "a trip dated long before its board time",
                                    "two agreeing far-future trips", "eleven creeping quarantines"])
def test_hostile_lines_move_no_partition(city, tmp_path: Path, attack: str) -> None:
    """Each partition keeps its event time from the trips it owns; records placed on every
    partition take no part in it (docs/rules.md), so every partition applies them alike. The trip
    dated far from its board time is one dead letter (trips reach one partition)."""
    lines, _ = city
    bad = ATTACKS[attack]
    reference = embedded_reference(_events(lines, tmp_path), tmp_path / "reference", SETTINGS)
    for index in (len(lines) // 2, _middle_of_the_rides(lines)):
        bus = _partitioned([*lines[:index], *bad, *lines[index:]], tmp_path / f"state{index}")
        _same_alerts(bus, reference)
        letters = [d for d in bus.records(bus.kafka.dead_letter_topic) if d["raw"].encode() in bad]
        assert len(letters) == (1 if bad == [TRIP_2099] else 0)


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
    tasks = open_tasks(MemoryBus(2), tmp_path, SETTINGS)
    task = tasks[0]
    try:
        task.process([Rec(n, orjson.dumps(trip(f"P{n}", trip_id=f"t{n}"))) for n in range(100)])
        task.store.commit()  # the engine puts its event time at each commit
        mark = task.store.get(group(META), WATERMARK)
        assert mark is not None
        copied = parse_line(orjson.dumps(trip("P3", day="2020-01-25", trip_id="far")), 72 * HOUR)
        assert task.process([Rec(100, trip_record(copied, SETTINGS.rules.zone), ((COPY_HEADER, COPY_TRIP),))]) == []
        assert task.store.get(group(TRIPS), "far") is not None
        task.store.commit()
        assert task.store.get(group(META), WATERMARK) == mark
    finally:
        tasks.close()


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


def test_a_purge_that_commits_saves_event_time_as_before_the_trip() -> None:
    """A retention purge commits on its way; a crash there re-reads the trip that set it off, so
    what those commits save must not count that trip's board time yet (it would count twice)."""
    store = MemoryStore()
    driver = Driver(store, RuleSettings(retention_days=1, event_time_quorum=2))
    driver.feed(trip("P1", trip_id="a"), trip("P2", trip_id="b"),  # 2020-01-20 08:00: event time
                trip("Q1", day="2020-01-23", trip_id="c"))  # the heap: 01-20 08:00, 01-23 08:00
    saved: list[list[int]] = []
    store.commit_hooks.append(lambda: saved.append(orjson.loads(store.get(group(META), LATEST_TIMES) or b"[]")))
    driver.feed(trip("Q2", day="2020-01-23", board="09:00", alight="10:00", trip_id="d"))  # event time 01-23
    parse = parse_time
    before = sorted([parse(at("08:00", "2020-01-20")), parse(at("08:00", "2020-01-23"))])
    assert saved and all(sorted(heap) == before for heap in saved)  # the purge's commits
    store.commit()
    assert sorted(orjson.loads(store.get(group(META), LATEST_TIMES))) == [
        parse(at("08:00", "2020-01-23")), parse(at("09:00", "2020-01-23"))]
    assert _watermark(store) == at("08:00", "2020-01-23")
