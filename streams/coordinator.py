"""``tracer run --workers N``: the stream partitioned by service day over N processes, one output.

The coordinator (this process) reads the inputs as the embedded runner does (``_Run``: positions,
fingerprints, the output folder) and cuts them into *epochs*, its commit units: ``commit_every``
lines counted from the last commit, ended early at the end of an input or when a live input pauses.
It routes every line with a cheap parse: a trip to the worker that owns its service day
(``owner_of_day``), a case, person, quarantine or exposure to every worker, a line it cannot route to
worker 0, which dead-letters it through ``Intake.decode`` as every runner does. Each worker
(streams/worker.py) applies its lines of the epoch, with the messages the others sent in the epoch
before, and answers; the coordinator writes the answers in a fixed order (dead letters merged by line
number, then the alert changes of worker 0, 1, ...) and commits its position, the output sizes, the
epoch number and the messages to deliver next.

Crash safety: before sending an epoch the coordinator commits where it ends (``inflight``), and a
worker commits its answer with its state before sending it. After a crash the coordinator is at
epoch j and every worker at j or j+1: the coordinator cuts epoch j+1 again where it ended, a
worker that has applied it answers from its store, and the outputs are cut back to the sizes of
epoch j as in one process. So the outputs are byte-identical to an uninterrupted run with the same
number of workers.
"""

from __future__ import annotations

import contextlib
import heapq
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import orjson

from connectors.files import Line, dead_letter, display_name
from graph.keys import EPOCH, META, group
from graph.store import StoreError
from streams.embedded import COORDINATOR_DIR, _Options, _Run
from streams.worker import Message, Resident, WorkLine, owner_of_day, serve
from tracer.engine import Engine
from tracer.errors import ConfigError, InputError, InvalidEvent, OutputError, StateError, TracerError
from tracer.events import Person, trip_service_day
from tracer.formats import FormatHint
from tracer.intake import BOM, WARNING
from tracer.settings import Settings

_EPOCH = (group(META), EPOCH)
_SHARED = frozenset(("case", "followup", "quarantine", "exposure"))
_RESIDENT = b'{"type":"person"'  # how the registry's lines begin, in every feed seen
_POLL_SECONDS = 1.0
_ERRORS = {error.__name__: error for error in (ConfigError, InputError, OutputError, StateError, StoreError)}


class WorkerError(TracerError):
    """A worker failed or died: the run stops (a resumed run goes on from the last epoch)."""


class Coordinator(_Run):
    """A ``_Run`` whose lines are applied by worker processes, an epoch at a time."""

    def __init__(
        self, inputs: Any, out_dir: Path, settings: Settings, state_dir: Path, options: _Options, workers: int
    ) -> None:
        for index in range(workers):  # first: the coordinator's folder marks a state of this many
            (state_dir / f"worker-{index}").mkdir(parents=True, exist_ok=True)
        (state_dir / COORDINATOR_DIR).mkdir(exist_ok=True)
        super().__init__(inputs, out_dir, settings, state_dir, options, store_dir=state_dir / COORDINATOR_DIR)
        self.workers = workers
        self.epoch = 0  # the last epoch written and committed
        self.pending: list[list[Message]] = [[] for _ in range(workers)]  # each worker's messages, to deliver
        self.inflight: dict[str, int] | None = None  # where the epoch after ``epoch`` ends, once sent
        self.lines: list[Line] = []
        self._hint = FormatHint(sees_first_line=False)  # what the input being read is, when not JSON Lines
        self.pool: _Pool | None = None
        self._next_progress = float("inf")
        self._started = 0.0

    def _trace(self) -> None:
        saved = orjson.loads(self.store.get(*_EPOCH) or b"null")
        if saved is not None:
            if saved["workers"] != self.workers:
                raise StateError(f"state {self.state_dir} was written by {saved['workers']} workers: "
                                 f"pass --workers {saved['workers']}, or a new --state")
            self.epoch, self.pending, self.inflight = saved["epoch"], saved["pending"], saved["inflight"]
        self.registry = Engine(self.store, self.settings.rules)  # writes the homes the workers read
        view = self.contacts_view
        with _Pool(self.workers, self.state_dir, self.settings, view) as pool:
            self.pool = pool
            self._resume(pool.ready)
            self.store.commit_hooks.append(self._checkpoint)
            self._loop_epochs()
            self.store.commit()

    def _resume(self, ready: list[dict[str, Any]]) -> None:
        """Check the workers' epochs against this one; keep the cut of an epoch some have begun."""
        begun = False
        for index, state in enumerate(ready):
            if state["epoch"] not in (self.epoch, self.epoch + 1):
                raise StateError(f"worker {index} of state {self.state_dir} is at epoch {state['epoch']}, "
                                 f"its coordinator at {self.epoch}: the state is damaged")
            begun = begun or state["epoch"] == self.epoch + 1 or state["partial"] == self.epoch + 1
        if not begun:
            self.inflight = None
        elif self.inflight is None or self.position.index != self.inflight["from"][0] or \
                self.position.offset != self.inflight["from"][1]:
            raise StateError("the last run stopped in the middle of an epoch of other inputs: resume it with "
                             "those inputs first (or use a new --state)")

    def _checkpoint(self) -> None:
        super()._checkpoint()
        saved = {"workers": self.workers, "epoch": self.epoch, "pending": self.pending, "inflight": self.inflight}
        self.store.put(*_EPOCH, orjson.dumps(saved))

    def _idle(self) -> None:
        if self.inflight is None:  # a resumed epoch ends where it ended, not where the feed pauses
            self._cut()

    def _loop_epochs(self) -> None:
        runtime = self.settings.runtime
        every = runtime.progress_every_seconds
        self._started = time.perf_counter()
        self._next_progress = self._started + every if self.progress and every > 0 else float("inf")
        if self.inflight is not None and self.inflight["end"] == self.inflight["from"]:
            self._cut()  # an epoch of messages only, begun before the crash
        for index in range(self.position.index, len(self.inputs)):
            self.reader = self._reader(index)
            self._hint = FormatHint(self.position.offset == 0, display_name(self.inputs[index]))
            for line in self.reader:
                self.lines.append(line)
                if self._ends_epoch(index, line[1]):
                    self._cut()
            if self.inflight is not None and self.inflight["end"][0] == index:
                raise StateError(f"input {self.inputs[index]} ends before the epoch this state began to apply")
            self._cut()
        while any(self.pending):
            self._cut()  # the last messages: they move secondary alerts only, and make no more
        self.summary.seconds = time.perf_counter() - self._started
        self._report_incomplete()

    def _ends_epoch(self, index: int, end: int) -> bool:
        if self.inflight is not None:
            return self.inflight["end"] == [index, end]
        return len(self.lines) >= self.settings.runtime.commit_every

    def _cut(self) -> None:
        """Send the lines read and the pending messages as one epoch; write what comes back; commit."""
        if not self.lines and not any(self.pending):
            return
        assert self.pool is not None
        position, number = self.position, self.epoch + 1
        end = self.lines[-1][1] if self.lines else position.offset
        shares, residents, dead = self._route()
        if self.inflight is None:
            self.inflight = {"from": [position.index, position.offset], "end": [position.index, end]}
        self.store.commit()  # the cut and the epoch's homes are stored before any worker applies it
        answers = self.pool.epoch(number, self.inputs[position.index], self._messages(), residents, shares)
        self.pool.alerted = [answer["alerted"] for answer in answers]
        self._write(dead, answers)
        self.pending = [answer["messages"] for answer in answers]
        self.epoch, self.inflight = number, None
        if self.lines:
            self.moved(*self.lines[-1][:2])
            self.summary.lines += len(self.lines)
            self.lines = []
        self.store.commit()
        if time.perf_counter() >= self._next_progress:
            self.summary.seconds = time.perf_counter() - self._started
            self.summary.state_memory_mb = self.store.memory_mb() + sum(self.pool.memory)
            self.progress(self.summary)  # type: ignore[misc]
            self._next_progress += self.settings.runtime.progress_every_seconds

    def _messages(self) -> list[list[tuple[int, list[Message]]]]:
        """What each worker receives: the others' messages, in worker order."""
        return [[(sender, starts) for sender, starts in enumerate(self.pending) if sender != index and starts]
                for index in range(self.workers)]

    def _route(self) -> tuple[list[list[WorkLine]], list[Resident], list[tuple[int, str]]]:
        """Each worker's lines of the epoch (see the module's docstring). Residents are the
        coordinator's: it decodes them, writes their homes into the registry its workers read, and
        gives the workers only ``(person, home)`` to move live alerts; their dead letters are its own."""
        shares: list[list[WorkLine]] = [[] for _ in range(self.workers)]
        residents: list[Person] = []
        dead: list[tuple[int, str]] = []
        workers, everyone, source = self.workers, range(self.workers), self.inputs[self.position.index]
        for number, _, data, too_long in self.lines:
            target = 0
            if not too_long and data.startswith(_RESIDENT) and self._took(source, number, data, residents, dead):
                continue  # most of a city's lines: parsed once, here
            if not too_long:
                try:
                    record = orjson.loads(data.removeprefix(BOM))  # routed as the intake reads it
                except orjson.JSONDecodeError:
                    record = None
                if type(record) is not dict and self._took(source, number, data, residents, dead):
                    continue  # no event at all: dead-lettered here, saying what the input is (tracer/formats.py)
                kind = record.get("type") if type(record) is dict else None
                if kind == "trip":
                    day = trip_service_day(record)  # type: ignore[arg-type]
                    target = owner_of_day(day, workers) if day is not None else 0
                elif kind == "person" and self._took(source, number, data, residents, dead):
                    continue
                elif kind in _SHARED:
                    for index in everyone:
                        shares[index].append((number, data, False, True))
                    continue
            shares[target].append((number, data, too_long, False))
        if residents:
            self.registry.apply(residents)
        return shares, [(person.person_id, person.subdistrict) for person in residents], dead

    def _took(
        self, source: str, number: int, data: bytes, residents: list[Person], dead: list[tuple[int, str]]
    ) -> bool:
        """Decode a person line (or a line that is no JSON object) as every runner decodes it: its
        resident into ``residents``, its dead letter (or warning) into ``dead``. False: the line is
        another event after all (it begins as a person's and names another type later), for the workers."""
        try:
            event, warning = self.intake.decode(data)
        except InvalidEvent as exc:
            reason = self._hint.reason(number, data, exc.reason)
            dead.append((number, dead_letter(source, number, data, reason).decode()))
            self.summary.dead_letters += 1
            return True
        if type(event) is not Person:
            return False
        if warning:
            dead.append((number, dead_letter(source, number, data, warning, severity=WARNING).decode()))
            self.summary.warnings += 1
        self.summary.events["person"] += 1
        residents.append(event)
        return True

    def _write(self, dead: list[tuple[int, str]], answers: list[dict[str, Any]]) -> None:
        write, summary = self.outputs.write, self.summary
        letters = heapq.merge(dead, *(answer["dead"] for answer in answers), key=lambda item: item[0])
        for _, record in letters:
            write("dead-letter", record.encode())
        for answer in answers:
            for destination, record in answer["records"]:
                write(destination, record.encode())
            counts = answer["summary"]
            summary.events.update(counts["events"])
            summary.alerts.update(counts["alerts"])
            summary.dead_letters += counts["dead_letters"]
            summary.warnings += counts["warnings"]


class _Pool:
    """The worker processes ("spawn": RocksDB and fork do not mix), one pipe each. A worker that
    fails or dies stops the run with a ``WorkerError``, never a hang."""

    def __init__(self, workers: int, state_dir: Path, settings: Settings, view: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.connections, self.processes = [], []
        self.memory = [0.0] * workers
        for index in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=serve, name=f"tracer-worker-{index}", daemon=True,
                args=(theirs, index, workers, str(state_dir / f"worker-{index}"), settings, view, os.getpid()),
            )
            self.connections.append(ours)
            self.processes.append(process)
            process.start()
            theirs.close()
        try:
            self.ready = [self._receive(index) for index in range(workers)]
            self.alerted = [state["alerted"] for state in self.ready]
        except BaseException:
            self.close(failed=True)
            raise

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, failed: type[BaseException] | None, *_: object) -> None:
        self.close(failed is not None)

    def close(self, failed: bool) -> None:
        """Stop the workers: each ends when told, once idle; after a failure they are killed (what
        they committed stays, and a resumed run goes on from it)."""
        for connection in self.connections:
            if not failed:
                with contextlib.suppress(OSError):
                    connection.send(None)
        for process in self.processes:
            if failed:
                process.kill()
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
                process.join()
        for connection in self.connections:
            connection.close()

    def epoch(
        self, number: int, source: str, messages: list[list[tuple[int, list[Message]]]], residents: list[Resident],
        shares: list[list[WorkLine]],
    ) -> list[dict[str, Any]]:
        for index, connection in enumerate(self.connections):
            moving = residents if self.alerted[index] else []  # a worker with no live alert has none to move
            try:
                connection.send((number, source, messages[index], bool(residents), moving, shares[index]))
            except OSError as exc:
                raise self._failed(index, "") from exc
        answers = []
        for index in range(len(self.connections)):
            answer, self.memory[index] = self._receive(index)
            answers.append(orjson.loads(answer))
        return answers

    def _receive(self, index: int) -> Any:
        connection, process = self.connections[index], self.processes[index]
        while not connection.poll(_POLL_SECONDS):
            if not process.is_alive():
                raise self._failed(index, "")
        try:
            kind, *payload = connection.recv()
        except (EOFError, OSError) as exc:
            raise self._failed(index, "") from exc
        if kind == "error":
            error, message = payload
            if error in _ERRORS:
                raise _ERRORS[error](message)  # as one process reports it
            raise self._failed(index, message)
        return payload[0] if len(payload) == 1 else payload

    def _failed(self, index: int, reason: str) -> WorkerError:
        process = self.processes[index]
        process.join(timeout=5)
        if reason:
            return WorkerError(f"worker {index} failed: {reason.rstrip()}")
        return WorkerError(f"worker {index} died (exit code {process.exitcode})")
