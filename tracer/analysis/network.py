"""The contact graph (networkx) built from the engine's state: who exposed whom, on which trip.

Nodes are ``case:<id>``, ``exposure:<id>`` and ``person:<id>``: the kind keeps a case, an exposure
and a person with equal ids apart (alerts say their source's kind). A case node links to its person.
Edges run from a source to a contact and carry the alert's explanation (level, service, seats,
rule, exposure times). A contact who is also a case's person links two cases with a
``candidate_link`` edge (they shared a trip): the chains epidemiologists chase first. A shared trip
is all it says, never that one infected the other, so nothing shown to people calls it
"transmission" (``CANDIDATE_LINK_LABEL``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from graph.keys import CASE, is_case_key, key_parts
from graph.store import Store
from tracer.analysis.queries import all_sources, live_alerts, source_rides
from tracer.rules import Level
from tracer.settings import RuleSettings

CANDIDATE_LINK = "candidate_link"  # the edge kind between two cases whose persons shared a trip
CANDIDATE_LINK_LABEL = "candidate link (shared trip)"  # how pictures and reports name it

EDGE_FIELDS = (
    "source_kind",
    "level",
    "mode",
    "service",
    "date",
    "case_carriage",
    "case_seat",
    "contact_carriage",
    "contact_seat",
    "rule",
    "exposure_start",
    "exposure_end",
)


def contact_graph(store: Store, rules: RuleSettings) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    case_persons: dict[str, list[str]] = defaultdict(list)
    for src in all_sources(store, rules):
        if src.via_person_id is not None:
            continue  # a close contact's secondary tracing: their alerts start at their person node
        if src.kind == CASE:
            graph.add_node(f"case:{src.case_id}", kind="case", traced=src.window is not None)
            graph.add_node(f"person:{src.person_id}", kind="person")
            graph.add_edge(f"case:{src.case_id}", f"person:{src.person_id}", kind="is")
            if src.window is not None:
                case_persons[str(src.person_id)].append(src.case_id)
        elif src.exposure is not None:
            graph.add_node(f"exposure:{src.case_id}", kind="exposure", source=src.exposure.source or "")
    for alert in live_alerts(store):
        kind = alert["source_kind"]
        # The alert names its source's kind: a case and an exposure with equal ids stay two nodes.
        origin = f"person:{alert['via_person_id']}" if alert["via_person_id"] else f"{kind}:{alert['case_id']}"
        contact = f"person:{alert['contact_person_id']}"
        graph.add_node(contact, kind="person")
        graph.add_node(origin, kind=graph.nodes.get(origin, {}).get("kind", "person"))
        graph.add_edge(
            origin, contact, kind="contact", case_id=alert["case_id"], **{name: alert[name] for name in EDGE_FIELDS}
        )
        for later_case in case_persons.get(alert["contact_person_id"], ()):
            if kind == CASE and alert["level"] != Level.SECONDARY and later_case != alert["case_id"]:
                graph.add_edge(
                    f"case:{alert['case_id']}",
                    f"case:{later_case}",
                    kind=CANDIDATE_LINK,
                    mode=alert["mode"],
                    service=alert["service"],
                    date=alert["date"],
                    level=alert["level"],
                )
    return graph


def case_subgraph(graph: nx.MultiDiGraph, case_id: str, depth: int = 2) -> nx.MultiDiGraph:
    """The case, its person and contacts, and what is reachable within ``depth`` hops of the case."""
    start = f"case:{case_id}"
    if start not in graph:
        raise KeyError(case_id)
    keep = {start}
    frontier = {start}
    for _ in range(depth):
        frontier = {n for node in frontier for n in graph.successors(node)} - keep
        if not frontier:
            break  # nothing new is reachable: more hops add nothing (and a huge depth must not spin)
        keep |= frontier
    return graph.subgraph(keep).copy()


@dataclass
class Cluster:
    cases: list[str]
    shared_services: list[str] = field(default_factory=list)  # service days ridden by 2+ of its cases
    links: int = 0  # candidate links (a case's person was another case's contact) inside
    first_onset: str | None = None  # the earliest symptom onset among its cases

    @property
    def size(self) -> int:
        return len(self.cases)


def clusters(store: Store, rules: RuleSettings) -> tuple[list[Cluster], list[tuple[str, int]]]:
    """Groups of cases linked by shared trips or candidate links, largest first; and the
    service days carrying the most cases."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    riders: dict[str, set[str]] = defaultdict(set)
    for day, key, _ in source_rides(store):
        if is_case_key(key):
            case_id = key_parts(key)[1]
            riders[day].add(case_id)
            find(case_id)
    for cases in riders.values():
        first, *rest = sorted(cases)
        for other in rest:
            parent[find(other)] = find(first)
    graph = contact_graph(store, rules)
    links = [(a[5:], b[5:]) for a, b, kind in graph.edges(data="kind") if kind == CANDIDATE_LINK]
    for a, b in links:
        parent[find(b)] = find(a)
    members: dict[str, list[str]] = defaultdict(list)
    for case_id in list(parent):
        members[find(case_id)].append(case_id)
    onsets = {src.case_id: src.onset for src in all_sources(store, rules) if src.onset is not None}
    found = []
    for cases in members.values():
        inside = set(cases)
        shared = sorted(day.replace("\x1f", " ") for day, riding in riders.items() if len(riding & inside) > 1)
        first = min((onsets[c] for c in cases if c in onsets), default=None)
        found.append(Cluster(sorted(cases), shared, sum(1 for a, b in links if a in inside), first))
    found.sort(key=lambda c: (-c.size, c.cases[0]))
    busiest = Counter({day.replace("\x1f", " "): len(cases) for day, cases in riders.items()})
    return found, [(day, n) for day, n in sorted(busiest.items(), key=lambda kv: (-kv[1], kv[0])) if n > 1]


def to_json(graph: nx.MultiDiGraph) -> dict[str, Any]:
    return nx.node_link_data(graph, edges="edges")


def to_graphml(graph: nx.MultiDiGraph) -> str:
    clean = nx.MultiDiGraph()
    clean.add_nodes_from((n, {k: _plain(v) for k, v in d.items()}) for n, d in graph.nodes(data=True))
    clean.add_edges_from((a, b, {k: _plain(v) for k, v in d.items()}) for a, b, d in graph.edges(data=True))
    return "\n".join(nx.generate_graphml(clean))


COLOURS = {Level.CLOSE: "#d62728", Level.SECONDARY: "#ff7f0e", Level.GENERAL: "#1f77b4", None: "#7f7f7f"}


def _plain(value: Any) -> Any:
    return "" if value is None else value
