"""The embedded runner: files or stdin in, RocksDB state, files out; no broker.

Crash safety comes from one rule: the input position, the output file sizes and the engine
state are written in the same RocksDB batch. A restart cuts the outputs back to the sizes of
the last batch and reads the inputs from its position, so it writes exactly what was lost.

That is only right for the same inputs and the same outputs, so both are checked: the batch holds
a fingerprint (length and hash) of what was consumed of each input, which a resumed input must
match, and the output folder names the state that owns it.
"""

from __future__ import annotations

import functools
import logging
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from connectors.files import (
    STDIN,
    Fingerprint,
    Line,
    LineReader,
    OutputFiles,
    check_whole,
    dead_letter,
    display_name,
)
from graph.keys import META, POSITION, STATE_ID, group
from graph.store import RocksStore, StoreError
from tracer.alerts import Alert, Change, record_of, route
from tracer.engine import Engine
from tracer.errors import ConfigError, OutputError, StateError
from tracer.events import Case, Event, Exposure, Followup, Person, Trip
from tracer.formats import FormatHint
from tracer.intake import WARNING, Intake
from tracer.progress import Progress
from tracer.settings import Settings
from tracer.views import VIEWED_EVENTS, Views

log = logging.getLogger(__name__)
_POSITION = (group(META), POSITION)
_STATE_ID = (group(META), STATE_ID)
_KINDS = {kind: kind.__name__.lower() for kind in (Trip, Case, Person, Followup, Exposure)}


@dataclass
class _Position:
    index: int = 0  # which input
    offset: int = 0  # bytes of it consumed
    line: int = 0  # lines of it consumed
    done: list[Fingerprint] = field(default_factory=list)  # of each input before ``index``
    expected: Fingerprint | None = None  # of the first ``offset`` bytes of this one, when resuming


def run_embedded(
    inputs: Sequence[str],
    out_dir: str | Path,
    settings: Settings,
    state_dir: str | Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    contacts_view: Callable[[Alert], Alert] | None = None,
    new_inputs: bool = False,
    workers: int | None = 1,
    follow: Callable[[], bool] | None = None,
) -> Progress:
    """Trace ``inputs`` (read as one stream, in order) into ``out_dir``; resume from ``state_dir``.

    ``progress`` is called now and then with the summary so far; ``contacts_view`` rewrites the
    records of the contacts stream (pseudonymisation). ``new_inputs`` reads the inputs from their
    start as new input continuing the state, whatever it read before (after an input was replaced).
    ``workers`` > 1 partitions the stream by service day over that many processes
    (streams/coordinator.py); a state is resumed only with the number of workers that wrote it.
    None: that number, or 1 for a new state. ``follow`` reads every input as it grows, all at once,
    until it returns True (streams/follow.py).
    """
    options = _Options(progress, contacts_view, new_inputs, persistent=state_dir is not None)
    if workers is None:
        workers = (workers_of(Path(state_dir)) if state_dir is not None else None) or 1
    run: Callable[..., _Run] = _Run
    if follow is not None:
        if workers > 1:
            raise ConfigError("--follow runs one worker: pass --workers 1 (a state of several workers cannot follow)")
        from streams.follow import Follower  # imported here: a Follower is a _Run

        run = functools.partial(Follower, stop=follow)
    elif workers > 1:
        from streams.coordinator import Coordinator  # imported here: a Coordinator is a _Run

        log.warning("with %d workers, health status and call lists are not kept (status.jsonl stays empty): "
                    "docs/architecture.md, \"Views\"", workers)

        run = functools.partial(Coordinator, workers=workers)
    if state_dir is not None:
        check_layout(Path(state_dir), workers)
        return run(inputs, Path(out_dir), settings, Path(state_dir), options).run()
    with tempfile.TemporaryDirectory(prefix="tracer-state-", ignore_cleanup_errors=True) as scratch:
        return run(inputs, Path(out_dir), settings, Path(scratch), options).run()


COORDINATOR_DIR = "coordinator"  # a state of several workers: this folder and worker-0, worker-1, ...


def workers_of(state: Path) -> int | None:
    """How many workers wrote ``state`` (None: no state yet). A coordinator makes its workers'
    folders before its own, which marks the state as one of several workers."""
    if (state / COORDINATOR_DIR).is_dir():
        return len(list(state.glob("worker-*")))
    return 1 if (state / "CURRENT").exists() else None


def committed(state: Path) -> bool:
    """Whether a one-worker run has committed ``state`` at least once (read beside the run that holds
    it): before that, a reader of the state (the console) has no outputs to go by."""
    if workers_of(state) != 1:
        return False
    try:
        store = RocksStore(state, read_only=True)
    except StoreError:
        return False  # being created
    try:
        return store.get(*_POSITION) is not None
    finally:
        store.close()


def check_layout(state: Path, workers: int) -> None:
    """Refuse a state written by another number of workers (its service days are spread otherwise)."""
    written = workers_of(state)
    if written is not None and written != workers:
        several = "one worker" if written == 1 else f"{written} workers"
        raise StateError(f"state {state} was written by {several}: pass --workers {written}, or a new --state")


@dataclass(frozen=True)
class _Options:
    progress: Callable[[Progress], None] | None
    contacts_view: Callable[[Alert], Alert] | None
    new_inputs: bool
    persistent: bool  # a --state of the user's, not a temporary one


class _Run:
    """One run: the store, the outputs, the position, and the loop that joins them."""

    def __init__(
        self,
        inputs: Sequence[str],
        out_dir: Path,
        settings: Settings,
        state_dir: Path,
        options: _Options,
        store_dir: Path | None = None,
    ) -> None:
        self.inputs = list(inputs)
        self.settings = settings
        self.state_dir = state_dir
        self.options = options
        self.progress = options.progress
        self.contacts_view = options.contacts_view
        self.summary = Progress()
        self.intake = Intake(settings)
        self.reader: LineReader | None = None
        runtime = settings.runtime
        self.store = RocksStore(store_dir or state_dir, runtime.store_options())
        try:
            self.outputs = OutputFiles(
                out_dir, sync=runtime.sync_writes, max_open=runtime.max_open_files, inputs=self.inputs
            )
        except BaseException:
            self.store.close()
            raise
        self.position = _Position()
        self._batch: _Batch | None = None
        self._next_progress = float("inf")  # when ``progress`` is next called (perf_counter)

    def run(self) -> Progress:
        try:
            self.position = self._restore()
            self._trace()
            return self.summary
        finally:
            self.outputs.close()
            self.store.close()

    def _trace(self) -> None:
        engine = Engine(self.store, self.settings.rules)
        self.store.commit_hooks.append(self._checkpoint)
        self._loop(engine, Views(self.store, self.settings))
        self.store.commit()

    reports_all = True

    def reports(self, number: int, event: Event | None) -> bool:
        return True

    def dead(self, number: int, data: bytes, reason: str, **extra: str) -> None:
        self.outputs.write("dead-letter", dead_letter(self.inputs[self.position.index], number, data, reason, **extra))

    def changed(self, changes: list[Change]) -> None:
        write = self.outputs.write
        for destination, record in route_changes(changes, self.summary, self.contacts_view):
            write(destination, record)

    def statuses(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self.summary.statuses[record["color"]] += 1
            self.outputs.write("status", orjson.dumps(record))

    def moved(self, number: int, end: int) -> None:
        self.position.line, self.position.offset = number, end
        if self.reader is not None:
            self.reader.advance(end)  # the reads behind the position can go

    def _idle(self) -> None:
        """A live feed has gone quiet: what it sent is traced and written out now."""
        if self._batch is not None:
            self._batch.drain()
        self.store.commit()

    def _checkpoint(self) -> None:
        """Runs inside every commit: outputs flushed, and their sizes and the input position batched."""
        if self._batch is not None:
            self._batch.since_commit = 0
        meta = {
            "inputs": [display_name(source) for source in self.inputs],
            **self._where(),
            "outputs": self.outputs.checkpoint(),
            "out": display_name(str(self.outputs.root.resolve())),
        }
        self.store.put(*_POSITION, orjson.dumps(meta))

    def _where(self) -> dict[str, Any]:
        """The checkpoint's input position: the input being read, and the fingerprints of it and of
        those before it (each read whole)."""
        position = self.position
        current = [self.reader.fingerprint(position.offset)] if self.reader else []
        return {
            "index": position.index,
            "offset": position.offset,
            "line": position.line,
            "consumed": [*position.done, *current],
        }

    def _restore(self) -> _Position:
        """Where to start: the checkpoint of the same inputs, or the beginning of new ones."""
        saved = self.store.get(*_POSITION)
        meta = orjson.loads(saved) if saved is not None else None
        self._bind_outputs(meta)
        self.outputs.restore(meta["outputs"] if meta else {})
        if meta is None:
            return _Position()
        if meta["inputs"] != [display_name(source) for source in self.inputs] or self.options.new_inputs:
            log.info("state holds earlier inputs; continuing it with %d new input(s)", len(self.inputs))
            return _Position()
        return self._resume_at(meta)

    def _resume_at(self, meta: dict[str, Any]) -> _Position:
        """The position of ``meta``, a checkpoint of these inputs; the inputs it read whole are checked."""
        if "offsets" in meta:
            raise StateError(
                "this state was written by tracer run --follow, which reads every input at once: continue it "
                "with --follow, or pass --new-inputs to read the inputs from their start, continuing it"
            )
        index, done = meta["index"], consumed(meta)
        if STDIN in self.inputs[:index]:
            raise StateError("cannot resume past standard input: pass the remaining inputs as files")
        for source, fingerprint in zip(self.inputs[:index], done, strict=False):
            check_whole(source, fingerprint)
        log.info("resuming at input %d, line %d", index + 1, meta["line"])
        return _Position(index, meta["offset"], meta["line"], done[:index], done[index])

    def _bind_outputs(self, meta: dict[str, Any] | None) -> None:
        """Refuse outputs that are not this state's; claim the folder for it.

        A state that has checkpointed must find its own folder; a fresh one may take over a folder
        left by a temporary state (reruns without --state), never one of another kept state.
        """
        state, owner = self._state_id(), self.outputs.owner()
        mine = owner is not None and owner["state"] == state
        if meta is not None and "out" in meta and not mine:
            raise StateError(
                f"this state's outputs are in {meta['out']}, and {self.outputs.root} is not its folder; "
                "pass that --out, or a new --state"
            )
        if owner is not None and owner["persistent"] and not mine:
            raise OutputError(
                f"output folder {self.outputs.root} holds the outputs of the state in {owner.get('path')}: "
                "pass that --state to continue it, or another --out"
            )
        if not mine:
            self.outputs.claim(state, self.options.persistent, display_name(str(self.state_dir.resolve())))

    def _state_id(self) -> str:
        """This state's random id, committed before any folder names it (so a crash cannot orphan one)."""
        saved = self.store.get(*_STATE_ID)
        if saved is not None:
            return saved.decode()
        state = secrets.token_hex(16)
        self.store.put(*_STATE_ID, state.encode())
        self.store.commit()
        return state

    def _loop(self, engine: Engine, views: Views | None) -> None:
        """Read the inputs in order, each to its end, in batches."""
        batch = self._batch = _Batch(engine, self, self.intake, views)
        started = self._start_progress()
        for index in range(self.position.index, len(self.inputs)):
            self.reader = self._reader(index)
            hint = FormatHint(self.position.offset == 0, display_name(self.inputs[index]))
            self._apply(self.reader, batch, started, hint)
            batch.drain()  # an input's last batch: the next input's position starts clean
        self.summary.seconds = time.perf_counter() - started
        self._report_incomplete()

    def _apply(self, lines: Iterable[Line], batch: _Batch, started: float, hint: FormatHint | None = None) -> None:
        """Read ``lines`` (of the input ``position.index``) into batches and apply each (``_Batch``);
        commit at the first batch end after ``commit_every`` lines. ``hint``: the input's, when the
        lines are one input's (a dead letter of a line that is not JSON says what the input is)."""
        runtime, unread = self.settings.runtime, batch.unread
        batch.hint = hint or FormatHint(sees_first_line=False)
        room = runtime.batch_events - len(batch.lines) - len(unread)
        for line in lines:
            unread.append(line)
            room -= 1
            if room <= 0:
                batch.step()
                if not batch.lines and batch.since_commit >= runtime.commit_every:
                    self.store.commit()
                    self._report_progress(started)
                room = runtime.batch_events - len(batch.lines)

    def _start_progress(self) -> float:
        """The loop's start: the first progress call is due ``progress_every_seconds`` after it."""
        started, every = time.perf_counter(), self.settings.runtime.progress_every_seconds
        self._next_progress = started + every if self.progress and every > 0 else float("inf")
        return started

    def _report_progress(self, started: float) -> None:
        """After a commit: ``progress`` with the summary so far, if it is due; the next is due an
        interval after this call (not after this one was due: a followed run may idle for hours)."""
        now = time.perf_counter()
        if now >= self._next_progress:
            self.summary.seconds = now - started
            self.summary.state_memory_mb = self.store.memory_mb()
            self.progress(self.summary)  # type: ignore[misc]
            self._next_progress = now + self.settings.runtime.progress_every_seconds

    def _reader(self, index: int) -> LineReader:
        """The reader of input ``index``, the position moved to its start unless it is the resumed one.

        Only the last input may still be written to, so only it holds back a half-written last line;
        an earlier one is complete: its fingerprint covers all of it, and a resume refuses it if it grew.
        """
        position = self.position
        if index != position.index:
            assert self.reader is not None  # the reader of the input before
            position.done.append(self.reader.fingerprint(self.reader.end))
            position.index, position.offset, position.line, position.expected = index, 0, 0, None
        return LineReader(
            self.inputs[index],
            position.offset,
            position.line,
            self.settings.runtime.max_line_bytes,
            expected=position.expected,
            hold_incomplete=index == len(self.inputs) - 1,
            on_idle=self._idle,
        )

    def _report_incomplete(self) -> None:
        self._report_held_back(self.reader)

    def _report_held_back(self, reader: LineReader | None) -> None:
        if reader is not None and reader.incomplete:
            self.summary.held_back = (display_name(reader.source), reader.incomplete)
            log.warning(
                "input %s ends in an incomplete line of %d bytes; it will be read when its newline arrives",
                *self.summary.held_back,
            )


def consumed(meta: dict[str, Any]) -> list[Fingerprint]:
    """The input fingerprints of a checkpoint, as LineReader compares them."""
    saved = meta.get("consumed")
    if saved is None:
        raise StateError(
            "this state was written by an older tracer that kept no input fingerprints; "
            "pass --new-inputs to read the inputs from their start, continuing it"
        )
    return [(length, digest) for length, digest in saved]


def route_changes(
    changes: list[Change], summary: Progress, view: Callable[[Alert], Alert] | None
) -> Iterator[tuple[str, bytes]]:
    """The output records of alert changes (``tracer.alerts.route``), counted into ``summary``."""
    for change in changes:
        summary.alerts[change.after["level"] if change.after else "retract"] += 1
        yield from route(change, view)


class Sink(Protocol):
    """Where a ``_Batch`` reports what its lines gave: a run's output folder, or a worker's outbox
    (streams/worker.py)."""

    summary: Progress
    reports_all: bool  # ``reports`` is True for every line

    def reports(self, number: int, event: Event | None) -> bool:
        """Whether this sink reports (counts, dead-letters) input line ``number``, whose event is
        ``event`` (None: the line is no event)."""

    def dead(self, number: int, data: bytes, reason: str, **extra: str) -> None:
        """A dead letter (or a warning) for input line ``number``."""

    def changed(self, changes: list[Change]) -> None:
        """The alert changes of a step."""

    def statuses(self, records: list[dict[str, Any]]) -> None:
        """The health status changes of a step (only a sink whose batch keeps views gets any)."""

    def moved(self, number: int, end: int) -> None:
        """The lines up to ``number`` (ending at byte ``end`` of the input) are applied and reported."""


class _Batch:
    """The lines read and not yet applied, and how they reach the engine and the sink: dead
    letters in line order first, then the step's alert changes.

    Batches must be the same in a run and in its resumption after a crash, or the change streams
    (coarser with larger batches) would differ. So they are counted from the last commit: a batch
    is ``batch_events`` lines, and ends early only at the end of an input and when a live input has
    nothing more to read yet (so a case that arrives alone is traced at once; then the input's
    timing decides, as it decides what arrives). A trip that moves the retention horizon starts a
    new engine step (``Engine.apply``) whose purge commits: the batch then fills up from there.
    """

    def __init__(self, engine: Engine, sink: Sink, intake: Intake, views: Views | None = None) -> None:
        self.engine, self.sink, self.intake, self.views = engine, sink, intake, views
        self.unread: list[Line] = []  # lines read, decoded together when the step comes (``decode_many``)
        self.hint: FormatHint | None = None  # of the input whose lines are read (a runner's, which sets it)
        # (number, end, data, index of its event in ``events`` or -1, the reason or warning)
        self.lines: list[tuple[int, int, bytes, int, str | None]] = []
        self.events: list[Event] = []
        self.noted = 0  # of ``lines``, those with no event or with a warning
        self.since_commit = 0  # lines applied since the last commit (which resets it)

    def drain(self) -> None:
        self._decode()
        while self.lines:
            self.step()

    def _decode(self) -> None:
        """Decode the lines read since the last step, all at once, into ``lines`` and ``events``."""
        unread = self.unread
        if not unread:
            return
        lines, events = self.lines, self.events
        decoded = self.intake.decode_many([(data, too_long) for _, _, data, too_long in unread])
        hint = self.hint
        for (number, end, data, _), (event, note) in zip(unread, decoded, strict=True):
            if event is None:
                lines.append((number, end, data, -1, hint.reason(number, data, note or "") if hint else note))
                self.noted += 1
            else:
                lines.append((number, end, data, len(events), note))
                events.append(event)
                if note:
                    self.noted += 1
        unread.clear()  # in place: a runner holds it

    def step(self) -> None:
        """One engine step: it applies the lines read, or those before a trip that must start one."""
        self._decode()
        sink, events, lines = self.sink, self.events, self.lines
        summary = sink.summary
        applied = self.engine.apply(events)
        done, refused = applied.consumed, applied.refused
        rest = len(lines) if done == len(events) else next(i for i, line in enumerate(lines) if line[3] >= done)
        applied_lines = lines[:rest] if rest < len(lines) else lines
        self._report(applied_lines, refused, done)
        sink.changed(applied.changes)
        if self.views is not None:
            viewed = [event for slot, event in enumerate(events[:done])  # most steps: no case, no follow-up
                      if type(event) in VIEWED_EVENTS and slot not in refused
                      ] if not set(map(type, events[:done])).isdisjoint(VIEWED_EVENTS) else []
            records = [record_of(change) for change in applied.changes]
            sink.statuses(self.views.apply(viewed, records, self.engine.event_time))
        sink.moved(*lines[rest - 1][:2])
        summary.lines += rest
        self.since_commit += rest
        self.lines = [(*line[:3], line[3] - done if line[3] >= 0 else -1, line[4]) for line in lines[rest:]]
        self.events = events[done:]
        self.noted = sum(line[3] < 0 or line[4] is not None for line in self.lines) if self.noted else 0

    def _report(self, lines: list[tuple[int, int, bytes, int, str | None]], refused: dict[int, str], done: int) -> None:
        """Count the applied events of ``lines`` (the first ``done`` events) and dead-letter the rest
        (warnings too), as the sink reports them. A sink that reports every line counts in one pass in
        C and looks only at the lines with a note or a refusal: a registry's block has a broken line
        in about every batch (benchmarks/README.md, "The registry block")."""
        sink, events = self.sink, self.events
        summary = sink.summary
        if sink.reports_all:
            kinds = Counter(map(type, events[:done]))  # the lines hold the first events, in order
            kinds.subtract(type(events[slot]) for slot in refused)
            for kind, count in kinds.items():
                if count:
                    summary.events[_KINDS[kind]] += count
            if not refused and not self.noted:
                return
            lines = [line for line in lines if line[3] < 0 or line[4] is not None or line[3] in refused]
        for number, _, data, slot, note in lines:
            if not sink.reports(number, events[slot] if slot >= 0 else None):
                continue
            if slot < 0 or slot in refused:
                sink.dead(number, data, (note if slot < 0 else refused[slot]) or "")
                summary.dead_letters += 1
                continue
            if not sink.reports_all:
                summary.events[_KINDS[type(events[slot])]] += 1
            if note:
                sink.dead(number, data, note, severity=WARNING)
                summary.warnings += 1
