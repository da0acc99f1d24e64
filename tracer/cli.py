"""The ``tracer`` command: one sub-command per job (run, generate, demo, ...)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tracer.demo import add_demo
from tracer.errors import TracerError
from tracer.settings import load_settings

if TYPE_CHECKING:
    from streams.embedded import Summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracer", description="Streaming close-contact tracing.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run(commands)
    add_demo(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args))
    except TracerError as exc:
        print(f"tracer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tracer: interrupted; the next run with the same --state resumes", file=sys.stderr)
        return 130


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="trace JSON Lines events (files or - for stdin) embedded")
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="event files, read as one stream; - is stdin")
    run.add_argument("--out", required=True, type=Path, help="output folder")
    run.add_argument("--state", type=Path, help="RocksDB state folder (kept; resumes); default: a temp dir")
    run.add_argument("--config", type=Path, help="TOML file overriding config/defaults.toml")
    run.add_argument("--quiet", action="store_true", help="no progress and no summary")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.embedded import print_summary, run_embedded

    settings = load_settings(args.config)

    def progress(summary: Summary) -> None:
        print(
            f"... {summary.lines:,} lines, {summary.events_per_second:,.0f}/s, "
            f"{sum(summary.alerts.values()):,} alert changes",
            file=sys.stderr,
        )

    summary = run_embedded(args.inputs, args.out, settings, args.state, None if args.quiet else progress)
    if not args.quiet:
        print_summary(summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
