"""The embedded runner: files or stdin in, RocksDB state, files out; no broker.

Crash safety comes from one rule: the input position, the output file sizes and the engine
state are written in the same RocksDB batch. A restart cuts the outputs back to the sizes of
the last batch and reads the inputs from its position, so it writes exactly what was lost.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import orjson

from connectors.files import STDIN, OutputFiles, dead_letter, read_lines
from graph.store import SEP, RocksStore
from tracer.alerts import Alert, route
from tracer.engine import Engine
from tracer.errors import InvalidEvent, StateError
from tracer.events import Case, Exposure, Person, Quarantine, Trip, parse_line
from tracer.registry import Subdistricts
from tracer.settings import Settings

log = logging.getLogger(__name__)
_POSITION = ("M" + SEP, "position")
_KINDS = {kind: kind.__name__.lower() for kind in (Trip, Case, Person, Quarantine, Exposure)}


@dataclass
class Summary:
    """What one run did; printed by the CLI."""

    events: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    warnings: int = 0  # lines applied but reported in the dead letters (tracer/registry.py)
    lines: int = 0
    seconds: float = 0.0
    state_memory_mb: float = 0.0  # RocksDB's own accounting, as of the last progress call

    @property
    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Position:
    index: int = 0  # which input
    offset: int = 0  # bytes of it consumed
    line: int = 0  # lines of it consumed


def run_embedded(
    inputs: Sequence[str],
    out_dir: str | Path,
    settings: Settings,
    state_dir: str | Path | None = None,
    progress: Callable[[Summary], None] | None = None,
    contacts_view: Callable[[Alert], Alert] | None = None,
) -> Summary:
    """Trace ``inputs`` (read as one stream, in order) into ``out_dir``; resume from ``state_dir``.

    ``progress`` is called now and then with the summary so far; ``contacts_view`` rewrites the
    records of the contacts stream (pseudonymisation).
    """
    if state_dir is not None:
        return _Run(inputs, Path(out_dir), settings, Path(state_dir), progress, contacts_view).run()
    with tempfile.TemporaryDirectory(prefix="tracer-state-", ignore_cleanup_errors=True) as scratch:
        return _Run(inputs, Path(out_dir), settings, Path(scratch), progress, contacts_view).run()


class _Run:
    """One run: the store, the outputs, the position, and the loop that joins them."""

    def __init__(
        self,
        inputs: Sequence[str],
        out_dir: Path,
        settings: Settings,
        state_dir: Path,
        progress: Callable[[Summary], None] | None,
        contacts_view: Callable[[Alert], Alert] | None,
    ) -> None:
        self.inputs = list(inputs)
        self.settings = settings
        self.progress = progress
        self.contacts_view = contacts_view
        self.summary = Summary()
        self.subdistricts = Subdistricts.load(settings)
        runtime = settings.runtime
        self.store = RocksStore(
            state_dir,
            sync=runtime.sync_writes,
            cache_mb=runtime.block_cache_mb,
            write_buffer_mb=runtime.write_buffer_mb,
        )
        try:
            self.outputs = OutputFiles(out_dir, sync=runtime.sync_writes)
        except BaseException:
            self.store.close()
            raise
        self.position = _Position()

    def run(self) -> Summary:
        try:
            self.position = self._restore()
            engine = Engine(self.store, self.settings.rules)
            self.store.before_commit = self._checkpoint
            self._loop(engine)
            self.store.commit()
            return self.summary
        finally:
            self.outputs.close()
            self.store.close()

    def _checkpoint(self) -> None:
        """Runs inside every commit: outputs flushed, and their sizes and the input position batched."""
        position = self.position
        meta = {
            "inputs": self.inputs,
            "index": position.index,
            "offset": position.offset,
            "line": position.line,
            "outputs": self.outputs.checkpoint(),
        }
        self.store.put(*_POSITION, orjson.dumps(meta))

    def _restore(self) -> _Position:
        """Where to start: the checkpoint of the same inputs, or the beginning of new ones."""
        saved = self.store.get(*_POSITION)
        if saved is None:
            self.outputs.restore({})
            return _Position()
        meta = orjson.loads(saved)
        self.outputs.restore(meta["outputs"])
        if meta["inputs"] != self.inputs:
            log.info("state holds earlier inputs; continuing it with %d new input(s)", len(self.inputs))
            return _Position()
        if STDIN in self.inputs[: meta["index"]]:
            raise StateError("cannot resume past standard input: pass the remaining inputs as files")
        log.info("resuming at input %d, line %d", meta["index"] + 1, meta["line"])
        return _Position(meta["index"], meta["offset"], meta["line"])

    def _loop(self, engine: Engine) -> None:
        settings, summary, position = self.settings, self.summary, self.position
        max_ride_us = int(settings.rules.max_ride_hours * 3_600_000_000)
        max_bytes = settings.runtime.max_line_bytes
        commit_every = settings.runtime.commit_every
        every = settings.runtime.progress_every_seconds
        started = time.perf_counter()
        next_progress = started + every if self.progress and every > 0 else float("inf")
        since_commit = 0
        write, events, alerts, view = self.outputs.write, summary.events, summary.alerts, self.contacts_view
        for index in range(position.index, len(self.inputs)):
            source = self.inputs[index]
            if index != position.index:
                position.index, position.offset, position.line = index, 0, 0
            for number, end, data, too_long in read_lines(source, position.offset, position.line, max_bytes):
                try:
                    if too_long:
                        raise InvalidEvent(f"line longer than max_line_bytes ({max_bytes})")
                    event, warning = self.subdistricts.check(parse_line(data, max_ride_us))
                    changes = engine.process(event)
                    if warning:
                        write("dead-letter", dead_letter(source, number, data, warning, severity="warning"))
                        summary.warnings += 1
                except InvalidEvent as exc:
                    write("dead-letter", dead_letter(source, number, data, exc.reason))
                    summary.dead_letters += 1
                else:
                    events[_KINDS[type(event)]] += 1
                    for change in changes:
                        alerts[change.after["level"] if change.after else "retract"] += 1
                        for destination, record in route(change, view):
                            write(destination, record)
                position.offset, position.line = end, number
                summary.lines += 1
                since_commit += 1
                if since_commit >= commit_every:
                    self.store.commit()
                    since_commit = 0
                    if time.perf_counter() >= next_progress:
                        summary.seconds = time.perf_counter() - started
                        summary.state_memory_mb = self.store.memory_mb()
                        self.progress(summary)  # type: ignore[misc]
                        next_progress += every
        summary.seconds = time.perf_counter() - started


def print_summary(summary: Summary, out_dir: Path, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    events = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.events.items())) or "none"
    alerts = ", ".join(f"{n} {level}" for level, n in sorted(summary.alerts.items())) or "none"
    print(
        f"lines read     {summary.lines:,} ({summary.events_per_second:,.0f}/s in {summary.seconds:.2f} s)",
        file=stream,
    )
    print(f"events         {events}", file=stream)
    print(f"alert changes  {alerts}", file=stream)
    print(f"dead letters   {summary.dead_letters:,}", file=stream)
    print(f"warnings       {summary.warnings:,} (applied; in the dead letters with their reason)", file=stream)
    print(
        f"outputs        {out_dir}/contacts.jsonl, {out_dir}/alerts/, {out_dir}/dead-letter.jsonl",
        file=stream,
    )
