"""``tracer run --follow``: every input read as it grows, all at once, until the run is asked to stop.

Without --follow the inputs are one stream, read in order to their ends, and the position is one
input and an offset in it. A followed run reads them all as they grow (a live feed, and the
follow-up file a console appends to meanwhile), in turns: each input gives the complete lines that
have arrived, at most ``batch_events`` of them, applied as a batch of their own (a batch holds one
input's lines, so the position moves in one input at a time). A round of turns that caught up with
every input commits what it read, so that its outputs are written; a round that found nothing new
waits ``POLL_SECONDS``. The checkpoint holds every input's own offset, line number and fingerprint,
in the same RocksDB batch as the state, as every checkpoint does: a killed run resumes each input
where the last commit left it, and ``stop`` (SIGINT, SIGTERM) ends the run with a commit.

Which lines share a batch, and so the change stream, depends on when they arrive, as with a pipe;
the folded alerts do not (docs/architecture.md, "Following live inputs").
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from itertools import islice, takewhile
from operator import itemgetter
from pathlib import Path
from typing import Any

from connectors.files import STDIN, Fingerprint, Line, LineReader, display_name, lines_in
from streams.embedded import _Batch, _Options, _Position, _Run, consumed
from tracer.engine import Engine
from tracer.errors import InputError
from tracer.settings import Settings
from tracer.views import Views

log = logging.getLogger(__name__)
POLL_SECONDS = 0.1  # the wait when no input has anything new: a tenth of the 1 s the console may take
_UNREAD: Fingerprint = (0, hashlib.sha256().hexdigest())  # the fingerprint of none of an input's bytes


@dataclass
class _Followed:
    """One followed input: how far its lines are applied, and its reader once its file exists."""

    source: str
    offset: int = 0
    line: int = 0
    expected: Fingerprint = _UNREAD  # of its first ``offset`` bytes: checked when the file is opened
    reader: LineReader | None = None
    lines: Generator[Line, None, None] | None = None
    waiting: bool = False  # its file did not exist, and the run said so


class Follower(_Run):
    """A ``_Run`` that reads every input as it grows, in turns, until ``stop`` returns True."""

    def __init__(self, inputs: Sequence[str], out_dir: Path, settings: Settings, state_dir: Path, options: _Options,
                 stop: Callable[[], bool]) -> None:
        if STDIN in inputs:
            raise InputError("--follow reads files as they grow; standard input is read as it arrives without it")
        super().__init__(inputs, out_dir, settings, state_dir, options)
        self.stop = stop
        self.followed = [_Followed(source) for source in self.inputs]

    def _resume_at(self, meta: dict[str, Any]) -> _Position:
        """Every input's offset, line and fingerprint; a checkpoint written without --follow gives
        those of the inputs it read whole, and of the one it was reading (the rest start at 0)."""
        done = consumed(meta)
        if "offsets" in meta:
            starts = [(offset, line, fingerprint)
                      for (offset, line), fingerprint in zip(meta["offsets"], done, strict=True)]
        else:
            index = meta["index"]
            starts = [(fingerprint[0], lines_in(source, fingerprint[0]), fingerprint)
                      for source, fingerprint in zip(self.inputs[:index], done[:index], strict=True)]
            starts.append((meta["offset"], meta["line"], done[index]))
        for followed, (offset, line, fingerprint) in zip(self.followed, starts, strict=False):  # the rest: 0
            followed.offset, followed.line, followed.expected = offset, line, fingerprint
        log.info("resuming %s", ", ".join(f"{display_name(one.source)} after line {one.line}" for one in self.followed))
        return _Position()

    def _where(self) -> dict[str, Any]:
        """Every input's own offset, line number and fingerprint."""
        followed = self.followed
        return {
            "offsets": [[one.offset, one.line] for one in followed],
            "consumed": [one.reader.fingerprint(one.offset) if one.reader else one.expected for one in followed],
        }

    def moved(self, number: int, end: int) -> None:
        followed = self.followed[self.position.index]
        followed.line, followed.offset = number, end
        followed.reader.advance(end)  # type: ignore[union-attr]  # it read the lines

    def _loop(self, engine: Engine, views: Views | None) -> None:
        """Rounds of turns over the inputs until ``stop`` (the module's docstring)."""
        batch = self._batch = _Batch(engine, self, self.intake, views)
        started = self._start_progress()
        try:
            while not self.stop():
                read, behind = 0, False
                for index in range(len(self.inputs)):
                    self.position.index = index  # whose lines the batch holds (dead letters, moved)
                    count, full = self._turn(batch, started)
                    read, behind = read + count, behind or full
                    if self.stop():
                        break
                if not behind and batch.since_commit:  # caught up: what was read is written out now
                    self.store.commit()
                    self._report_progress(started)
                if not read:
                    time.sleep(POLL_SECONDS)
        finally:
            for followed in self.followed:
                if followed.lines is not None:
                    followed.lines.close()  # the file
        log.info("stopped: every complete line read so far is traced and written out")
        self.summary.seconds = time.perf_counter() - started
        for followed in self.followed:
            self._report_held_back(followed.reader)

    def _turn(self, batch: _Batch, started: float) -> tuple[int, bool]:
        """Apply the lines of the input ``position.index`` that have arrived, up to a batch: how
        many, and whether they filled it (more may be there)."""
        lines = self._lines(self.followed[self.position.index])
        if lines is None:
            return 0, False
        size = self.settings.runtime.batch_events
        arrived = list(takewhile(itemgetter(2), islice(lines, size)))  # a line with no bytes: its end for now
        self._apply(arrived, batch, started)
        batch.drain()
        return len(arrived), len(arrived) == size

    def _lines(self, followed: _Followed) -> Generator[Line, None, None] | None:
        """The input's lines, or None while its file does not exist yet (said once). A file gone
        after its lines were read is not waited for: its reader fails to open it."""
        if followed.lines is None:
            name = display_name(followed.source)
            if not followed.offset and not os.path.lexists(followed.source):
                if not followed.waiting:
                    log.warning("input %s does not exist yet: it is read from when it appears", name)
                    followed.waiting = True
                return None
            if followed.waiting:
                log.info("input %s has appeared", name)
            followed.reader = LineReader(
                followed.source,
                followed.offset,
                followed.line,
                self.settings.runtime.max_line_bytes,
                expected=followed.expected,
                follow=True,
            )
            followed.lines = iter(followed.reader)
        return followed.lines
