"""The ``tracer`` command: one sub-command per job (run, generate, demo, ...)."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from graph.store import StoreError
from tracer import privacy
from tracer.cli.console import add_commands as add_console_commands
from tracer.cli.demo import add_demo
from tracer.cli.graph import add_commands as add_graph_commands
from tracer.cli.importing import add_import
from tracer.cli.kafka import add_publish, add_replay, add_subscribe, add_views, add_worker
from tracer.cli.views import add_commands as add_view_commands
from tracer.errors import TracerError
from tracer.settings import load_settings

if TYPE_CHECKING:
    from tracer.progress import Progress


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracer", description="Streaming close-contact tracing.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run(commands)
    add_demo(commands)
    _add_generate(commands)
    add_import(commands)
    _add_registry(commands)
    add_graph_commands(commands)
    add_view_commands(commands)
    add_console_commands(commands)
    for add in (add_worker, add_views, add_publish, add_subscribe, add_replay):
        add(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # here, not at exit: a reader gone (``| head``) shows inside the try
        return code
    except BrokenPipeError:
        return _reader_gone()
    except (TracerError, StoreError) as exc:
        print(f"tracer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tracer: interrupted; the next run with the same --state resumes", file=sys.stderr)
        return 130


def _reader_gone() -> int:
    """Standard output's reader has gone (``tracer run ... | head -1``): end quietly, with the status of
    a filter killed by SIGPIPE (128 + 13), so that ``set -o pipefail`` sees the output was cut short.
    What is still buffered goes to /dev/null, or the interpreter's flush at exit would complain."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)
    return 128 + signal.SIGPIPE


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="trace JSON Lines events (files or - for stdin) embedded")
    run.add_argument("inputs", nargs="+", metavar="INPUT",
                     help="event files, read as one stream in order (with --follow: all at once); - is stdin")
    run.add_argument("--out", required=True, type=Path, help="output folder")
    run.add_argument("--state", type=Path, help="RocksDB state folder (kept; resumes); default: a temp dir")
    run.add_argument("--config", type=Path, help="TOML file overriding config/defaults.toml")
    run.add_argument("--quiet", action="store_true", help="no progress and no summary")
    run.add_argument(
        "--new-inputs",
        action="store_true",
        help="read the inputs from their start as new input continuing --state, whatever it read before "
        "(after an input was replaced; without it a changed input is refused)",
    )
    run.add_argument(
        "--workers", type=_positive, metavar="N",
        help="processes that share the service days (default: the number that wrote --state, else 1: "
        "not faster yet, see docs/architecture.md); a --state is resumed only with the number that wrote it",
    )
    run.add_argument(
        "--follow", action="store_true",
        help="keep reading every INPUT as it grows (a live feed, the follow-up file a console appends to), "
        "all at once, each line applied and written out within about a second of its arrival; an INPUT that does "
        "not exist yet is read from when it appears, a last line waits for its newline, and a file truncated "
        "or replaced is an error. Ctrl-C or SIGTERM commits what was read and stops (exit 0); the next run "
        "with the same --state and --follow goes on from there. The order of lines across files, and so the "
        "change stream (not the folded alerts), depends on when they arrive. Files only, one worker; see "
        "docs/architecture.md",
    )
    run.add_argument(
        "--max-dead-letter-share", type=_share, metavar="F",
        help="after the run, exit with status 3 (the outputs written and committed) when more than this share "
        "(0-1) of the lines read were rejected to the dead letters (warnings not counted): a pipeline's check "
        "that a feed was not mostly refused; default: off",
    )
    privacy.add_arguments(run, "contacts.jsonl")
    run.set_defaults(handler=_run)


TOO_MANY_DEAD_LETTERS = 3  # tracer run's status when --max-dead-letter-share is exceeded (2: an error)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1 (e.g. 0.05), not {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return value


def _run(args: argparse.Namespace) -> int:
    from connectors.files import output_names
    from streams.embedded import run_embedded
    from tracer.progress import report

    settings = load_settings(args.config)
    _long_run_gc()

    def progress(summary: Progress) -> None:
        print(
            f"... {summary.lines:,} lines, {summary.lines_per_second:,.0f}/s, "
            f"{sum(summary.alerts.values()):,} alert changes, RocksDB memory {summary.state_memory_mb:,.0f} MB",
            file=sys.stderr,
        )

    pseudonyms = privacy.from_arguments(args)
    view = pseudonyms.alert if pseudonyms else None
    with _stop_signals() if args.follow else contextlib.nullcontext() as stop:
        summary = run_embedded(
            args.inputs, args.out, settings, args.state, None if args.quiet else progress, view, args.new_inputs,
            args.workers, stop,
        )
    if not args.quiet:
        report(summary, {"outputs": output_names(args.out)})
    limit = args.max_dead_letter_share
    if limit is not None and summary.dead_letters > limit * summary.lines:
        dead, lines = summary.dead_letters, summary.lines
        print(
            f"tracer: {dead:,} of {lines:,} lines read ({dead / lines:.1%}) went to the dead letters, more than "
            f"--max-dead-letter-share {limit:g}: see {args.out / 'dead-letter.jsonl'}",
            file=sys.stderr,
        )
        return TOO_MANY_DEAD_LETTERS
    return 0


def _long_run_gc() -> None:
    """A run allocates millions of short-lived tuples and hardly a cycle: Python's collector then
    runs often and rescans everything start-up made. Collect a tenth as often, and never rescan
    what exists now (10 % of a trip stream's CPU, benchmarks/README.md, "Plain lines")."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


@contextlib.contextmanager
def _stop_signals() -> Iterator[Callable[[], bool]]:
    """Whether SIGINT or SIGTERM has asked a followed run to stop: it then commits what it read and
    ends with 0. A second signal acts as it would have (KeyboardInterrupt, exit 130; or the end of
    the process): what the last commit holds is safe, and the next run resumes from it."""
    asked: list[int] = []
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def ask(number: int, _frame: object) -> None:
        asked.append(number)
        for again, handler in previous.items():
            signal.signal(again, handler)

    for number in previous:
        signal.signal(number, ask)
    try:
        yield lambda: bool(asked)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _add_registry(commands: argparse._SubParsersAction) -> None:
    registry = commands.add_parser("registry", help="the residents' registry of a state")
    actions = registry.add_subparsers(dest="action", required=True)
    load = actions.add_parser("load", help="bulk-load person events into a state before its first run")
    load.add_argument("inputs", nargs="+", metavar="INPUT", help="JSON Lines files of person events")
    load.add_argument("--state", required=True, type=Path, help="RocksDB state folder (created if missing)")
    load.add_argument("--dead-letters", default="registry-dead-letter.jsonl",
                      help="where lines that are not valid residents go (default: %(default)s)")
    load.add_argument("--config", type=Path, help="TOML file overriding config/defaults.toml")
    load.add_argument("--workers", type=_positive, metavar="N",
                      help="for a new state: the workers of the runs to come (`tracer run --workers`; default: "
                      "1); an existing state is loaded as it was written")
    load.add_argument("--quiet", action="store_true", help="no summary")
    load.set_defaults(handler=_registry_load)


def _registry_load(args: argparse.Namespace) -> int:
    from connectors.outfile import refuse_overwriting
    from streams.registry import load_registry
    from tracer.progress import report

    refuse_overwriting(args.dead_letters, [*args.inputs, args.state])
    _long_run_gc()
    summary = load_registry(args.inputs, args.state, load_settings(args.config), args.dead_letters, args.workers)
    if not args.quiet:
        report(summary, {"dead letters": args.dead_letters, "outputs": f"homes in {args.state}"})
    return 0


def _add_generate(commands: argparse._SubParsersAction) -> None:
    from tracer.simulate import add_generate_arguments, run_generate

    generate = commands.add_parser("generate", help="simulate a city: events.jsonl and the oracle's truth.jsonl")
    add_generate_arguments(generate)
    generate.set_defaults(handler=run_generate)
