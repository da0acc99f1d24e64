"""`tracer graph`, `tracer clusters` and `tracer lookup`: queries over a run's --state (read-only)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from connectors.outfile import STDOUT, output_file, refuse_overwriting
from graph.store import RocksStore
from streams.embedded import COORDINATOR_DIR
from tracer.analysis.export import quoted, to_dot, to_graphml, to_json
from tracer.analysis.lookup import lookup
from tracer.analysis.network import case_subgraph, clusters, contact_graph
from tracer.analysis.picture import case_svg
from tracer.errors import StateError
from tracer.jsonl import json_record
from tracer.settings import load_settings


def add_commands(commands: argparse._SubParsersAction) -> None:
    graph = commands.add_parser("graph", help="export the contact graph (or one case's part of it)")
    state_arguments(graph)
    which = graph.add_mutually_exclusive_group(required=True)
    which.add_argument("--case", help="one case's subgraph")
    which.add_argument("--all", action="store_true", help="the whole graph")
    graph.add_argument("--depth", type=_at_least(0), default=2, help="contact hops from the case (default 2)")
    graph.add_argument("--format", choices=["json", "graphml", "dot", "svg"], default="json")
    graph.add_argument("--out", type=Path, help="file to write (default: stdout)")
    graph.set_defaults(handler=_graph)

    found = commands.add_parser("clusters", help="groups of cases linked by shared trips or transmission")
    state_arguments(found)
    found.add_argument("--top", type=_at_least(1), default=20, help="how many clusters and services to list")
    found.set_defaults(handler=_clusters)

    same = commands.add_parser("lookup", help="same-trip lookup: did a case ride this service that day?")
    state_arguments(same)
    same.add_argument("--date", required=True, help="service date YYYY-MM-DD")
    same.add_argument("--service", required=True, help="flight or train number, or metro run id")
    same.add_argument("--mode", choices=["flight", "train", "metro"])
    same.add_argument("--carriage")
    same.add_argument("--seat")
    same.set_defaults(handler=_lookup)


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` up (a negative --top would slice from the end)."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} up, not {text[:40]!r}")
        return value

    return whole


def state_arguments(parser: argparse.ArgumentParser) -> None:
    """``--state`` and ``--config``, as every read-side command takes them."""
    parser.add_argument("--state", type=Path, required=True, help="the state folder of a run")
    parser.add_argument("--config", type=Path, help="TOML file overriding config/defaults.toml")


@contextlib.contextmanager
def open_state(args: argparse.Namespace) -> Iterator[RocksStore]:
    """The run's state, read-only, closed after use."""
    store = _open(args)
    try:
        yield store
    finally:
        store.close()


def _open(args: argparse.Namespace) -> RocksStore:
    if not (args.state / "CURRENT").exists():
        several = (args.state / COORDINATOR_DIR).is_dir()
        raise StateError(
            f"{args.state} is a state of `tracer run --workers` with more than one worker, which these queries "
            "do not read yet: trace with --workers 1 for them" if several else f"{args.state} holds no tracer state"
        )
    return RocksStore(args.state, read_only=True)


def _graph(args: argparse.Namespace) -> int:
    out = args.out or STDOUT
    refuse_overwriting(out, [args.state, args.config])
    rules = load_settings(args.config).rules
    store = _open(args)
    try:
        graph = contact_graph(store, rules)
    finally:
        store.close()
    if args.case is not None:
        try:
            graph = case_subgraph(graph, args.case, args.depth)
        except KeyError:
            raise StateError(f"no case {args.case!r} in {args.state}") from None
    elif args.format == "svg":
        raise StateError("--format svg draws one case: give --case")
    writers = {"json": to_json, "graphml": to_graphml, "dot": to_dot}
    data = writers[args.format](graph) if args.format in writers else case_svg(graph, args.case).encode()
    with output_file(out) as target:
        target.write(data)
    return 0


def _clusters(args: argparse.Namespace) -> int:
    rules = load_settings(args.config).rules
    store = _open(args)
    try:
        found, busiest = clusters(store, rules)
    finally:
        store.close()
    lines = [f"{len(found)} cluster(s) of {sum(c.size for c in found)} case(s), largest first"]
    for cluster in found[: args.top]:
        services = cluster.shared_services
        shared = ", ".join(map(_service_day, services[:5])) + (" ..." if len(services) > 5 else "")
        lines.append(
            f"  {cluster.size:4} cases  {cluster.links:3} links  {' '.join(map(_shown, cluster.cases[:8]))}"
            f"{' ...' if cluster.size > 8 else ''}" + (f"  shared: {shared}" if shared else "")
        )
    if busiest:
        lines.append("services carrying the most cases:")
        lines.extend(f"  {count:4} cases  {_service_day(day)}" for day, count in busiest[: args.top])
    with output_file(STDOUT) as target:
        target.write("".join(line + "\n" for line in lines).encode())
    return 0


def _shown(text: str) -> str:
    """An id in a text report: as it is when it is one plain word, else quoted (``quoted``), so
    that no id can break a line, pass for two ids, or hide characters."""
    plain = text.isprintable() and not any(char.isspace() or char in '"\\' for char in text)
    return text if plain and text else quoted(text)


def _service_day(day: str) -> str:
    """``date mode service`` as ``clusters`` gives it, the service (an outside id) shown safely."""
    date, mode, service = day.split(" ", 2)
    return f"{date} {mode} {_shown(service)}"


def _lookup(args: argparse.Namespace) -> int:
    rules = load_settings(args.config).rules
    store = _open(args)
    try:
        answers = lookup(store, rules, args.date, args.service, args.carriage, args.seat, args.mode)
    finally:
        store.close()
    with output_file(STDOUT) as target:
        target.write(b"".join(map(json_record, answers)))
    if not answers:
        print(f"no known case or published exposure on {_shown(args.service)} on {_shown(args.date)}", file=sys.stderr)
    return 0
