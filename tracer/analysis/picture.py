"""A picture of one case's contact graph for a report: SVG, rings by distance, levels coloured.

Hand-written SVG keeps the dependency list short (no plotting library): the layout a report
needs is simple, the case in the middle and each hop on its own ring. Every id and label is
XML-escaped (``_text``); a node's label is cut short for the picture, its full id is the node's
``<title>`` (the tooltip).
"""

from __future__ import annotations

import math
from html import escape

import networkx as nx

from tracer.analysis.export import xml_safe
from tracer.analysis.network import COLOURS
from tracer.rules import Level

_SIZE = 900
_RING = 160


def case_svg(graph: nx.MultiDiGraph, case_id: str) -> str:
    """SVG of a case subgraph (from ``case_subgraph``): the case at the centre, contacts around it."""
    centre = f"case:{case_id}"
    depth = nx.single_source_shortest_path_length(graph, centre)
    rings: dict[int, list[str]] = {}
    for node, hops in sorted(depth.items()):
        rings.setdefault(hops, []).append(node)
    where: dict[str, tuple[float, float]] = {}
    middle = _SIZE / 2
    for hops, nodes in rings.items():
        for index, node in enumerate(nodes):
            angle = 2 * math.pi * index / len(nodes)
            radius = _RING * hops * (1 if len(rings) < 4 else 3 / len(rings))
            where[node] = (middle + radius * math.cos(angle), middle + radius * math.sin(angle))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_SIZE}" height="{_SIZE}" font-family="sans-serif" '
        f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
        f'<text x="12" y="22" font-size="16">Contacts of case {_text(case_id)}</text>',
    ]
    for a, b, data in graph.edges(data=True):
        if a in where and b in where:
            (x1, y1), (x2, y2) = where[a], where[b]
            colour = COLOURS.get(data.get("level"), COLOURS[None])
            title = _text(f"{data.get('level', data.get('kind'))} {data.get('service', '')} {data.get('date', '')}")
            parts.append(
                f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
                f'stroke-width="1.5"><title>{title}</title></line>'
            )
    for node, (x, y) in where.items():
        kind = graph.nodes[node].get("kind")
        fill = "#222" if kind in ("case", "exposure") else "#fff"
        name = node.split(":", 1)[1]
        parts.append(
            f'<g><title>{_text(name)}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{fill}" stroke="#222"/>'
            f'<text x="{x + 9:.1f}" y="{y + 4:.1f}">{_text(name[:18])}</text></g>'
        )
    for row, level in enumerate(Level):
        y = _SIZE - 70 + row * 18
        parts.append(f'<line x1="12" y1="{y}" x2="40" y2="{y}" stroke="{COLOURS[level]}" stroke-width="3"/>')
        parts.append(f'<text x="46" y="{y + 4}">{level}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _text(text: str) -> str:
    """``text`` as XML character data or attribute value: markup escaped, no character XML forbids."""
    return escape(xml_safe(text))
