"""`tracer serve` (the web console over a running state, docs/console.md) and `tracer users add`
(an account of its users file). The web stack is imported when a command runs, not by `tracer --help`."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from streams.console.users import ROLES  # no web stack: that is imported by the command that serves
from tracer.alerts import UNASSIGNED
from tracer.errors import ConfigError
from tracer.settings import Settings, load_settings

if TYPE_CHECKING:
    from streams.console.data import ConsoleData

log = logging.getLogger("tracer.console")
_LOCAL = ("127.0.0.1", "::1", "localhost")


def add_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="the web console over a state that tracer run --follow keeps (or, with --broker, tracer views)")
    serve.add_argument("--state", type=Path, required=True,
                       help="the --state of the running tracer run --follow (Kafka mode: of tracer views)")
    serve.add_argument("--out", type=Path, help="embedded mode: the run's --out")
    serve.add_argument("--users", type=Path, required=True, help="the users file (tracer users add)")
    serve.add_argument("--followups", type=Path,
                       help="embedded mode: the file the offices' actions are appended to, one of the run's inputs")
    serve.add_argument("--broker", help="Kafka mode: the broker URL, kafka://HOST:PORT[,HOST:PORT]; actions are "
                                        "published to the events topic")
    serve.add_argument("--replay-state", type=Path, metavar="DIR",
                       help="Kafka mode: the --state of a tracer replay, for the cases pages and the lookup")
    serve.add_argument("--config", type=Path, help="TOML file overriding config/defaults.toml (as the run's)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(handler=_serve)

    users = commands.add_parser("users", help="accounts of the web console")
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add an account; the password is asked for (or read from stdin)")
    add.add_argument("name", help="account name: 1-64 letters, digits, - or _")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--subdistrict", help=f"an office account's 9-digit code (or {UNASSIGNED!r})")
    add.add_argument("--users", type=Path, required=True, help="the users file (created if missing)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    add.add_argument("--config", type=Path, help="TOML file naming another subdistrict list")
    add.set_defaults(handler=_add_user)


def _serve(args: argparse.Namespace) -> int:
    from streams.console.app import ConsoleServer, create_app
    from streams.console.auth import session_key
    from streams.console.users import Users

    _check_mode(args)
    settings = load_settings(args.config)
    os.nice(settings.runtime.console_nice)
    users = Users(args.users)
    key = session_key(args.users)
    if args.host not in _LOCAL:
        log.warning("listening on %s: reachable from other machines; put TLS in front of it", args.host)
    with tempfile.TemporaryDirectory(prefix="tracer-console-") as scratch:  # the secondary instance's own files
        data = _data(args, settings, Path(scratch))
        try:
            ConsoleServer(create_app(data, users, settings, key), args.host, args.port).run()
        finally:
            data.close()
    return 0


def _check_mode(args: argparse.Namespace) -> None:
    """Embedded mode takes --out and --followups; Kafka mode (--broker) neither, and maybe --replay-state."""
    if args.broker is None:
        missing = [flag for flag, value in (("--out", args.out), ("--followups", args.followups)) if value is None]
        if missing or args.replay_state is not None:
            raise ConfigError("tracer serve over tracer run --follow needs --out and --followups"
                              if missing else "--replay-state is for Kafka mode (--broker)")
    elif args.out is not None or args.followups is not None:
        raise ConfigError("--out and --followups are embedded mode's: with --broker, --state is tracer views's "
                          "and actions are published to the events topic")


def _data(args: argparse.Namespace, settings: Settings, scratch: Path) -> ConsoleData:
    if args.broker is None:
        from streams.console.embedded import EmbeddedData

        return EmbeddedData(args.state, args.out, args.followups, settings, scratch)
    from connectors.kafka.settings import load_kafka_settings
    from streams.console.kafka import KafkaData
    from tracer.cli.kafka import quiet_clients

    quiet_clients(args)
    return KafkaData(args.state, settings, load_kafka_settings(args.config, args.broker), scratch, args.replay_state)


def _add_user(args: argparse.Namespace) -> int:
    from streams.console.users import NAME, OFFICE, Account, add_user, check_new_password, check_office, hash_password
    from tracer.registry import Subdistricts

    if not NAME.fullmatch(args.name):
        raise ConfigError(f"an account name is 1-64 letters, digits, - or _, not {args.name[:70]!r}")
    if (args.role == OFFICE) != (args.subdistrict is not None):
        raise ConfigError("an office account needs --subdistrict, and only an office account takes it")
    if args.subdistrict is not None:
        check_office(args.subdistrict, Subdistricts.load(load_settings(args.config)).codes)
    password = _password(args.password_stdin)
    check_new_password(password)
    add_user(args.users, Account(args.name, args.role, args.subdistrict, hash_password(password)))
    print(f"added {args.role} account {args.name} to {args.users}", file=sys.stderr)
    return 0


def _password(from_stdin: bool) -> str:
    """From stdin's first line, or asked twice at the terminal (never a command-line value)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ")
    return first
