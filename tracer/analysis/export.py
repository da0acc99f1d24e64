"""The graph's file formats (JSON, GraphML, DOT), safe for any id a feed may hold.

Ids are outside values: a person id may hold quotes, backslashes, ``<``, ``&``, ``]]>``, line
separators or characters XML cannot carry at all. Each writer escapes them in its format's own
way, so an id is always one id (one node, one string) and never markup or syntax:

- JSON: orjson, plus U+0085/U+2028/U+2029 escaped (``tracer.jsonl.json_record``).
- GraphML: networkx's writer (ElementTree escapes markup); characters outside XML 1.0's
  character range (U+FFFE, U+FFFF, C0 controls) become the text ``\\uXXXX`` first, since no
  XML escape can carry them, and ``\\`` becomes ``\\\\`` so that this stays one-to-one (``xml_safe``).
- DOT: every string quoted by ``quoted``: ``\\`` and ``"`` backslashed, invisible characters as
  ``\\uXXXX``, so no id can close its string or break a line.
"""

from __future__ import annotations

import re

import networkx as nx

from tracer.analysis.network import CANDIDATE_LINK, CANDIDATE_LINK_LABEL, COLOURS
from tracer.analysis.network import to_graphml as _graphml
from tracer.analysis.network import to_json as _node_link
from tracer.jsonl import json_record

# XML 1.0's Char production, negated; and the backslash, so that the text ``\\ufffe`` and a real
# U+FFFE stay two ids.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|\\\\")


def _code(char: str) -> str:
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


def xml_safe(text: str) -> str:
    """``text`` with each character XML 1.0 cannot carry written as ``\\uXXXX`` and ``\\`` as
    ``\\\\`` (markup is left to the XML writer's own escaping): two different texts always give
    two different strings."""
    return _NOT_XML.sub(lambda match: "\\\\" if match[0] == "\\" else _code(match[0]), text)


def quoted(text: str) -> str:
    """``text`` as one double-quoted string (DOT's, and readable as JSON's or Python's): ``\\`` and
    ``"`` backslashed, every character that is not printable (line breaks, U+2028, zero-width
    marks) as ``\\uXXXX``. Two different texts always give two different strings."""
    inner = "".join(
        "\\" + char if char in '"\\' else char if char.isprintable() else _code(char) for char in text
    )
    return f'"{inner}"'


def shown(text: str) -> str:
    """An id in a text report: as it is when it is one plain word, else quoted (``quoted``), so
    that no id can break a line, pass for two ids, or hide characters."""
    plain = text.isprintable() and not any(char.isspace() or char in '"\\' for char in text)
    return text if plain and text else quoted(text)


def to_json(graph: nx.MultiDiGraph) -> bytes:
    return json_record(_node_link(graph), indent=True)


def to_graphml(graph: nx.MultiDiGraph) -> bytes:
    clean = nx.MultiDiGraph()
    clean.add_nodes_from((xml_safe(n), _xml_values(d)) for n, d in graph.nodes(data=True))
    clean.add_edges_from((xml_safe(a), xml_safe(b), _xml_values(d)) for a, b, d in graph.edges(data=True))
    return (_graphml(clean) + "\n").encode()


def to_dot(graph: nx.MultiDiGraph) -> bytes:
    lines = ["digraph contacts {", "  rankdir=LR;"]
    for node, data in sorted(graph.nodes(data=True)):
        lines.append(f"  {quoted(node)} [shape={'ellipse' if data.get('kind') == 'person' else 'box'}];")
    for a, b, data in graph.edges(data=True):
        link = data.get("kind") == CANDIDATE_LINK
        label = CANDIDATE_LINK_LABEL if link else str(data.get("level") or data.get("kind", ""))
        if data.get("service"):
            label += f" {data['service']} {data.get('date', '')}"
        colour = COLOURS.get(data.get("level"), "grey")
        lines.append(f"  {quoted(a)} -> {quoted(b)} [label={quoted(label)}, color={quoted(colour)}];")
    lines.append("}")
    return ("\n".join(lines) + "\n").encode()


def _xml_values(data: dict) -> dict:
    return {key: xml_safe(value) if isinstance(value, str) else value for key, value in data.items()}
