"""The follow-up writer of embedded mode: an office's action, appended to the file ``tracer run
--follow`` reads; and what both modes' writers share (the check, the identity, the wait for it to be
applied).

An action is one ``followup`` line, checked by the runner's own intake (so it is never a dead
letter), written with one ``write`` on a file opened for appending, then fsynced before the office
is told it is recorded. The runner holds back a last line without its newline, so it never reads
half of one.

Identical follow-ups are one in the engine (docs/rules.md); the writer also refuses to append a
follow-up identical to one the file already holds (the same person, outcome, time, ``by`` and note,
as the engine reads them): a double click, or the same form sent twice, makes one line. What the
file holds is read again at start, so that holds across a restart of the console or of the run.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson

from graph.store import Store
from tracer.errors import ConfigError, InvalidEvent
from tracer.events import Followup
from tracer.intake import Intake
from tracer.views import has_followup

_MODE = 0o640  # the run reads it; notes are about residents
_MAX_WAITING = 10_000  # follow-ups waiting to be applied that are watched for; the oldest is dropped


class FollowupLog:
    def __init__(self, path: Path, intake: Intake) -> None:
        self.path, self.intake = path, intake
        self._lock = threading.Lock()
        self._held: set[bytes] = set()
        if not path.parent.is_dir():
            raise ConfigError(f"{path.parent} is not a folder: the follow-up file is created there on the first action")
        if os.path.lexists(path):
            self._read()

    def _read(self) -> None:
        """The digests of the follow-ups already in the file; its last line must be complete."""
        line = b"\n"
        try:
            with self.path.open("rb") as source:
                for line in source:
                    try:
                        event = self.intake.decode(line.rstrip(b"\r\n")).event
                    except InvalidEvent:
                        continue  # the run dead-letters it; it is no follow-up to compare with
                    if type(event) is Followup:
                        self._held.add(digest(event))
        except OSError as exc:
            raise ConfigError(f"cannot read {self.path}: {exc.strerror}") from None
        if not line.endswith(b"\n"):
            raise ConfigError(f"{self.path} ends in the middle of a line: an action appended now would join it")

    def append(self, record: dict[str, Any]) -> Followup | None:
        """Append ``record`` (a followup event) and return it as the engine reads it, or None when an
        identical one is in the file already. InvalidEvent with the runner's reason if it is not one."""
        line, event = checked(record, self.intake)
        identity = digest(event)
        with self._lock:
            if identity in self._held:
                return None
            self._write(line + b"\n")
            self._held.add(identity)
        return event

    def _write(self, line: bytes) -> None:
        new = not os.path.lexists(self.path)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, _MODE)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{self.path} is not a regular file")
            if os.write(fd, line) != len(line):
                raise OSError(f"a short write to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:  # the file's name, durable too
            folder = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)


def checked(record: dict[str, Any], intake: Intake) -> tuple[bytes, Followup]:
    """``record`` as one JSON line and as the runner's intake reads it; InvalidEvent with the
    runner's reason when it would refuse it, or when it is not a followup."""
    line = orjson.dumps(record)
    event = intake.decode(line).event
    if type(event) is not Followup:
        raise InvalidEvent("not a followup event")
    return line, event


def digest(event: Followup) -> bytes:
    """A follow-up's identity as the engine reads it: identical ones are one (docs/rules.md)."""
    return hashlib.sha256(orjson.dumps([event.person_id, event.outcome, event.at, event.by, event.note])).digest()


class Waiting:
    """The follow-ups written and not yet applied, each with the office that wrote it: when the
    views hold one, its office's page is told (an applied follow-up may change no output)."""

    def __init__(self) -> None:
        self._events: OrderedDict[Followup, str] = OrderedDict()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._events)

    def add(self, event: Followup, office: str) -> None:
        with self._lock:
            self._events[event] = office
            while len(self._events) > _MAX_WAITING:
                self._events.popitem(last=False)

    def applied(self, store: Store) -> set[str]:
        """The offices whose follow-ups ``store`` now holds; they wait no more."""
        with self._lock:
            done = [event for event in self._events if has_followup(store, event)]
            return {self._events.pop(event) for event in done}
