"""`tracer calllist`, `tracer status`, `tracer kpis` and `tracer contacts`: what street offices and
epidemiologists read from a run's --state (read-only), docs/rules.md "Follow-up and health status"."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

from connectors.files import STATUS_FILE
from connectors.outfile import STDOUT, output_file
from connectors.tables import FORMATS, write_rows
from graph.keys import META, POSITION, case_key, group
from graph.store import Store
from tracer.alerts import UNASSIGNED
from tracer.analysis.queries import case_alerts, source
from tracer.cli.graph import open_state, state_arguments
from tracer.errors import InvalidEvent, StateError
from tracer.events import SUBDISTRICT_CODE, parse_time
from tracer.jsonl import json_record
from tracer.rules import Level
from tracer.settings import load_settings
from tracer.views import CALL_COLUMNS, call_list, event_time, status, tracing_kpis

_LEVELS = (Level.CLOSE, Level.SECONDARY, Level.GENERAL)
KPI_COLUMNS = ("subdistrict", "name", "alerted", "reached_2h", "reached_12h", "reached_24h",
               "median_hours_to_reach", "overdue", "quarantined", "released", "unreachable")
CONTACT_COLUMNS = ("contact_person_id", "level", "subdistrict", "mode", "service", "date", "via_person_id",
                   "contact_carriage", "contact_seat", "rule", "exposure_start", "exposure_end", "alert_id")


def add_commands(commands: argparse._SubParsersAction) -> None:
    calls = commands.add_parser("calllist", help="a street office's call list (排查名单), the next call first")
    state_arguments(calls)
    calls.add_argument("--subdistrict", required=True, help="the office's 9-digit code, or 'unassigned'")
    calls.add_argument("--include-general", action="store_true", help="general contacts too")
    calls.add_argument("--format", choices=FORMATS, default="table")
    _at(calls)
    calls.add_argument("--out", default=STDOUT, help="file to write (default: stdout; xlsx needs a file)")
    calls.set_defaults(handler=_calllist)

    health = commands.add_parser("status", help="a person's health status (red/yellow/green), or every change")
    state_arguments(health)
    which = health.add_mutually_exclusive_group(required=True)
    which.add_argument("--person", help="the person id")
    which.add_argument("--changes", action="store_true", help="the status changes so far (status.jsonl)")
    _at(health)
    health.set_defaults(handler=_status)

    progress = commands.add_parser("kpis", help="tracing progress (排查进度) per office, slowest first")
    state_arguments(progress)
    progress.add_argument("--format", choices=FORMATS[:3], default="table")
    _at(progress)
    progress.set_defaults(handler=_kpis)

    contacts = commands.add_parser("contacts", help="one case's live contacts, folded")
    state_arguments(contacts)
    contacts.add_argument("--case", required=True, help="the case id")
    contacts.add_argument("--level", choices=_LEVELS, action="append", help="only these levels (repeatable)")
    contacts.add_argument("--format", choices=FORMATS[:3], default="table")
    contacts.set_defaults(handler=_contacts)


def _at(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--at", help="ISO time with offset to evaluate at (default: the state's event time)")


def _now(args: argparse.Namespace, store: Store) -> int | None:
    if args.at is None:
        return event_time(store)
    try:
        return parse_time(args.at, "--at")
    except InvalidEvent as exc:
        raise StateError(f"{exc.reason} (expected e.g. 2020-01-23T09:00:00+08:00)") from None


def _calllist(args: argparse.Namespace) -> int:
    office = args.subdistrict
    if office != UNASSIGNED and not SUBDISTRICT_CODE.fullmatch(office):
        raise StateError(f"--subdistrict must be a 9-digit code or {UNASSIGNED!r}, not {office[:40]!r}")
    if args.format == "xlsx" and args.out == STDOUT:
        raise StateError("--format xlsx writes a file: give --out FILE")
    settings = load_settings(args.config)
    with open_state(args) as store:
        rows = call_list(store, settings, office, _now(args, store), args.include_general)
    with output_file(args.out) as target:
        target.write(write_rows(rows, CALL_COLUMNS, args.format))
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    with open_state(args) as store:
        if args.changes:
            data = _status_log(store, args.state)
        else:
            data = json_record(status(store, settings, args.person, _now(args, store)))
    with output_file(STDOUT) as target:
        target.write(data)
    return 0


def _status_log(store: Store, state: Path) -> bytes:
    """The status changes the run of ``state`` wrote, from its output folder."""
    saved = store.get(group(META), POSITION)
    if saved is None:
        raise StateError(f"{state} has no outputs yet")
    path = Path(orjson.loads(saved)["out"]) / STATUS_FILE
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StateError(f"cannot read the status changes in {path}: {exc.strerror}") from None


def _kpis(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    with open_state(args) as store:
        found = tracing_kpis(store, settings, _now(args, store))
    if args.format == "json":
        data = json_record(found, indent=True)
    else:
        data = write_rows([*found["offices"], found["city"]], KPI_COLUMNS, args.format)
    with output_file(STDOUT) as target:
        target.write(data)
    return 0


def _contacts(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    with open_state(args) as store:
        alerts = case_alerts(store, args.case)
        if not alerts and source(store, case_key(args.case), settings.rules) is None:
            raise StateError(f"no case {args.case!r} in {args.state}")
    levels = set(args.level or _LEVELS)
    rows: list[dict[str, Any]] = sorted(
        (alert for alert in alerts if alert["level"] in levels),
        key=lambda alert: (_LEVELS.index(alert["level"]), alert["contact_person_id"], alert["date"], alert["alert_id"]),
    )
    with output_file(STDOUT) as target:
        target.write(write_rows(rows, CONTACT_COLUMNS, args.format))
    return 0
