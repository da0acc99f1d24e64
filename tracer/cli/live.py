"""`tracer demo --live`: the demo's city as a feed that keeps arriving, traced by `tracer run --follow`
with the web console (`tracer serve`) beside it, until Ctrl-C.

The two are child processes, started as docs/console.md starts them, each in a session of its own:
Ctrl-C reaches this process only, which then stops them with SIGTERM (each commits, or closes its
live streams, and exits 0) and waits. A terminal's Ctrl-C sent to the whole group would reach the
run twice (the demo's SIGTERM after it), and the run's second signal ends it without its commit.

The feed is the generated events in their own (event-time) order: everything before the first case
report at once (the registry, and the rides the city has had by then), the rest paced by event time
at ``--speed`` simulated seconds per real second. Paced by lines instead, nearly every case report
would come in the last few lines (reports follow the rides by a day or two), so the alerts would come
in one burst at the end. The simulated offices' follow-ups are not in the feed: the people at the
console are the offices, and their actions are the follow-ups.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TypeVar

import orjson

from streams.console.users import EPIDEMIOLOGIST, OFFICE, SUPERVISOR, Account, add_user, hash_password
from streams.embedded import committed
from tracer.errors import TracerError
from tracer.places import subdistricts
from tracer.rules import Level

T = TypeVar("T")
OFFICES = 3  # office accounts: the offices with the most contacts to call
START_SECONDS = 60.0  # for the run's first commit and the console's start
STOP_SECONDS = 30.0  # for each child to stop after SIGTERM, before it is killed
_SERVING = re.compile(r"Uvicorn running on (http://\S+)")
_TIMES = ("reported_at", "board_time", "at")  # a line's event time: a case's report, a ride's boarding


@dataclass
class Files:
    """Where a live demo keeps everything (``--out``)."""

    root: Path

    def __post_init__(self) -> None:
        self.events, self.truth = self.root / "input" / "events.jsonl", self.root / "input" / "truth.jsonl"
        self.feed, self.followups = self.root / "input" / "feed.jsonl", self.root / "input" / "followups.jsonl"
        self.out, self.state, self.users = self.root / "output", self.root / "state", self.root / "users.toml"
        self.run_log, self.serve_log = self.root / "run.log", self.root / "serve.log"

    def run_args(self) -> list[str]:
        return ["run", str(self.feed), str(self.followups), "--follow", "--out", str(self.out),
                "--state", str(self.state)]

    def serve_args(self, port: int) -> list[str]:
        return ["serve", "--state", str(self.state), "--out", str(self.out), "--users", str(self.users),
                "--followups", str(self.followups), "--port", str(port)]


def run_live(args: argparse.Namespace) -> int:
    from tracer.simulate import generate

    files = Files(args.out)
    _clear(files)
    generate(args.persons, args.days, args.cases, args.seed, files.events.parent, truth=True, followups=False)
    lines = files.events.read_bytes().splitlines(keepends=True)
    first_report = next((n for n, line in enumerate(lines) if line.startswith(b'{"type":"case"')), len(lines))
    due = _schedule(lines[first_report:])
    accounts = _accounts(files)
    files.followups.touch()
    with _children() as children, files.feed.open("ab") as feed, _stop_signals():
        try:
            children.start("tracer run", files.run_args(), files.run_log)
            feed.write(b"".join(lines[:first_report]))
            feed.flush()
            children.wait_for(lambda: committed(files.state), "the run's first commit")
            children.start("tracer serve", files.serve_args(args.port), files.serve_log)
            url = children.wait_for(lambda: _served(files.serve_log), "the console")
            _say_started(args, files, url, accounts, len(due), due[-1] / args.speed if due else 0.0)
            _pace(lines[first_report:], due, feed, args.speed, children)
            print(f"  the feed is complete ({len(lines):,} lines); the console stays up until Ctrl-C", flush=True)
            while True:
                children.check()
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
    print(f"tracer demo --live: stopped ({children.said()}); the files are in {files.root}/:")
    print(f"  input/feed.jsonl (the feed as it arrived), input/followups.jsonl (the offices' actions), output/,"
          f" state/, users.toml, run.log, serve.log\n  to go on with them: tracer {' '.join(files.run_args())}\n"
          f"  and: tracer {' '.join(files.serve_args(args.port))}")
    return 0 if children.clean() else 1


def _clear(files: Files) -> None:
    """A new city: the last demo's inputs, outputs, state and accounts go (a new session key too)."""
    for part in ("input", "output", "state"):
        shutil.rmtree(files.root / part, ignore_errors=True)
    for path in (files.users, files.users.with_name(files.users.name + ".session-key"), files.run_log,
                 files.serve_log):
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class DemoAccount:
    name: str
    password: str
    role: str
    office: str | None = None


def _accounts(files: Files) -> list[DemoAccount]:
    """An account for each of the busiest offices (the most close and secondary contacts in the
    oracle's alerts of this city), a supervisor and an epidemiologist, with passwords made now."""
    alerts = map(orjson.loads, files.truth.read_bytes().splitlines())
    calls = Counter(alert["subdistrict"] for alert in alerts
                    if alert["subdistrict"] and alert["level"] in (Level.CLOSE, Level.SECONDARY))  # not unassigned
    made = [DemoAccount(f"office{n}", secrets.token_urlsafe(12), OFFICE, code)
            for n, (code, _) in enumerate(calls.most_common(OFFICES), start=1)]
    made += [DemoAccount(role, secrets.token_urlsafe(12), role) for role in (SUPERVISOR, EPIDEMIOLOGIST)]
    for one in made:
        add_user(files.users, Account(one.name, one.role, one.office, hash_password(one.password)))
    return made


def _say_started(args: argparse.Namespace, files: Files, url: str, accounts: list[DemoAccount], paced: int,
                 seconds: float) -> None:
    names = subdistricts()
    print(f"tracer demo --live: {args.persons:,} residents, {args.days} day(s), seed {args.seed}; from the first "
          f"case report on, {paced:,} lines at {args.speed:,g}x event time "
          f"({seconds // 60:.0f} min {seconds % 60:.0f} s)")
    print(f"  console        {url}/")
    print("  accounts       (passwords made for this run and shown only here; the console listens on this "
          "machine only)")
    for one in accounts:
        place = names.get(one.office or "")
        what = {OFFICE: f"street office {one.office} {place.name if place else ''}",
                SUPERVISOR: "every office's progress", EPIDEMIOLOGIST: "cases, contacts and clusters"}[one.role]
        print(f"    {one.name:<15} {one.password}  {what}")
    if not any(one.role == OFFICE for one in accounts):
        print("  (this city has no contacts to call: try more --cases or --persons)")
    print(f"  files          {files.root}/ (Ctrl-C stops both and keeps them)", flush=True)


def _schedule(lines: list[bytes]) -> list[float]:
    """When each line is due, in event seconds after the first line's time: the latest time seen so
    far, so the schedule never runs back (a late ride, a line without a time of its own: a registry
    move, a malformed line, goes with the one before)."""
    due, first, last = [], None, 0.0
    for line in lines:
        moment = _event_seconds(line)
        if moment is not None:
            first = moment if first is None else first
            last = max(last, moment - first)
        due.append(last)
    return due


def _pace(lines: list[bytes], due: list[float], feed: IO[bytes], speed: float, children: _Children) -> None:
    """Append ``lines`` to the feed as their event time comes, at ``speed`` event seconds a second."""
    started = time.monotonic()
    for line, at in zip(lines, due, strict=True):
        wait = started + at / speed - time.monotonic()
        if wait > 0:
            feed.flush()
            children.check()
            time.sleep(wait)
        feed.write(line)
    feed.flush()


def _event_seconds(line: bytes) -> float | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    for name in _TIMES:
        value = record.get(name) if isinstance(record, dict) else None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value).timestamp()
    return None


def _served(log: Path) -> str | None:
    found = _SERVING.search(log.read_text(errors="replace")) if log.exists() else None
    return found.group(1) if found else None


class _Children:
    """The run and the console: started in sessions of their own, watched, stopped together."""

    def __init__(self) -> None:
        self.running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def start(self, name: str, args: list[str], log: Path) -> None:
        with log.open("wb") as errors:
            child = subprocess.Popen([sys.executable, "-m", "tracer.cli", *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
        self.running[name] = child, log

    def check(self) -> None:
        """A child that ended by itself ends the demo, with the end of its log."""
        for name, (child, log) in self.running.items():
            if child.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise TracerError(f"{name} stopped (exit {child.returncode}); the end of {log}:\n{tail}")

    def wait_for(self, ready: Callable[[], T | None], what: str) -> T:
        deadline = time.monotonic() + START_SECONDS
        while not (found := ready()):
            self.check()
            if time.monotonic() > deadline:
                raise TracerError(f"{what} did not come within {START_SECONDS:.0f} s")
            time.sleep(0.05)
        return found

    def stop(self) -> None:
        """SIGTERM to each, then wait; what is still running after ``STOP_SECONDS`` (or a second
        Ctrl-C) is killed: the run's last commit is safe, and the next run resumes from it."""
        for child, _ in self.running.values():
            if child.poll() is None:
                child.terminate()
        try:
            for child, _ in self.running.values():
                child.wait(STOP_SECONDS)
        finally:
            for child, _ in self.running.values():
                if child.poll() is None:
                    child.kill()
                    child.wait()

    def clean(self) -> bool:
        return all(child.returncode == 0 for child, _ in self.running.values())

    def said(self) -> str:
        return ", ".join(f"{name} exit {child.returncode}" for name, (child, _) in self.running.items())


@contextlib.contextmanager
def _children() -> Iterator[_Children]:
    children = _Children()
    try:
        yield children
    finally:
        children.stop()


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGINT and SIGTERM stop the demo as Ctrl-C does, even where it was started with SIGINT ignored
    (``tracer demo --live &`` in a script)."""
    previous = {number: signal.signal(number, signal.default_int_handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
