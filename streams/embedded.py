"""The embedded runner: files or stdin in, RocksDB state, files out; no broker.

Crash safety comes from one rule: the input position, the output file sizes and the engine
state are written in the same RocksDB batch. A restart cuts the outputs back to the sizes of
the last batch and reads the inputs from its position, so it writes exactly what was lost.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import orjson

from connectors.files import STDIN, OutputFiles, read_lines
from graph.store import SEP, RocksStore
from tracer.alerts import route
from tracer.engine import Engine
from tracer.errors import InvalidEvent, StateError
from tracer.events import parse_line
from tracer.settings import Settings

log = logging.getLogger(__name__)
_POSITION = ("M" + SEP, "position")


@dataclass
class Summary:
    """What one run did; printed by the CLI."""

    events: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    lines: int = 0
    seconds: float = 0.0
    resumed_from_line: int = 0

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
) -> Summary:
    """Trace ``inputs`` (read as one stream, in order) into ``out_dir``; resume from ``state_dir``."""
    if state_dir is None:
        scratch = tempfile.mkdtemp(prefix="tracer-state-")
        try:
            return _run(inputs, Path(out_dir), settings, Path(scratch), progress)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return _run(inputs, Path(out_dir), settings, Path(state_dir), progress)


def _run(
    inputs: Sequence[str],
    out_dir: Path,
    settings: Settings,
    state_dir: Path,
    progress: Callable[[Summary], None] | None,
) -> Summary:
    runtime = settings.runtime
    store = RocksStore(
        state_dir,
        sync=runtime.sync_writes,
        cache_mb=runtime.block_cache_mb,
        write_buffer_mb=runtime.write_buffer_mb,
    )
    outputs = OutputFiles(out_dir, sync=runtime.sync_writes)
    try:
        position = _restore(store, outputs, list(inputs))
        engine = Engine(store, settings.rules)
        summary = Summary(resumed_from_line=position.line if position.index == 0 else -1)

        def checkpoint() -> None:
            meta = {
                "inputs": list(inputs),
                "index": position.index,
                "offset": position.offset,
                "line": position.line,
                "outputs": outputs.checkpoint(),
            }
            store.put(*_POSITION, orjson.dumps(meta))

        store.before_commit = checkpoint
        _loop(inputs, position, engine, outputs, settings, summary, progress)
        store.commit()
        return summary
    finally:
        outputs.close()
        store.close()


def _restore(store: RocksStore, outputs: OutputFiles, inputs: list[str]) -> _Position:
    """Where to start: the checkpoint of the same inputs, or the beginning of new ones."""
    saved = store.get(*_POSITION)
    if saved is None:
        return _Position()
    meta = orjson.loads(saved)
    outputs.restore(meta["outputs"])
    if meta["inputs"] != inputs:
        log.info("state holds earlier inputs; continuing it with %d new input(s)", len(inputs))
        return _Position()
    if STDIN in inputs[: meta["index"]]:
        raise StateError("cannot resume past standard input: pass the remaining inputs as files")
    log.info("resuming at input %d, line %d", meta["index"] + 1, meta["line"])
    return _Position(meta["index"], meta["offset"], meta["line"])


def _loop(
    inputs: Sequence[str],
    position: _Position,
    engine: Engine,
    outputs: OutputFiles,
    settings: Settings,
    summary: Summary,
    progress: Callable[[Summary], None] | None,
) -> None:
    max_ride_us = int(settings.rules.max_ride_hours * 3_600_000_000)
    max_bytes = settings.runtime.max_line_bytes
    commit_every = settings.runtime.commit_every
    every = settings.runtime.progress_every_seconds
    started = time.perf_counter()
    next_progress = started + every if progress and every > 0 else float("inf")
    since_commit = 0
    write, events, alerts = outputs.write, summary.events, summary.alerts
    for index in range(position.index, len(inputs)):
        source = inputs[index]
        if index != position.index:
            position.index, position.offset, position.line = index, 0, 0
        for line in read_lines(source, position.offset, position.line, max_bytes):
            try:
                if line.too_long:
                    raise InvalidEvent(f"line longer than max_line_bytes ({max_bytes})")
                event = parse_line(line.data, max_ride_us)
                changes = engine.process(event)
            except InvalidEvent as exc:
                write("dead-letter", _dead_letter(source, line.number, line.data, exc.reason))
                summary.dead_letters += 1
            else:
                events[type(event).__name__.lower()] += 1
                for change in changes:
                    alert = change.after or change.before
                    alerts[alert["level"] if change.after else "retract"] += 1  # type: ignore[index]
                    for destination, record in route(change):
                        write(destination, record)
            position.offset, position.line = line.end, line.number
            summary.lines += 1
            since_commit += 1
            if since_commit >= commit_every:
                engine.store.commit()
                since_commit = 0
                if time.perf_counter() >= next_progress:
                    summary.seconds = time.perf_counter() - started
                    progress(summary)  # type: ignore[misc]
                    next_progress += every
        summary.seconds = time.perf_counter() - started
    summary.seconds = time.perf_counter() - started


def _dead_letter(source: str, number: int, data: bytes, reason: str) -> bytes:
    raw = data.decode("utf-8", errors="replace")
    return orjson.dumps({"source": source, "line": number, "raw": raw, "reason": reason})


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
    print(
        f"outputs        {out_dir}/contacts.jsonl, {out_dir}/alerts/, {out_dir}/dead-letter.jsonl",
        file=stream,
    )
