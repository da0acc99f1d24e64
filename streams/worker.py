"""One worker of ``tracer run --workers N``: a process with its own store, tracing its service days.

The coordinator (streams/coordinator.py) sends each worker the lines of an epoch that concern it
(the trips of its days, every case, quarantine and exposure), the residents it wrote into the
registry (its own store, which workers read as a RocksDB secondary) and the messages the other
workers sent in the epoch before; the worker applies them with the embedded runner's batches
(``_Batch``), commits its store together with its answer, and sends that answer: its dead letters
(by line number), its routed alert changes, and its messages.

A message is what secondary tracing needs from other days (docs/rules.md): for every (case, close
contact) whose close alerts changed here, the contact's earliest close exposure to the case on this
worker's days (``Engine.close_start``); the others store it (``Engine.receive``).

Crash safety: the answer is committed with the state, so a worker asked again for an epoch it has
finished answers from its store; an epoch cut by a retention purge (which commits) resumes after
the lines it had applied, with what they gave.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import traceback
import zlib
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from connectors.files import dead_letter
from graph.keys import META, WORKER, group, service_day
from graph.store import RocksStore, StoreError
from streams.embedded import COORDINATOR_DIR, _Batch, route_changes
from tracer.alerts import Alert, Change, is_case_close
from tracer.engine import Engine
from tracer.errors import StateError, TracerError
from tracer.events import Event, Exposure, Person
from tracer.intake import Intake
from tracer.progress import Progress
from tracer.settings import Settings

_META = (group(META), WORKER)
_PR_SET_PDEATHSIG = 1

WorkLine = tuple[int, bytes, bool, bool]
"""A line sent to a worker: its number in the input, its bytes, whether the reader cut it
(too long), and whether every worker gets it (``shared``: reported by one only)."""

Message = tuple[str, str, int | None]
"""(case, close contact, the contact's earliest close exposure start on the sender's days or None)."""

Resident = tuple[str, str | None]
"""(person, home subdistrict or None): a registry entry the coordinator has written."""


def owner_of_day(day: str, workers: int) -> int:
    """The worker that owns a service day (``graph.keys.service_day``): a stable hash, the same in
    every run and every Python (``hash`` of a string is not)."""
    return zlib.crc32(day.encode()) % workers


def serve(
    conn: Connection, index: int, workers: int, path: str, settings: Settings,
    view: Callable[[Alert], Alert] | None, parent: int,
) -> None:
    """A worker process's main: answer epochs until the coordinator says stop (None) or is gone."""
    _die_with(parent)
    worker = None
    try:
        worker = _Worker(index, workers, Path(path), settings, view)
        conn.send(("ready", worker.ready()))
        while (request := conn.recv()) is not None:
            conn.send(("done", worker.epoch(*request), worker.store.memory_mb()))
    except (EOFError, BrokenPipeError):
        pass  # the coordinator is gone: what was committed stays
    except BaseException as exc:  # reported, so the coordinator stops with the reason
        known = isinstance(exc, TracerError | StoreError)
        with contextlib.suppress(OSError):
            conn.send(("error", type(exc).__name__, str(exc) if known else traceback.format_exc()))
    finally:
        if worker is not None:
            worker.store.close()
            worker.registry.close()


def _die_with(parent: int) -> None:
    """Be killed with the coordinator (Linux): a SIGKILLed coordinator must not leave a worker
    holding its store's lock when the run is started again."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


class _Worker:
    def __init__(
        self, index: int, workers: int, path: Path, settings: Settings, view: Callable[[Alert], Alert] | None
    ) -> None:
        self.index, self.workers, self.view = index, workers, view
        self.store = RocksStore(path, settings.runtime.store_options())
        saved = orjson.loads(self.store.get(*_META) or b"null") or {"epoch": 0}
        if saved.setdefault("workers", workers) != workers or saved.setdefault("index", index) != index:
            raise StateError(f"{path} is worker {saved['index']} of {saved['workers']}, not {index} of {workers}")
        self.done: int = saved["epoch"]  # the last epoch applied and committed
        self.answer: bytes | None = saved["answer"].encode() if saved.get("answer") else None
        self.partial: dict[str, Any] | None = saved.get("partial")  # of the epoch after ``done``
        self.current: _Outbox | None = None
        # The registry is the coordinator's, read here as a RocksDB secondary: written once, not by
        # every worker (2.5M residents cost each worker ~20 s when every worker decoded and wrote them).
        self.registry = RocksStore(path.parent / COORDINATOR_DIR, settings.runtime.store_options(),
                                   secondary=path.parent / f"secondary-{index}")
        self.engine = Engine(self.store, settings.rules, registry=self.registry)
        self.registry_behind = False  # the coordinator wrote homes this worker has not caught up with
        self.intake = Intake(settings)
        self.batch_events = settings.runtime.batch_events
        self.secondary = settings.rules.trace_secondary
        self.store.commit_hooks.append(self._checkpoint)

    def ready(self) -> dict[str, Any]:
        return {"epoch": self.done, "partial": self.partial["epoch"] if self.partial else None,
                "alerted": self.engine.has_live_alerts()}

    def epoch(
        self, number: int, source: str, messages: list[tuple[int, list[Message]]], registry_changed: bool,
        residents: list[Resident], lines: list[WorkLine],
    ) -> bytes:
        """Apply one epoch (or answer it again) and commit; the answer, as JSON. The coordinator has
        written the epoch's residents into the registry (``registry_changed``) and sends them to the
        workers that have live alerts (``residents``), whose alerts move here."""
        if number == self.done and self.answer is not None:
            return self.answer
        if number != self.done + 1:
            raise StateError(f"worker {self.index} is at epoch {self.done} and was sent epoch {number}")
        # Homes are read only to make alerts (residents who move carry theirs): catch up with the
        # registry lazily, so that the registry block at the start of a city costs the workers nothing.
        self.registry_behind = self.registry_behind or registry_changed
        if self.registry_behind and (lines or messages):
            self.registry.catch_up()
            self.registry_behind = False
        saved = self.partial if self.partial and self.partial["epoch"] == number else None
        outbox = self.current = _Outbox(self, number, source, lines, saved)
        if not outbox.received:
            moved = [Person(*resident) for resident in residents if self.engine.has_live_alerts(resident[0])]
            outbox.changed(self.engine.apply(moved).changes)
            for sender, starts in messages:
                outbox.changed(self.engine.receive(sender, starts))
            outbox.received = True
        batch = _Batch(self.engine, outbox, self.intake)
        for position in range(outbox.done, len(lines)):
            line, data, too_long, _ = lines[position]
            batch.unread.append((line, position + 1, data, too_long))
            if len(batch.lines) + len(batch.unread) >= self.batch_events:
                batch.step()
        batch.drain()
        starts = [(case, contact, self.engine.close_start(case, contact)) for case, contact in sorted(outbox.pairs)]
        self.answer = orjson.dumps(outbox.answer(starts if self.secondary else [], self.engine.has_live_alerts()))
        self.done, self.partial, self.current = number, None, None
        self.store.commit()
        return self.answer

    def _checkpoint(self) -> None:
        """Runs inside every commit: the epoch done and its answer, or how far the current one got
        (a retention purge commits in the middle of an epoch)."""
        current = self.current
        saved = {"workers": self.workers, "index": self.index, "epoch": self.done,
                 "answer": None if current is not None or self.answer is None else self.answer.decode(),
                 "partial": current.saved() if current is not None else None}
        self.store.put(*_META, orjson.dumps(saved))


class _Outbox:
    """What one epoch gives (a ``Sink`` of ``_Batch``): dead letters, routed changes, the (case,
    contact) pairs whose close alerts changed, and the counts of the lines this worker reports."""

    def __init__(
        self, worker: _Worker, epoch: int, source: str, lines: list[WorkLine], saved: dict[str, Any] | None
    ) -> None:
        self.worker, self.epoch, self.source = worker, epoch, source
        self.shared = {line[0] for line in lines if line[3]}
        self.reports_all = not self.shared
        self.summary = Progress()
        saved = saved or {}
        self.received: bool = saved.get("received", False)  # the messages of the epoch are applied
        self.done: int = saved.get("done", 0)  # lines of the epoch applied
        self.dead_letters: list[tuple[int, str]] = [tuple(item) for item in saved.get("dead", [])]  # type: ignore[misc]
        self.records: list[tuple[str, str]] = [tuple(item) for item in saved.get("records", [])]  # type: ignore[misc]
        self.pairs: set[tuple[str, str]] = {tuple(pair) for pair in saved.get("pairs", [])}  # type: ignore[misc]
        counts = saved.get("summary", {})
        self.summary.events.update(counts.get("events", {}))
        self.summary.alerts.update(counts.get("alerts", {}))
        self.summary.dead_letters = counts.get("dead_letters", 0)
        self.summary.warnings = counts.get("warnings", 0)

    def reports(self, number: int, event: Event | None) -> bool:
        """A line every worker got is reported by one: an exposure by the owner of its day (only
        there can it meet riders, and retention refuse it), any other by worker 0."""
        if number not in self.shared:
            return True
        workers = self.worker.workers
        if type(event) is not Exposure:
            return self.worker.index == 0
        reporter = owner_of_day(service_day(event.date, event.mode, event.service), workers)
        return reporter == self.worker.index

    def dead(self, number: int, data: bytes, reason: str, **extra: str) -> None:
        self.dead_letters.append((number, dead_letter(self.source, number, data, reason, **extra).decode()))

    def changed(self, changes: list[Change]) -> None:
        self.records += [(to, record.decode()) for to, record in route_changes(changes, self.summary, self.worker.view)]
        for change in changes:
            for alert in (change.before, change.after):
                if is_case_close(alert):
                    self.pairs.add((alert["case_id"], alert["contact_person_id"]))  # type: ignore[index]

    def moved(self, number: int, end: int) -> None:
        self.done = end  # ``end``: the position in this epoch's lines after the line

    def _counts(self) -> dict[str, Any]:
        summary = self.summary
        return {"events": dict(summary.events), "alerts": {str(level): n for level, n in summary.alerts.items()},
                "dead_letters": summary.dead_letters, "warnings": summary.warnings}

    def saved(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "received": self.received, "done": self.done, "dead": self.dead_letters,
                "records": self.records, "pairs": sorted(self.pairs), "summary": self._counts()}

    def answer(self, starts: list[Message], alerted: bool) -> dict[str, Any]:
        """``alerted``: whether this worker has live alerts (else moving residents concern it not)."""
        return {"epoch": self.epoch, "dead": self.dead_letters, "records": self.records, "messages": starts,
                "summary": self._counts(), "alerted": alerted}

