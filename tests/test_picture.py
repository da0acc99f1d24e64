"""The chain picture (`tracer graph --format svg`) of a case with more than 500 contacts, from a
state the embedded runner made: nodes by trip and level, never by person; candidate links, never
"transmission"; every id escaped; no two nodes overlapping."""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET
from collections import defaultdict
from itertools import combinations, product

import networkx as nx
import pytest

from graph.store import RocksStore
from tests.builders import at, case, state_graph, traced_state, trip
from tracer.analysis.export import to_dot
from tracer.analysis.picture import LINKS_SHOWN, counted
from tracer.analysis.queries import case_alerts
from tracer.cli import main

BIG = 'C<b>&"1'  # markup in a case id
TRAIN = 'G1"<&>'  # and in a service
LONG = "A" + "长" * 60  # a linked case's id far wider than its node: cut to fit, full in the tooltip
D1, D2 = "2020-01-20", "2020-01-21"
SEATS = [f"{row}{letter}" for row, letter in product(range(1, 51), "ABCDEF")]
LINKED = [f"P{n}" for n in range(100, 108)]  # flight passengers who fall ill: eight linked cases on one trip
EVENTS = [
    # The big case's flight: 299 others, rows 7-13 close.
    *(trip("P0" if seat == "10A" else f"P{n}", seat=seat) for n, seat in enumerate(SEATS, start=100)),
    # Its train: 230 others over 8 carriages, carriage 3 close.
    trip("P0", mode="train", service=TRAIN, day=D2, carriage="3", seat="1A", board="09:00", alight="11:00"),
    *(trip(f"T{n}", mode="train", service=TRAIN, day=D2, carriage=str(1 + n % 8), seat=f"{n}B", board="09:00",
           alight="11:00") for n in range(230)),
    # Its metro run: 20 others, carriage 2 close.
    trip("P0", mode="metro", service="L2-20200121-0800", day=D2, carriage="2", board="08:10", alight="08:30"),
    *(trip(f"M{n}", mode="metro", service="L2-20200121-0800", day=D2, carriage=str(1 + n % 4), board="08:05",
           alight="08:35") for n in range(20)),
    # A close contact from the flight (row 11) rides on: 15 secondary contacts in their carriage.
    trip("P164", mode="metro", service="L5-20200121-1800", day=D2, carriage="4", board="18:10", alight="18:30"),
    *(trip(f"S{n}", mode="metro", service="L5-20200121-1800", day=D2, carriage="4", board="18:05", alight="18:35")
      for n in range(15)),
    # An earlier case whose flight the big case's person rode before its own window: a link into it.
    trip("Q0", service="FM9", day="2020-01-18", seat="20C"),
    trip("P0", service="FM9", day="2020-01-18", seat="21C"),
    case("C0", "Q0", onset="2020-01-20", reported_at=at("12:00", D1)),
    case(BIG, "P0", reported_at=at("12:00", "2020-01-22")),
    *(case(f"L{n}" if n else LONG, person, onset="2020-01-23", reported_at=at("12:00", "2020-01-23"))
      for n, person in enumerate(LINKED)),
    case("CM", "M0", onset="2020-01-23", reported_at=at("12:00", "2020-01-23")),  # on the metro run, in both windows
]


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return traced_state(tmp_path_factory.mktemp("picture"), EVENTS)


@pytest.fixture(scope="module")
def graph(state) -> nx.MultiDiGraph:
    return state_graph(state)


@pytest.fixture(scope="module")
def svg(state, tmp_path_factory) -> ET.Element:
    out = tmp_path_factory.mktemp("svg") / "big.svg"
    assert main(["graph", "--state", str(state), "--case", BIG, "--format", "svg", "--out", str(out)]) == 0
    text = out.read_text()
    assert "transmission" not in text.lower()
    return ET.fromstring(text)


NS = "{http://www.w3.org/2000/svg}"


def nodes(svg: ET.Element, kind: str | None = None) -> list[ET.Element]:
    return [g for g in svg.iter(f"{NS}g") if kind is None or g.get("class") == kind]


def test_a_case_with_500_contacts_is_drawn_with_a_node_per_trip_and_level(graph, svg):
    direct = {b for _, b, d in graph.out_edges(f"case:{BIG}", data=True) if d.get("kind") == "contact"}
    assert len(direct) > 500
    trips = nodes(svg, "trip")
    assert {(g.get("data-date"), g.get("data-mode"), g.get("data-service")) for g in trips} == {
        ("2020-01-18", "flight", "FM9"), (D1, "flight", "MU5101"), (D2, "train", TRAIN),
        (D2, "metro", "L2-20200121-0800")}
    assert len(nodes(svg)) <= 1 + len(trips) * (1 + 3 + LINKS_SHOWN)  # grows with trips, not contacts
    assert len(nodes(svg)) < 30


def test_each_count_is_the_contacts_of_its_trip_and_level(graph, svg):
    expected: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for _, contact, d in graph.out_edges(f"case:{BIG}", data=True):
        if d.get("kind") == "contact":
            expected[(d["date"], d["mode"], d["service"], d["level"])].add(contact)
    counts = {(g.get("data-date"), g.get("data-mode"), g.get("data-service"), g.get("data-level")): int(
        g.get("data-count")) for g in nodes(svg, "aggregate")}
    first: dict[str, tuple[str, tuple[str, ...]]] = {}  # close contact -> earliest close exposure and its trip
    for _, contact, d in graph.out_edges(f"case:{BIG}", data=True):
        if d.get("kind") == "contact" and d["level"] == "close":
            trip_ = (d["date"], d["mode"], d["service"])
            first[contact] = min(first.get(contact, ("~",)), (d["exposure_start"], trip_))
    for via, (_, place) in first.items():
        for _, contact, d in graph.out_edges(via, data=True):
            if d.get("level") == "secondary" and d["case_id"] == BIG:
                expected[(*place, "secondary")].add(contact)
    assert {f"person:S{n}" for n in range(15)} <= expected[(D1, "flight", "MU5101", "secondary")]  # via P164
    assert counts == {key: len(persons) for key, persons in expected.items()}
    assert counts[(D2, "train", TRAIN, "close")] == 29 and counts[(D2, "metro", "L2-20200121-0800", "close")] == 5
    assert all(g.get("data-case") == BIG for g in nodes(svg, "aggregate"))  # the drill-down's key, unescaped


def test_each_count_drills_down_to_the_alerts_it_counts(state, svg):
    store = RocksStore(state, read_only=True)
    try:
        alerts = case_alerts(store, BIG)
    finally:
        store.close()
    for g in nodes(svg, "aggregate"):
        found = counted(alerts, (g.get("data-date"), g.get("data-mode"), g.get("data-service")), g.get("data-level"))
        assert {a["level"] for a in found} == {g.get("data-level")}
        assert len({a["contact_person_id"] for a in found}) == int(g.get("data-count"))
    secondary = counted(alerts, (D1, "flight", "MU5101"), "secondary")
    assert {f"S{n}" for n in range(15)} <= {a["contact_person_id"] for a in secondary if a["via_person_id"] == "P164"}
    assert counted(alerts, (D1, "flight", "MU5101"), "close") != counted(alerts, (D2, "train", TRAIN), "close")


def test_cases_that_shared_a_trip_are_candidate_links_and_no_more(svg):
    links = nodes(svg, "link")
    on_flight = [g for g in links if g.get("data-service") == "MU5101"]
    assert len(on_flight) == LINKS_SHOWN - 1 and all(g.get("data-direction") == "contact" for g in on_flight)
    more = nodes(svg, "link-more")
    assert [int(g.get("data-count")) for g in more] == [len(LINKED) - (LINKS_SHOWN - 1)]
    into = {g.get("data-case"): g.get("data-direction") for g in links if g.get("data-service") == "FM9"}
    assert into == {"C0": "source"}  # the big case's person was C0's contact: drawn, though not C0's picture
    both = {g.get("data-case"): g.get("data-direction") for g in links if g.get("data-mode") == "metro"}
    assert both == {"CM": "both"}  # each rode in the other's window
    for g in links:
        assert [t.text for t in g.iter(f"{NS}text")][1] == "candidate link (shared trip)"


def test_no_label_overlaps_another_or_leaves_its_box(svg):
    boxes = []
    for g in nodes(svg):
        rect = g.find(f"{NS}rect")
        x, y, width, height = (float(rect.get(name)) for name in ("x", "y", "width", "height"))
        boxes.append((x, y, x + width, y + height))
        for text in g.iter(f"{NS}text"):
            size = float(text.get("font-size"))
            shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text.text)
            assert float(text.get("x")) + shown * 7.5 * size / 12 <= x + width, text.text
            assert y + size <= float(text.get("y")) <= y + height
    for a, b in combinations(boxes, 2):
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    assert max(box[2] for box in boxes) <= float(svg.get("width"))
    assert max(box[3] for box in boxes) <= float(svg.get("height"))


def test_a_long_id_is_cut_to_its_node_and_whole_in_its_tooltip(svg):
    node = next(g for g in nodes(svg, "link") if g.get("data-case") == LONG)
    assert node.find(f"{NS}text").text.endswith("…") and LONG in node.find(f"{NS}title").text


def test_ids_with_markup_stay_one_value(svg):
    assert next(svg.iter(f"{NS}text")).text == f"Case {BIG}"
    assert {g.get("data-service") for g in nodes(svg, "trip")} >= {TRAIN}
    assert nodes(svg, "case")[0].get("data-case") == BIG


def test_the_graph_and_its_exports_call_a_shared_trip_a_candidate_link(graph):
    kinds = {d.get("kind") for _, _, d in graph.edges(data=True)}
    assert "candidate_link" in kinds and "transmission" not in kinds
    dot = to_dot(graph).decode()
    assert "candidate link (shared trip) MU5101" in dot and "transmission" not in dot
