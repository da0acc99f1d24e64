"""Contact graph, clusters and same-trip lookup over a real run's RocksDB state."""

from __future__ import annotations

import orjson
import pytest

from graph.store import RocksStore
from streams.embedded import run_embedded
from tests.builders import at, case, lines, trip
from tracer.analysis.lookup import lookup
from tracer.analysis.network import case_subgraph, clusters, contact_graph
from tracer.analysis.question import read_question
from tracer.cli import main
from tracer.settings import RuleSettings, Settings

D1, D2 = "2020-01-20", "2020-01-21"
EVENTS = [
    trip("P1", seat="10A", board_station="PVG", alight_station="CTU"),
    trip("P2", seat="11A"), trip("P3", seat="30A"),
    trip("P2", mode="train", service="G7", day=D2, carriage="5", seat="3C", board="09:00", alight="11:00"),
    trip("P4", mode="train", service="G7", day=D2, carriage="5", seat="7F", board="09:30", alight="10:00"),
    case("C1", "P1", reported_at=at("12:00", D2)),
    case("C2", "P2", onset="2020-01-22", reported_at=at("18:00", D2)),  # P2, C1's close contact, falls ill
    {"type": "exposure", "exposure_id": "X9", "mode": "flight", "service": "MU5101", "date": D1,
     "seats": ["12C"], "source": "https://example.org/notice"},
]


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    root = tmp_path_factory.mktemp("graph")
    (root / "events.jsonl").write_bytes(lines(EVENTS))
    run_embedded([str(root / "events.jsonl")], root / "out", Settings(), root / "state")
    return root / "state"


@pytest.fixture
def store(state):
    opened = RocksStore(state, read_only=True)
    yield opened
    opened.close()


def test_graph_links_cases_through_a_contact(store):
    graph = contact_graph(store, RuleSettings())
    assert graph.has_edge("case:C1", "person:P2")
    link = graph.get_edge_data("case:C1", "case:C2")[0]
    assert link == {"kind": "candidate_link", "mode": "flight", "service": "MU5101", "date": D1, "level": "close"}
    edge = next(d for _, b, d in graph.out_edges("case:C1", data=True) if b == "person:P2")
    assert edge["level"] == "close" and edge["service"] == "MU5101" and edge["contact_seat"] == "11A"
    assert graph.has_edge("exposure:X9", "person:P2")
    sub = case_subgraph(graph, "C1", depth=1)
    assert "person:P3" in sub and "person:P4" not in sub


def test_clusters_join_cases_by_shared_trips_and_links(store):
    found, busiest = clusters(store, RuleSettings())
    assert [c.cases for c in found] == [["C1", "C2"]] and found[0].first_onset == "2020-01-21"
    assert found[0].links >= 1 and any("MU5101" in s for s in found[0].shared_services)
    assert busiest[0][1] == 2


def test_lookup_answers_with_level_and_source(store):
    def rides(service: str, seat: str | None = None) -> list[dict]:
        return lookup(store, RuleSettings(), read_question(D1, service, seat=seat)).rides

    answers = rides("MU5101", "13C")
    by_case = {a["case_id"]: a for a in answers}
    assert set(by_case) == {"C1", "C2", "X9"}  # P2 became case C2: their ride is a case ride too
    assert by_case["C1"]["seat"] == "10A" and by_case["C1"]["your_level"] == "close"
    assert by_case["C1"]["board_station"] == "PVG" and by_case["C1"]["kind"] == "case"
    assert by_case["X9"]["kind"] == "exposure" and by_case["X9"]["source"] == "https://example.org/notice"
    assert "person_id" not in str(answers)  # not even the staff form names a person
    assert {a["your_level"] for a in rides("MU5101", "40A")} == {"general"}
    assert rides("MU9999") == []


@pytest.mark.parametrize("fmt", ["json", "graphml", "dot", "svg"])
def test_graph_command_formats(state, tmp_path, fmt):
    out = tmp_path / f"c1.{fmt}"
    assert main(["graph", "--state", str(state), "--case", "C1", "--format", fmt, "--out", str(out)]) == 0
    text = out.read_text()
    marker = {"json": '"case:C1"', "graphml": "<graphml", "dot": "digraph", "svg": "<svg"}[fmt]
    assert marker in text


def test_clusters_and_lookup_commands(state, capsys):
    assert main(["clusters", "--state", str(state)]) == 0
    assert "1 cluster(s) of 2 case(s)" in capsys.readouterr().out
    assert main(["lookup", "--state", str(state), "--date", D1, "--service", "MU5101", "--seat", "9B"]) == 0
    answers = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {a["your_level"] for a in answers} == {"close"}


def test_unknown_case_and_missing_state_are_clear_errors(state, tmp_path, capsys):
    assert main(["graph", "--state", str(state), "--case", "C404"]) == 2
    assert main(["lookup", "--state", str(tmp_path / "none"), "--date", D1, "--service", "X"]) == 2
    assert "no case 'C404'" in capsys.readouterr().err
