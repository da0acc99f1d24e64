"""``tracer import KIND FILE...``: real feeds (registry, manifests, ...) and the nosugar feed, as events.

One sub-command per kind, each with the same options (``--out``, ``--id-key-file``, ``--config``)
and its own (connectors/importers/kinds.py); the framework in connectors/importers/base.py does the
reading, checking and writing. The report goes to standard error, the events to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from connectors.importers.holders import add_argument as add_holders_argument
from connectors.importers.identity import KEY_OPTION, KEY_VARIABLE, load_ids
from connectors.importers.kinds import KINDS
from connectors.importers.report import print_report
from tracer.errors import InputError
from tracer.settings import load_settings

_OUT_HELP = "JSON Lines output (default: stdout); written whole or not at all, never an input"


def add_import(commands: argparse._SubParsersAction) -> None:
    importer = commands.add_parser("import", help="turn a real or published feed into tracer events (docs/import.md)")
    kinds = importer.add_subparsers(dest="feed", required=True, metavar="KIND")
    nosugar = kinds.add_parser("nosugar", help="the 2020 same-trip lookup CSV -> exposure events")
    nosugar.add_argument("file", help="the feed file")
    nosugar.add_argument("--out", default="-", help=_OUT_HELP)
    nosugar.set_defaults(handler=_nosugar)
    for kind in KINDS.values():
        parser = kinds.add_parser(kind.name, help=kind.help)
        parser.add_argument("files", nargs="+", metavar="FILE", help="the feed files, read as one feed in order")
        parser.add_argument("--out", default="-", help=_OUT_HELP)
        parser.add_argument("--config", type=Path, help="TOML file overriding config/defaults.toml")
        if kind.identity:
            parser.add_argument(
                KEY_OPTION, type=Path, dest="id_key_file",
                help=f"file holding the identity key (else ${KEY_VARIABLE}); keep it: docs/import.md",
            )
        if kind.cards:
            add_holders_argument(parser)
        if kind.arguments is not None:
            kind.arguments(parser)
        parser.set_defaults(handler=_import, kind=kind)


def _import(args: argparse.Namespace) -> int:
    from connectors.importers.base import run_import

    ids = load_ids(args.id_key_file) if args.kind.identity else None
    report = run_import(args.kind, args.files, args.out, load_settings(args.config), ids, args)
    print_report(report, sys.stderr)
    if args.kind.cards and args.card_holders is None:
        print("note           no --card-holders: every card rides as a person of its own, so no case or "
              "resident is ever one of these riders (docs/import.md, \"Card holders\")", file=sys.stderr)
    return 0


def _nosugar(args: argparse.Namespace) -> int:
    """Reading fails as InputError, writing as OutputError (``output_file``): never one for the other."""
    from connectors.importers.report import Report
    from connectors.nosugar import import_nosugar, read_records
    from connectors.outfile import output_file, refuse_overwriting
    from tracer.jsonl import json_record

    refuse_overwriting(args.out, [args.file])
    report = Report()
    with output_file(args.out) as target:
        try:
            for event in import_nosugar(read_records(args.file), report):
                target.write(json_record(event))
        except OSError as exc:
            raise InputError(f"cannot read {args.file}: {exc.strerror}") from exc
    print_report(report, sys.stderr, "exposure events")
    return 0
