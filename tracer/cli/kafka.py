"""Sub-commands of Kafka mode for ``tracer`` (wired in tracer/cli/__init__.py): worker, views, publish,
subscribe, replay.

Each ``add_*`` registers one sub-command whose handler takes the parsed arguments and returns the
exit status; failures are ``TracerError`` subclasses, which the main CLI prints.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from tracer import privacy
from tracer.alerts import UNASSIGNED
from tracer.errors import ConfigError
from tracer.events import SUBDISTRICT_CODE

_BROKER_HELP = "broker URL, kafka://HOST:PORT[,HOST:PORT] (default: [kafka] broker of the config)"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", help=_BROKER_HELP)
    parser.add_argument("--config", type=Path, help="TOML file overriding config/defaults.toml")


def add_worker(subparsers: argparse._SubParsersAction) -> None:
    worker = subparsers.add_parser("worker", help="run one Kafka worker (start more to share the work)")
    _common(worker)
    worker.add_argument("--state", required=True, type=Path,
                        help="folder of this worker's RocksDB stores (one per partition, one for the registry; kept)")
    privacy.add_arguments(worker, "the contacts topic")
    worker.set_defaults(handler=_worker)


def add_views(subparsers: argparse._SubParsersAction) -> None:
    views = subparsers.add_parser(
        "views", help="keep the health status, call lists and KPIs of the topics; status changes to the status topic")
    _common(views)
    views.add_argument("--state", required=True, type=Path,
                       help="folder of the views' RocksDB store (kept; tracer calllist/status/kpis --state read it)")
    views.set_defaults(handler=_views)


def add_publish(subparsers: argparse._SubParsersAction) -> None:
    publish = subparsers.add_parser("publish", help="load JSON Lines events into the registry and events topics")
    _common(publish)
    publish.add_argument("inputs", nargs="+", metavar="FILE", help="event files; - is stdin")
    publish.add_argument("--quiet", action="store_true", help="no summary")
    publish.set_defaults(handler=_publish)


def add_subscribe(subparsers: argparse._SubParsersAction) -> None:
    subscribe = subparsers.add_parser("subscribe", help="print alerts of one queue, or the contacts stream")
    _common(subscribe)
    which = subscribe.add_mutually_exclusive_group(required=True)
    which.add_argument("--subdistrict", metavar="CODE",
                       help="a street office's queue: 9-digit subdistrict code, or 'unassigned'")
    which.add_argument("--contacts", action="store_true", help="the contacts stream (every alert change)")
    which.add_argument("--status", action="store_true", help="the health status changes (tracer views writes them)")
    subscribe.add_argument("--from-beginning", action="store_true", help="start at the oldest record kept")
    subscribe.add_argument("--idle-exit", type=float, metavar="SECONDS",
                           help="exit after this many seconds without a record (default: never)")
    subscribe.add_argument("--group", help="consumer group: commit and resume where the last run stopped")
    subscribe.set_defaults(handler=_subscribe)


def add_replay(subparsers: argparse._SubParsersAction) -> None:
    replay = subparsers.add_parser(
        "replay", help="trace the events topic from the beginning with the embedded engine (no group)")
    _common(replay)
    replay.add_argument("--out", required=True, type=Path, help="output folder (as `tracer run --out`)")
    replay.add_argument("--state", type=Path, help="RocksDB state folder (kept); default: a temp dir")
    replay.add_argument("--quiet", action="store_true", help="no progress and no summary")
    replay.set_defaults(handler=_replay)


# -- handlers ----------------------------------------------------------------------------------
def quiet_clients(args: argparse.Namespace) -> None:
    """The Kafka clients log every connection at INFO; keep that for ``--verbose``."""
    if not getattr(args, "verbose", False):
        for name in ("kafka", "aiokafka"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _worker(args: argparse.Namespace) -> int:
    from connectors.kafka.settings import load_all
    from streams.kafka.worker import run_worker

    quiet_clients(args)
    settings, kafka = load_all(args.config, args.broker)
    stats = run_worker(settings, kafka, args.state, privacy.from_arguments(args))
    print(f"worker stopped: {stats.line()}", file=sys.stderr)
    return 0


def _views(args: argparse.Namespace) -> int:
    from connectors.kafka.settings import load_all
    from streams.kafka.view_process import run_views

    quiet_clients(args)
    settings, kafka = load_all(args.config, args.broker)
    stats = run_views(settings, kafka, args.state)
    print(f"views stopped: {stats.line()}", file=sys.stderr)
    return 0


def _publish(args: argparse.Namespace) -> int:
    quiet_clients(args)
    from connectors.kafka.publish import publish
    from connectors.kafka.settings import load_all
    from tracer.progress import report

    settings, kafka = load_all(args.config, args.broker)
    summary = publish(args.inputs, settings, kafka)
    if not args.quiet:
        where = {"records": f"{kafka.registry_topic} (persons, once) and {kafka.events_topic} (a trip to its "
                            "day's partition; cases, exposures and quarantines to each)",
                 "dead letters": kafka.dead_letter_topic}
        report(summary, where, sys.stderr)
    return 0


def _subscribe(args: argparse.Namespace) -> int:
    quiet_clients(args)
    from connectors.kafka.settings import load_kafka_settings
    from connectors.kafka.subscribe import subscribe

    kafka = load_kafka_settings(args.config, args.broker)
    if args.contacts or args.status:
        topic = kafka.contacts_topic if args.contacts else kafka.status_topic
    elif args.subdistrict == UNASSIGNED or SUBDISTRICT_CODE.fullmatch(args.subdistrict or ""):
        topic = kafka.queue_topic(args.subdistrict)
    else:
        raise ConfigError(f"--subdistrict must be a 9-digit code or '{UNASSIGNED}', got {args.subdistrict!r}")
    if args.idle_exit is not None and not 0 <= args.idle_exit < float("inf"):  # NaN fails both: never idle
        raise ConfigError(f"--idle-exit must be a non-negative number of seconds, got {args.idle_exit}")
    try:
        subscribe(kafka, topic, sys.stdout.buffer, from_beginning=args.from_beginning, idle_exit=args.idle_exit,
                  group=args.group)
    except BrokenPipeError:  # the reader went away (`| head`): not an error; silence the final flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _replay(args: argparse.Namespace) -> int:
    quiet_clients(args)
    from connectors.files import output_names
    from connectors.kafka.replay import download_events
    from connectors.kafka.settings import load_all
    from streams.embedded import run_embedded
    from tracer.progress import report

    settings, kafka = load_all(args.config, args.broker)

    def read(count: int) -> None:
        if not args.quiet:
            print(f"... {count:,} records read from {kafka.events_topic}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="tracer-replay-") as scratch:
        events = Path(scratch) / "events.jsonl"
        download_events(kafka, events, read)
        summary = run_embedded([str(events)], args.out, settings, args.state)
    if not args.quiet:
        report(summary, {"outputs": output_names(args.out)})
    return 0
