"""Ids of different kinds never meet in one namespace (issue 12, item 2).

A case and a published exposure with equal ids are two sources: their alerts, store entries and
graph nodes stay apart. A feed cannot name another person's id-less ride by its derived id.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import orjson
import pytest

from connectors.kafka.routing import trip_record
from graph.store import RocksStore
from streams.embedded import run_embedded
from tests.builders import at, case, lines, person, trip
from tests.conftest import Driver
from tracer.alerts import fold
from tracer.analysis.network import contact_graph
from tracer.events import Trip, parse_line
from tracer.oracle import expected_alerts
from tracer.settings import RuleSettings, Settings

D2 = "2020-01-21"
TRAIN = {"mode": "train", "service": "G7", "day": D2, "board": "09:00", "alight": "11:00"}
CITY = [
    person("P2", "310101002"), person("P3", "310101013"), person("P4", "310101015"),
    trip("P1", seat="10A", trip_id="t1"), trip("P2", seat="11A", trip_id="t2"), trip("P3", seat="30A", trip_id="t3"),
    trip("P4", carriage="5", trip_id="t4", **TRAIN), trip("P5", carriage="5", trip_id="t5", **TRAIN),
    case("C1", "P1", reported_at=at("12:00", D2)),
]
# Published on the case's own flight (so it meets the case's contacts), then moved to the train.
EXPOSURE = {"type": "exposure", "exposure_id": "C1", "mode": "flight", "service": "MU5101", "date": "2020-01-20"}
MOVED = {**EXPOSURE, "mode": "train", "service": "G7", "date": D2, "carriages": ["5"]}


def _run(tmp_path: Path, name: str, events: list[dict]) -> tuple[Path, dict[str, dict], dict[str, dict]]:
    """State folder, live contacts and live queue 310101002 of an embedded run over ``events``."""
    (tmp_path / f"{name}.jsonl").write_bytes(lines(events))
    out, state = tmp_path / f"{name}-out", tmp_path / f"{name}-state"
    run_embedded([str(tmp_path / f"{name}.jsonl")], out, Settings(), state)

    def live(path: Path) -> dict[str, dict]:
        return fold(orjson.loads(line) for line in path.read_bytes().splitlines())

    return state, live(out / "contacts.jsonl"), live(out / "alerts" / "310101002.jsonl")


def test_exposure_with_a_case_id_leaves_the_case_alerts_live(tmp_path: Path) -> None:
    _, reference, reference_queue = _run(tmp_path, "reference", CITY)
    events = [*CITY, EXPOSURE, MOVED]
    state, contacts, queue = _run(tmp_path, "collide", events)
    assert {k: contacts.get(k) for k in reference} == reference  # the case's alerts: all live, unchanged
    assert queue == reference_queue and len(queue) == 1  # the street office keeps its close contact
    assert {k for k, a in contacts.items() if a["source_kind"] == "case"} == reference.keys()
    exposure_alerts = {k: a for k, a in contacts.items() if a["source_kind"] == "exposure"}
    assert {a["contact_person_id"] for a in exposure_alerts.values()} == {"P4", "P5"}
    assert {a["case_id"] for a in contacts.values()} == {"C1"}
    assert contacts == expected_alerts(events)  # and the oracle agrees, id for id

    store = RocksStore(state, read_only=True)
    try:
        graph = contact_graph(store, RuleSettings())
    finally:
        store.close()
    assert graph.nodes["case:C1"]["kind"] == "case" and graph.nodes["exposure:C1"]["kind"] == "exposure"
    assert _contacts(graph, "exposure:C1") == {"person:P4", "person:P5"}
    assert _contacts(graph, "case:C1") == {"person:P2", "person:P3"}


def _contacts(graph: nx.MultiDiGraph, node: str) -> set[str]:
    return {contact for _, contact, kind in graph.out_edges(node, data="kind") if kind == "contact"}


def test_exposure_and_case_alerts_of_one_contact_are_two_alerts(driver: Driver) -> None:
    driver.feed(*CITY, EXPOSURE)
    p2 = [a for a in driver.live().values() if a["contact_person_id"] == "P2"]
    assert sorted((a["source_kind"], a["case_id"], a["case_person_id"]) for a in p2) == [
        ("case", "C1", "P1"),
        ("exposure", "C1", None),
    ]
    driver.feed({**EXPOSURE, "type": "exposure", "service": "MU9999"})  # withdrawn from the flight
    assert [a["source_kind"] for a in driver.live().values() if a["contact_person_id"] == "P2"] == ["case"]


MAX_RIDE = 72 * 3_600_000_000


def test_a_given_trip_id_cannot_take_a_derived_one(driver: Driver) -> None:
    """An id-less ride's id is derived from its content; a feed naming that id for another ride
    would replace it (and drop the contact's alerts)."""
    ride = trip("P2", seat="11A")
    derived = parse_line(orjson.dumps(ride), MAX_RIDE).trip_id
    driver.feed(trip("P1", seat="10A"), ride, case("C1", "P1"))
    assert set(driver.levels()) == {"P2"}
    driver.feed(trip("P2", seat="11A", service="XX1", trip_id=derived))
    assert driver.dead == ["a trip_id starting with 'h:' must be the id derived from the trip's content"]
    assert set(driver.levels()) == {"P2"}


@pytest.mark.parametrize("extra", [{}, {"carriage": 7, "seat": " 3C ", "crew_rows": "25"}, {"berth": "soft_sleeper"}])
def test_a_copied_ride_keeps_its_derived_id(extra: dict) -> None:
    """Kafka partitions copy rides with their ids: a derived id on its own content is accepted."""
    original = parse_line(orjson.dumps(trip("P2", **extra)), MAX_RIDE)
    assert isinstance(original, Trip) and original.trip_id.startswith("h:")
    assert parse_line(trip_record(original, RuleSettings().zone), MAX_RIDE) == original
