"""Routing metro journeys (connectors/importers/journeys.py, ``Network``) on any line network: a
route's legs are built during the search, a node's from its previous node's, not by walking each
route's path back. Whatever the network (loops, a station twice on a pattern, lines crossing
several times), a route's legs chain from the origin to the destination, change line at each
joint, run along their lines, and cost what the cheapest path costs."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.importers.journeys import TRANSFER_STOPS, Network
from connectors.importers.timetable import Run, Timetable

_STATIONS = st.sampled_from([f"s{n}" for n in range(8)])
_NETWORKS = st.dictionaries(st.sampled_from([f"L{n}" for n in range(4)]),
                            st.lists(st.lists(_STATIONS, min_size=2, max_size=7), min_size=1, max_size=3),
                            min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(_NETWORKS)
def test_a_route_chains_legs_of_its_lines_from_origin_to_destination_at_the_least_cost(
    lines: dict[str, list[list[str]]],
) -> None:
    runs = [Run(f"{line}-{n}", "metro", line, "2020-01-15", tuple(stations), tuple(stations),
                tuple(range(len(stations))), tuple(range(len(stations))))
            for line, patterns in lines.items() for n, stations in enumerate(patterns)]
    network = Network(Timetable(runs, {}, {}, None))  # type: ignore[arg-type]  # routing reads no zone
    stations = sorted({station for patterns in lines.values() for stops in patterns for station in stops})
    for origin in stations:
        for destination in stations:
            legs = network.route(origin, destination)
            if legs is None:
                continue
            if origin == destination:
                assert legs == ()
                continue
            assert legs and legs[0].board == origin and legs[-1].alight == destination
            for leg, after in itertools.pairwise(legs):
                assert leg.alight == after.board and leg.line != after.line  # a change of line, at one station
            assert all(leg.board != leg.alight for leg in legs)
            cost = sum(_hops(lines[leg.line], leg.board, leg.alight) for leg in legs) + TRANSFER_STOPS * (len(legs) - 1)
            tree = network._trees[origin]
            assert cost == min(tree[(line, destination)][0] for line in lines if (line, destination) in tree)


def _hops(patterns: list[list[str]], board: str, alight: str) -> int:
    """The fewest stops from ``board`` to ``alight`` along the edges of one line's patterns."""
    edges = {(here, there) for stops in patterns for here, there in itertools.pairwise(stops)}
    reached, frontier, hops = {board}, {board}, 0
    while alight not in reached:
        frontier = {there for here, there in edges if here in frontier} - reached
        assert frontier, "a leg that its line does not run"
        reached |= frontier
        hops += 1
    return hops
