"""`tracer graph`, `clusters` and `lookup` with hostile ids: every output parses back, one node per id.

Ids are whatever the event parser admits (printable text up to 128 characters, and a few
invisible characters it lets through, such as U+2028 and U+FFFE). Each output is read back with a
real parser (networkx's GraphML reader, ElementTree, orjson) or, for DOT, with the strict
tokenizer below (neither Graphviz nor pydot is installed here), and must hold exactly the
expected nodes: no id may close its string and add a node or an attribute.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import orjson
import pytest

from tests.builders import at, case, state_graph, traced_state, trip
from tracer.analysis.export import to_graphml, xml_safe
from tracer.cli import main
from tracer.settings import RuleSettings, Settings

INJECT = 'P"]; evil [label="x'
HOSTILE_PERSONS = [
    INJECT,
    "P\\",  # a trailing backslash would escape the closing quote
    'P\\"; "Q',
    "P\u2028Q",  # a line break for str.splitlines() and JavaScript
    "<P>&amp;]]>--",  # markup, a CDATA end, an XML comment's forbidden --
    "P\ufffeQ",  # a character XML 1.0 cannot carry at all
    "P -> Q",
    "P\u00a0\u200bQ",  # invisible
    "'P'{}[];,=",
    "x" * 128,
]
CASE = 'C"<&]]>\u2028\\'
EXPOSURE = 'X"]; evil2 [color="red'
EVENTS = [
    *(trip(p, seat=f"{n + 10}A") for n, p in enumerate(HOSTILE_PERSONS)),
    trip("plain", seat="9A", service='MU"5101'),
    case(CASE, INJECT, reported_at=at("12:00", "2020-01-21")),
    {"type": "exposure", "exposure_id": EXPOSURE, "mode": "flight", "service": "MU5101", "date": "2020-01-20",
     "seats": ["30C"], "source": "https://example.org/\u2028\x85<x>"},
]


QUORUM_OF_ONE = Settings(rules=RuleSettings(event_time_quorum=1))


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    """A state from the hostile events; its few trips set event time (the lookup's horizon)."""
    return traced_state(tmp_path_factory.mktemp("hostile"), EVENTS, QUORUM_OF_ONE)


@pytest.fixture(scope="module")
def graph(state) -> nx.MultiDiGraph:
    return state_graph(state)


def export(state: Path, tmp_path: Path, fmt: str, *which: str) -> bytes:
    out = tmp_path / f"graph.{fmt}"
    assert main(["graph", "--state", str(state), *(which or ("--all",)), "--format", fmt, "--out", str(out)]) == 0
    return out.read_bytes()


def test_the_hostile_ids_are_in_the_graph(graph):
    names = {node.split(":", 1)[1] for node in graph}
    assert set(HOSTILE_PERSONS) | {CASE, EXPOSURE} <= names


def test_graphml_parses_back_to_the_same_nodes(state, graph, tmp_path):
    export(state, tmp_path, "graphml")
    back = nx.read_graphml(tmp_path / "graph.graphml")
    assert set(back) == {xml_safe(node) for node in graph} and len(back) == len(graph)
    assert back.number_of_edges() == graph.number_of_edges()
    keys = {key for _, data in back.nodes(data=True) for key in data}
    assert keys == {key for _, data in graph.nodes(data=True) for key in data}


def test_json_parses_back_and_keeps_one_record_per_line(state, graph, tmp_path):
    text = export(state, tmp_path, "json").decode()
    assert not {"\u2028", "\x85"} & set(text)
    data = orjson.loads(text)
    assert {node["id"] for node in data["nodes"]} == set(graph) and len(data["edges"]) == graph.number_of_edges()


def test_svg_parses_back_and_each_id_stays_one_value(state, graph, tmp_path):
    svg = ET.fromstring(export(state, tmp_path, "svg", "--case", CASE))
    ns = "{http://www.w3.org/2000/svg}"
    assert {element.tag.removeprefix(ns) for element in svg.iter()} <= {"svg", "rect", "text", "polyline", "title", "g"}
    assert svg.find(f"{ns}text").text == f"Case {xml_safe(CASE)}"  # shown as its node is
    counts = [group for group in svg.iter(f"{ns}g") if group.get("class") == "aggregate"]
    assert counts and {group.get("data-case") for group in counts} == {xml_safe(CASE)}
    assert {group.get("data-service") for group in counts} == {"MU5101"}
    shown = " ".join([*(e.text or "" for e in svg.iter()), *(value for e in svg.iter() for value in e.attrib.values())])
    assert not [person for person in HOSTILE_PERSONS if xml_safe(person) in shown]  # contacts are counted, not named


_DOT_TOKEN = re.compile(r'[ \n]+|"(?:[^"\\\n]|\\.)*"|->|[{}\[\];,=]|[A-Za-z_][A-Za-z0-9_]*')


def dot_tokens(text: str) -> list[str]:
    """Strict DOT tokens: a string that does not close, or any stray character, fails the test."""
    tokens, at_ = [], 0
    while at_ < len(text):
        match = _DOT_TOKEN.match(text, at_)
        assert match, f"not DOT at {at_}: {text[at_:at_ + 30]!r}"
        if not match[0].isspace():
            tokens.append(match[0])
        at_ = match.end()
    return tokens


def unquote(token: str) -> str:
    assert token.startswith('"') and token.isprintable(), token
    return ast.literal_eval(token)  # the writer's escapes (\\ \" \uXXXX) are Python's


def test_dot_parses_back_to_the_same_nodes_and_edges(state, graph, tmp_path):
    tokens = dot_tokens(export(state, tmp_path, "dot").decode())
    assert tokens[:3] == ["digraph", "contacts", "{"] and tokens[-1] == "}"
    statements, current = [], []
    for token in tokens[3:-1]:
        if token == ";":
            statements.append(current)
            current = []
        else:
            current.append(token)
    assert current == [] and statements[0] == ["rankdir", "=", "LR"]
    nodes, edges = set(), 0
    for statement in statements[1:]:
        ends = [unquote(statement[0])] + ([unquote(statement[2])] if statement[1] == "->" else [])
        attributes = statement[len(ends) * 2 - 1:]
        assert attributes[0] == "[" and attributes[-1] == "]"
        pairs = [*attributes[1:-1], ","]
        for key, equals, value, comma in zip(*[iter(pairs)] * 4, strict=True):
            assert (equals, comma) == ("=", ",") and key in ({"shape"} if len(ends) == 1 else {"label", "color"})
            assert value in ("box", "ellipse") or unquote(value) is not None
        if len(ends) == 1:
            nodes.add(ends[0])
        else:
            assert set(ends) <= set(graph)
            edges += 1
    assert nodes == set(graph) and edges == graph.number_of_edges()


def test_clusters_and_lookup_keep_one_record_per_line(state, capfd):
    assert main(["clusters", "--state", str(state)]) == 0
    report = capfd.readouterr().out
    assert report.count("\n") == len(report.splitlines()) and all(line.isprintable() for line in report.splitlines())
    shown = {ast.literal_eval(text) for text in re.findall(r'"(?:[^"\\]|\\.)*"', report)}
    assert CASE in shown
    assert main(["lookup", "--state", str(state), "--date", "2020-01-20", "--service", "MU5101"]) == 0
    answers = [orjson.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert {answer["case_id"] for answer in answers} == {CASE, EXPOSURE}
    assert any(answer["source"] == "https://example.org/\u2028\x85<x>" for answer in answers)


def tracer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracer.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("target", ["missing/x.svg", "folder", "file/x.svg", "/dev/full", "state/CURRENT"])
def test_every_output_path_error_is_one_line(state, tmp_path, target):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    out = state / "CURRENT" if target == "state/CURRENT" else tmp_path / target
    current = (state / "CURRENT").read_bytes()
    done = tracer("graph", "--state", str(state), "--case", CASE, "--format", "svg", "--out", str(out))
    assert done.returncode == 2 and done.stderr.startswith("tracer: error: cannot write ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert (state / "CURRENT").read_bytes() == current
    assert not list(tmp_path.glob("**/.tracer-*"))


def test_standard_output_on_a_full_disk_is_one_line(state):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "tracer.cli", "graph", "--state", str(state), "--all"],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "tracer: error: cannot write standard output: No space left on device\n"


def test_graphml_keeps_an_id_and_its_escaped_spelling_apart():
    """A real U+FFFE is written as the text \\ufffe: an id that is that text must not merge with it."""
    pairs = ["A\ufffe", "A\\ufffe", "A\\\ufffe", "A\\\\ufffe", "A\\", "A\\\\"]
    graph = nx.MultiDiGraph()
    graph.add_nodes_from((f"person:{p}", {"kind": "person"}) for p in pairs)
    graph.add_edge("person:A\ufffe", "person:A\\ufffe", kind="contact", rule="x\ufffe")
    graph.add_edge("person:A\ufffe", "person:A\\ufffe", kind="contact", rule="x\\ufffe")
    back = nx.parse_graphml(to_graphml(graph).decode())
    assert len(back) == len(pairs) and {d["rule"] for _, _, d in back.edges(data=True)} == {"x\\ufffe", "x\\\\ufffe"}


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--date", "garbage", "date: expected a date like 2020-01-15, got 'garbage'"),
    ("--date", "2020-01/20", "date: expected a date like 2020-01-15, got '2020-01/20'"),
    ("--date", "2020-02-30", "date: '2020-02-30' is not a day of the calendar"),
    ("--service", " ", "service: ' ' is neither a flight number"),
    ("--service", "MU5101\x07", "service: 'MU5101\\x07' is neither a flight number"),
    ("--carriage", "3\x1b", "carriage must be a short string or an integer"),
    ("--seat", "x" * 200, "seat must be a short string or an integer"),
])
def test_lookup_refuses_a_question_it_cannot_read(state, option, value, expected):
    question = {"--date": "2020-01-20", "--service": "MU5101"} | {option: value}
    done = tracer("lookup", "--state", str(state), *(part for pair in question.items() for part in pair))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"tracer: error: {expected}") and done.stderr.count("\n") == 1


@pytest.mark.parametrize("date", ["2020-1-20", "20200120", "2020-01-20 ", "２０２０-01-20"])
def test_lookup_reads_a_date_written_another_way(state, date):
    """Once refused (a false all-clear before that), now read as 2020-01-20 (tests/test_lookup.py)."""
    done = tracer("lookup", "--state", str(state), "--date", date, "--service", "MU5101")
    assert done.returncode == 0 and {orjson.loads(line)["case_id"] for line in done.stdout.splitlines()} == {
        CASE, EXPOSURE}


@pytest.mark.parametrize(("seat", "told"), [
    ("A36", "cannot tell: seat A36 is not a row and letter"),
    (None, "cannot tell: no seat given on a flight"),
])
def test_lookup_says_it_cannot_place_a_seat_rather_than_general(state, seat, told):
    asked = ["--seat", seat] if seat else ["--carriage", "3"]
    done = tracer("lookup", "--state", str(state), "--date", "2020-01-20", "--service", "MU5101", *asked)
    answers = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0 and len(answers) == 2
    assert all(a["your_level"] is None and a["rule"] is None and a["cannot_tell"] == told for a in answers)


@pytest.mark.parametrize("seat", ["29A", "２９a"])
def test_lookup_still_places_a_seat_it_can_read(state, seat):
    done = tracer("lookup", "--state", str(state), "--date", "2020-01-20", "--service", "MU5101", "--seat", seat)
    levels = {a["case_id"]: (a["your_level"], a["cannot_tell"]) for a in map(orjson.loads, done.stdout.splitlines())}
    assert levels == {EXPOSURE: ("close", None), CASE: ("general", None)}


def test_lookup_refuses_a_date_retention_has_dropped(state):
    done = tracer("lookup", "--state", str(state), "--date", "2019-11-01", "--service", "MU5101")
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1
    assert done.stderr.startswith("tracer: error: cannot answer for 2019-11-01: the state keeps published exposures "
                                  "from 2019-11-21 on (exposure_retention_days 60) and trips from 2019-12-30 on ")


def test_a_huge_depth_stops_when_nothing_new_is_reached(state):
    done = tracer("graph", "--state", str(state), "--case", CASE, "--depth", "9" * 20)
    assert done.returncode == 0 and orjson.loads(done.stdout)["nodes"]


@pytest.mark.parametrize("args", [
    ["graph", "--case", CASE, "--depth", "-1"],
    ["graph", "--all", "--depth", "1.5"],
    ["clusters", "--top", "-1"],
    ["clusters", "--top", "0"],
])
def test_counts_out_of_range_are_refused(state, args):
    done = tracer(args[0], "--state", str(state), *args[1:])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1].endswith(f"expected a whole number from {0 if args[0] == 'graph' else 1} up, "
                                                 f"not {args[-1]!r}")
