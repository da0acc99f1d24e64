"""``tracer registry load``: a city's registry into a state before its first run.

A registry is loaded once and changes slowly: 25 million residents for Shanghai. Here the lines go
through the same checks (``Intake.decode_many``, a batch at a time, plain lines in the fast lane)
and the same engine step (``Engine.apply``, which writes a run of residents without reading
anything) as in a run, in large chunks, with no outputs: 2.5M residents in 9.1-9.7 s of CPU, 0.47-0.49
of a bare parse-and-write loop on the same lines (benchmarks/README.md, "The registry block,
again"), into a state that several workers then read (``tracer run --workers``). A clean batch's
residents are taken whole; a batch with a line to dead-letter or warn of goes line by line.

Only into a state with no live alert: a resident who moves moves their alerts, and those changes
belong in a run's outputs (``tracer run`` with the registry file does that). A chunk is committed
whole; loading is idempotent, so after a crash the same command loads again. Lines that are not
residents, or not valid, are dead letters written to their own file, as a run writes them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

from connectors.files import Line, LineReader, dead_letter
from connectors.outfile import Output, output_file
from graph.store import RocksStore
from streams.embedded import COORDINATOR_DIR, check_layout, workers_of
from tracer.engine import Engine
from tracer.errors import StateError
from tracer.events import Event, Person
from tracer.intake import WARNING, Intake
from tracer.progress import Progress
from tracer.settings import Settings

CHUNK = 50_000  # residents per engine step and commit (about 5 MB of pending writes)


def load_registry(
    inputs: Sequence[str], state_dir: str | Path, settings: Settings, dead_letters: str, workers: int | None = None
) -> Progress:
    """Write the residents of ``inputs`` into the state in ``state_dir``; bad lines to ``dead_letters``.

    A state of several workers (``tracer run --workers``) keeps them in its coordinator's store,
    which its workers read. ``workers``: for a new state (None: 1); an existing one is loaded as it
    was written."""
    intake = Intake(settings)
    summary = Progress()
    started = time.perf_counter()
    state = Path(state_dir)
    workers = workers or workers_of(state) or 1
    check_layout(state, workers)
    # A state of several workers keeps its registry in the coordinator's store; the workers read it.
    workers_paths = [state] if workers == 1 else [state / f"worker-{index}" for index in range(workers)]
    for path in workers_paths:
        path.mkdir(parents=True, exist_ok=True)  # before the coordinator's folder (``workers_of``)
    stores = []
    try:
        for path in workers_paths:
            if workers > 1 and (path / "CURRENT").exists():
                stores.append(RocksStore(path, settings.runtime.store_options(), read_only=True))
        registry = RocksStore(state if workers == 1 else state / COORDINATOR_DIR, settings.runtime.store_options())
        stores.append(registry)
        engines = [Engine(store, settings.rules) for store in stores]
        if any(engine.has_live_alerts() for engine in engines):
            raise StateError(
                f"the state in {state_dir} has live alerts, and residents who move move them: give the registry "
                "to `tracer run` with this state, whose outputs carry the moves"
            )
        engine = engines[-1]
        with output_file(dead_letters) as letters:
            chunk: list[Person] = []
            for source in inputs:
                reader = iter(LineReader(source, 0, 0, intake.max_line_bytes))
                while lines := list(islice(reader, settings.runtime.batch_events)):  # decoded a batch at a time
                    decoded = intake.decode_many([(data, too_long) for _, _, data, too_long in lines])
                    residents = [event for event, note in decoded if type(event) is Person and not note]
                    if len(residents) < len(lines):  # a line to dead-letter or warn of: in line order
                        residents = _sort_out(source, lines, decoded, letters, summary)
                    chunk += residents
                    if len(chunk) >= CHUNK:
                        _write(engine, chunk, summary)
                        chunk = []
                    summary.lines += len(lines)
            _write(engine, chunk, summary)
    finally:
        for store in stores:
            store.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _sort_out(source: str, lines: list[Line], decoded: list[tuple[Event | None, str | None]], letters: Output,
              summary: Progress) -> list[Person]:
    """The residents of a batch's ``lines``; the other lines' dead letters, and warnings, in line order."""
    residents = []
    for (number, _, data, _), (event, note) in zip(lines, decoded, strict=True):
        if event is not None and type(event) is not Person:
            kind = type(event).__name__.lower()
            event, note = None, f"a registry holds person events only, not {kind}"
        if event is None:
            letters.write(dead_letter(source, number, data, note or "") + b"\n")
            summary.dead_letters += 1
            continue
        if note:
            letters.write(dead_letter(source, number, data, note, severity=WARNING) + b"\n")
            summary.warnings += 1
        residents.append(event)
    return residents


def _write(engine: Engine, chunk: list[Person], summary: Progress) -> None:
    applied = engine.apply(chunk)
    assert not applied.changes and not applied.refused, "residents of a state without alerts change nothing"
    engine.store.commit()
    summary.events["person"] += len(chunk)
