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
from tracer.analysis.export import shown, to_dot, to_graphml, to_json
from tracer.analysis.lookup import lookup, summary
from tracer.analysis.network import case_subgraph, clusters, contact_graph
from tracer.analysis.picture import case_svg
from tracer.analysis.public import public_answer
from tracer.analysis.question import read_question
from tracer.errors import StateError
from tracer.jsonl import json_record
from tracer.settings import load_settings


def add_commands(commands: argparse._SubParsersAction) -> None:
    graph = commands.add_parser("graph", help="export the contact graph (or one case's part of it)")
    state_arguments(graph)
    which = graph.add_mutually_exclusive_group(required=True)
    which.add_argument("--case", help="one case's subgraph")
    which.add_argument("--all", action="store_true", help="the whole graph")
    graph.add_argument("--depth", type=_at_least(0), default=2,
                       help="contact hops from the case (default 2; svg always draws contacts and secondary contacts)")
    graph.add_argument("--format", choices=["json", "graphml", "dot", "svg"], default="json")
    graph.add_argument("--out", type=Path, help="file to write (default: stdout)")
    graph.set_defaults(handler=_graph)

    found = commands.add_parser("clusters", help="groups of cases linked by shared trips or candidate links")
    state_arguments(found)
    found.add_argument("--top", type=_at_least(1), default=20, help="how many clusters and services to list")
    found.set_defaults(handler=_clusters)

    same = commands.add_parser("lookup", help="same-trip lookup: did a case ride this service that day?")
    state_arguments(same)
    same.add_argument("--date", required=True, help="service date: 2020-01-15, 2020/1/15, 20200115, 2020年1月15日")
    which = same.add_mutually_exclusive_group(required=True)
    which.add_argument("--service", help="flight or train number (mu 5101 reads as MU5101), or a metro run id")
    which.add_argument("--line", help="metro line (2, L2, 2号线), asked with --board-time instead of a run id")
    same.add_argument("--board-time", help="with --line: when you boarded, 08:05 or a window 08:00-08:20")
    same.add_argument("--alight-time", help="with --line: when you got off (default: within two hours)")
    same.add_argument("--station", help="with --line: where you boarded (人民广场, 人民广场站): leaves out the runs "
                      "that riders' records place at that station at other times")
    same.add_argument("--mode", help="flight, train or metro (default: from the service number)")
    same.add_argument("--carriage")
    same.add_argument("--seat")
    same.add_argument("--public", action="store_true",
                      help="the answer as the public sees it: one JSON object, no case or person id")
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
    if args.format == "svg" and args.case is None:
        raise StateError("--format svg draws one case: give --case")
    store = _open(args)
    try:
        graph = contact_graph(store, rules)
    finally:
        store.close()
    if args.case is not None and f"case:{args.case}" not in graph:
        raise StateError(f"no case {args.case!r} in {args.state}")
    if args.format == "svg":  # from the whole graph: the picture shows the cases this one was a contact of too
        data = case_svg(graph, args.case).encode()
    else:
        writers = {"json": to_json, "graphml": to_graphml, "dot": to_dot}
        data = writers[args.format](case_subgraph(graph, args.case, args.depth) if args.case is not None else graph)
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
            f"  {cluster.size:4} cases  {cluster.links:3} candidate links  {' '.join(map(shown, cluster.cases[:8]))}"
            f"{' ...' if cluster.size > 8 else ''}" + (f"  shared: {shared}" if shared else "")
        )
    if busiest:
        lines.append("services carrying the most cases:")
        lines.extend(f"  {count:4} cases  {_service_day(day)}" for day, count in busiest[: args.top])
    with output_file(STDOUT) as target:
        target.write("".join(line + "\n" for line in lines).encode())
    return 0


def _service_day(day: str) -> str:
    """``date mode service`` as ``clusters`` gives it, the service (an outside id) shown safely."""
    date, mode, service = day.split(" ", 2)
    return f"{date} {mode} {shown(service)}"


def _lookup(args: argparse.Namespace) -> int:
    """Staff form: one JSON line per case or exposure ride aboard (with its id), the answer's line
    on standard error when there is none; ``--public``: the public answer, one JSON object."""
    question = read_question(
        args.date, args.service, args.mode, args.carriage, args.seat, args.line, args.board_time, args.alight_time,
        args.station,
    )
    rules = load_settings(args.config).rules
    store = _open(args)
    try:
        answer = lookup(store, rules, question)
    finally:
        store.close()
    records = [public_answer(answer, rules)] if args.public else answer.rides
    with output_file(STDOUT) as target:
        target.write(b"".join(map(json_record, records)))
    if not answer.rides and not args.public:
        print(summary(answer), file=sys.stderr)
    return 0
