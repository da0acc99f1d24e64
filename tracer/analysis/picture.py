"""The chain picture of one case (SVG), readable for a case with hundreds of contacts.

One node per case, one per trip (service day) on which it exposed anyone or shared a ride with
another case, and one node per (trip, level) that counts the contacts made on it: close, general,
and the secondary contacts of the close contacts made on that trip (each close contact under the
trip of their earliest close exposure to the case, where their exposure period starts,
docs/rules.md). Other cases whose person rode with this one are nodes too, joined to the trip as a
"candidate link (shared trip)": riding together is all it shows, never who infected whom. So the
node count grows with the case's trips, never with its contacts (at most ``LINKS_SHOWN`` linked
cases a trip, the rest counted on one node).

Drill-down is the console's: each count node carries ``data-case``, ``data-date``, ``data-mode``,
``data-service`` and ``data-level``, and ``counted`` picks the alerts behind it out of the case's
folded contact list (`tracer contacts`). The
layout is three columns (the case, its trips, each trip's counts then its linked cases), one node a
row, every label cut to its column's width (by display width: a CJK character takes two), so no
label overlaps another; the full text is the node's ``<title>``. Edges are elbows in the gaps
between columns, so none crosses a node. Hand-written SVG, self-contained (no script, no font, no
link): every id and label is XML-escaped (``_label``, ``_text``).
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from typing import Any

import networkx as nx

from tracer.analysis.export import xml_safe
from tracer.analysis.network import CANDIDATE_LINK, CANDIDATE_LINK_LABEL, COLOURS
from tracer.rules import Level

LINKS_SHOWN = 6  # linked cases drawn per trip; more are counted on one node
_ROW, _BOX, _TOP, _GAP = 40, 30, 110, 14  # row pitch, node height, first row's y, space between trips
_CHAR = 7.5  # width of a narrow character at 12 px, a little over sans-serif's widest average
# (x, width) of each column: the case, its trips, and each trip's counts then its linked cases.
_CASE, _TRIP, _NODE = (16, 170), (216, 250), (496, 290)
_WIDTH = _NODE[0] + _NODE[1] + 16

Trip = tuple[str, str, str]  # (date, mode, service)


@dataclass
class _TripFacts:
    first: str = "~"  # the earliest exposure start on it ("~" sorts after any time)
    place: str = ""  # the case's carriage and seat on it
    contacts: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # level -> persons
    vias: set[str] = field(default_factory=set)  # close contacts whose secondary contacts count here
    links: dict[str, tuple[str, str]] = field(default_factory=dict)  # linked case -> (direction, level)

    def link(self, case: str, direction: str, level: str) -> None:
        """``direction``: ``contact`` (the case's person was this case's contact), ``source`` (the
        other way), ``both`` (each rode in the other's window)."""
        known = self.links.get(case)
        self.links[case] = (direction if known is None or known[0] == direction else "both", level)


def case_svg(graph: nx.MultiDiGraph, case_id: str) -> str:
    """SVG of ``case_id``'s chain from the contact graph (``contact_graph``, whole or a subgraph
    holding the case's edges): the case, its trips, counts by trip and level, linked cases."""
    trips = _facts(graph, f"case:{case_id}", case_id)
    persons = {level: set().union(*(t.contacts[level] for t in trips.values())) for level in Level}
    linked = {case for t in trips.values() for case in t.links}
    parts: list[str] = []
    y = _TOP
    for trip, facts in sorted(trips.items(), key=lambda item: (item[0][0], item[1].first, item[0][1:])):
        y = _trip_rows(parts, case_id, trip, facts, y)
    height = max(y, _TOP + _ROW) + 80
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="16" y="26" font-size="16">{_label(f"Case {case_id}", 100)}</text>',
        f'<text x="16" y="46">{len(persons[Level.CLOSE])} close and {len(persons[Level.GENERAL])} general contacts '
        f"on {len(trips)} trip(s), {len(persons[Level.SECONDARY])} secondary</text>",
        f'<text x="16" y="62">{len(linked)} other case(s) by {CANDIDATE_LINK_LABEL}</text>',
        *(
            f'<text x="{x}" y="{_TOP - 16}" font-weight="bold">{name}</text>'
            for x, name in ((_CASE[0], "case"), (_TRIP[0], "trips"), (_NODE[0], "contacts by level; other cases"))
        ),
        _node(_CASE, _TOP, [f"case {case_id}"], f"case {case_id}", "#222", "white", 'class="case"',
              {"case": case_id}),
    ]
    foot = [
        f'<text x="16" y="{height - 56}">Counts are distinct persons; secondary contacts count under the trip '
        "where their close contact met the case.</text>",
        f'<text x="16" y="{height - 40}">A candidate link is a shared trip, not a finding of who infected whom.</text>',
        *(
            f'<rect x="{16 + 150 * index}" y="{height - 26}" width="14" height="14" fill="{COLOURS[level]}"/>'
            f'<text x="{36 + 150 * index}" y="{height - 14}">{level}</text>'
            for index, level in enumerate(Level)
        ),
        "</svg>",
    ]
    return "\n".join(head + parts + foot) + "\n"


def _facts(graph: nx.MultiDiGraph, centre: str, case_id: str) -> dict[Trip, _TripFacts]:
    """What the picture shows of each trip, read from the edges at the case and at its close contacts."""
    if centre not in graph:
        raise KeyError(case_id)
    trips: dict[Trip, _TripFacts] = defaultdict(_TripFacts)
    direct: list[tuple[str, dict[str, Any]]] = []
    for _, contact, data in graph.out_edges(centre, data=True):
        if data.get("kind") == CANDIDATE_LINK:
            trips[_trip(data)].link(contact[5:], "contact", data["level"])
        elif data.get("kind") == "contact":
            facts = trips[_trip(data)]
            facts.contacts[data["level"]].add(contact)
            facts.first = min(facts.first, data["exposure_start"] or "~")
            facts.place = facts.place or _place(data["case_carriage"], data["case_seat"])
            direct.append((contact, data))
    for origin, _, data in graph.in_edges(centre, data=True):
        if data.get("kind") == CANDIDATE_LINK:
            trips[_trip(data)].link(origin[5:], "source", data["level"])
    for via, trip in first_close_trips(direct).items():
        for _, contact, data in graph.out_edges(via, data=True):
            if data.get("level") == Level.SECONDARY and data.get("case_id") == case_id:
                trips[trip].contacts[Level.SECONDARY].add(contact)
                trips[trip].vias.add(via)
    return trips


def first_close_trips(direct: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Trip]:
    """Each close contact's trip of their earliest close exposure to the case, where their exposure
    period starts: the trip their secondary contacts count under. ``direct``: (contact, alert) for
    each of the case's own alerts."""
    earliest: dict[str, tuple[str, Trip]] = {}
    for contact, alert in direct:
        if alert["level"] == Level.CLOSE:
            trip = _trip(alert)
            earliest[contact] = min(earliest.get(contact, ("~", trip)), (alert["exposure_start"] or "~", trip))
    return {contact: trip for contact, (_, trip) in earliest.items()}


def counted(alerts: list[dict[str, Any]], trip: Trip, level: str) -> list[dict[str, Any]]:
    """The alerts behind the count node of ``trip`` and ``level`` (the drill-down), out of a case's
    alerts (``queries.case_alerts``: its own and its close contacts'): its own of that level on that
    trip; for ``secondary``, those of the close contacts the picture counts under that trip."""
    own = [alert for alert in alerts if not alert["via_person_id"]]
    if level != Level.SECONDARY:
        return [alert for alert in own if alert["level"] == level and _trip(alert) == trip]
    firsts = first_close_trips((alert["contact_person_id"], alert) for alert in own)
    vias = {via for via, first in firsts.items() if first == trip}
    return [alert for alert in alerts if alert["level"] == Level.SECONDARY and alert["via_person_id"] in vias]


def _trip_rows(parts: list[str], case_id: str, trip: Trip, facts: _TripFacts, y: int) -> int:
    """Draw one trip's block from ``y``: its node, then beside it its count nodes and its linked
    cases, one a row; the next block's y."""
    date, mode, service = trip
    where = {"case": case_id, "date": date, "mode": mode, "service": service}
    title = f"{mode} {service} on {date}" + (f", the case in {facts.place}" if facts.place else "")
    parts.append(_edge(_CASE, _TOP, _TRIP, y, "#999"))
    parts.append(_node(_TRIP, y, [f"{date} {mode}", f"{service} {facts.place}"], title, "#f2f2f2", "#222",
                       'class="trip"', where))
    rows = 0
    for level in Level:
        count = len(facts.contacts[level])
        if count:
            via = f" (via {len(facts.vias)} close)" if level == Level.SECONDARY else ""
            title = f"{count} {level} contact(s){via} on {mode} {service} on {date}: click for the list"
            parts.append(_edge(_TRIP, y, _NODE, y + rows * _ROW, COLOURS[level]))
            parts.append(_node(_NODE, y + rows * _ROW, [f"{level} {count}{via}"], title, COLOURS[level], "white",
                               f'class="aggregate" data-count="{count}"', {**where, "level": level}))
            rows += 1
    links = sorted(facts.links.items())
    shown = links if len(links) <= LINKS_SHOWN else links[: LINKS_SHOWN - 1]
    for case, (direction, level) in shown:
        how = {"contact": f"a {level} contact of this case", "source": f"this case was its {level} contact",
               "both": "each a contact of the other"}[direction]
        title = f"case {case}, {how}: {CANDIDATE_LINK_LABEL} on {mode} {service} on {date}"
        parts.append(_edge(_TRIP, y, _NODE, y + rows * _ROW, "#222", dashed=True))
        parts.append(_node(_NODE, y + rows * _ROW, [f"case {case}", CANDIDATE_LINK_LABEL], title, "white", "#222",
                           f'class="link" data-direction="{direction}"', {**where, "case": case, "level": level}))
        rows += 1
    if len(links) > len(shown):
        rest = len(links) - len(shown)
        parts.append(_edge(_TRIP, y, _NODE, y + rows * _ROW, "#222", dashed=True))
        parts.append(_node(_NODE, y + rows * _ROW, [f"{rest} more case(s)", CANDIDATE_LINK_LABEL],
                           f"{rest} more case(s) by {CANDIDATE_LINK_LABEL}", "white", "#222",
                           f'class="link-more" data-count="{rest}"', where))
        rows += 1
    return y + max(rows, 1) * _ROW + _GAP


def _node(column: tuple[int, int], y: int, lines: list[str], title: str, fill: str, ink: str, extra: str,
          data: dict[str, str]) -> str:
    """A box with one or two lines of text cut to its width, the full text as its tooltip."""
    x, width = column
    attributes = " ".join(f'data-{name}="{_text(value)}"' for name, value in data.items())
    texts = "".join(
        f'<text x="{x + 6}" y="{y + (13 if len(lines) > 1 else 19) + 13 * index}" fill="{ink}" '
        f'font-size="{12 - index}">{_label(line, (width - 12) / _CHAR)}</text>'
        for index, line in enumerate(lines)
    )
    return (
        f'<g {extra} {attributes}><title>{_text(title)}</title>'
        f'<rect x="{x}" y="{y}" width="{width}" height="{_BOX}" rx="4" fill="{fill}" stroke="#222"/>{texts}</g>'
    )


def _edge(start: tuple[int, int], y1: int, end: tuple[int, int], y2: int, colour: str, dashed: bool = False) -> str:
    """An elbow from a node's right side to another's left, its upright in the gap between their
    columns (links' a little left of the others'), so that edges never cross a node."""
    x1, x2, middle1, middle2 = start[0] + start[1], end[0], y1 + _BOX // 2, y2 + _BOX // 2
    upright = x2 - (20 if dashed else 10)
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return (
        f'<polyline points="{x1},{middle1} {upright},{middle1} {upright},{middle2} {x2},{middle2}" fill="none" '
        f'stroke="{colour}" stroke-width="1.5"{dash}/>'
    )


def _trip(data: dict[str, Any]) -> Trip:
    return data["date"], data["mode"], data["service"]


def _place(carriage: str | None, seat: str | None) -> str:
    return " ".join(([f"carriage {carriage}"] if carriage else []) + ([f"seat {seat}"] if seat else []))


def _label(text: str, room: float) -> str:
    """``text`` made XML-safe, cut to ``room`` narrow characters (a wide one counts two; … marks a
    cut), then escaped: what is measured is what is shown."""
    safe = xml_safe(text)
    widths = [2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in safe]
    if sum(widths) <= room:
        return escape(safe)
    used, kept = 0, []
    for char, width in zip(safe, widths, strict=True):
        if used + width > room - 1:
            break
        kept.append(char)
        used += width
    return escape("".join(kept) + "…")


def _text(text: str) -> str:
    """``text`` as XML character data or attribute value: markup escaped, no character XML forbids."""
    return escape(xml_safe(text))
