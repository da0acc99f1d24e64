"""The console's data in embedded mode: a run's --state read beside ``tracer run --follow``.

The state is opened as a RocksDB secondary instance (read-only, beside the run that holds it) and
caught up when the run's outputs grow (``outputs.OutputWatcher``), or while a follow-up the console
appended waits to be applied (an applied follow-up may change no output: "reached" keeps a
status). Follow-ups go into the file the run follows (``followups.FollowupLog``). The reads are
``reads.StateReads``'s, whose lock keeps catching up and reading apart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson

from connectors.files import display_name
from graph.keys import META, POSITION, group
from graph.store import RocksStore
from streams.console.data import Changes
from streams.console.followups import FollowupLog, Waiting
from streams.console.outputs import OutputWatcher, behind
from streams.console.reads import StateReads
from streams.embedded import COORDINATOR_DIR
from tracer.errors import StateError
from tracer.intake import Intake
from tracer.settings import Settings
from tracer.views import listed_in

log = logging.getLogger(__name__)


class EmbeddedData(StateReads):
    def __init__(self, state: Path, out: Path, followups: Path, settings: Settings, scratch: Path) -> None:
        if not (state / "CURRENT").exists():
            several = (state / COORDINATOR_DIR).is_dir()
            raise StateError(f"{state} is a state of tracer run --workers N, which the console does not read yet"
                             if several else f"{state} holds no tracer state: start tracer run --follow first")
        # The console reads none of the trips' families: its secondary instance leaves them out, and
        # catching it up costs a third of the CPU it would (graph.store.TRIP_FAMILIES).
        super().__init__(RocksStore(state, secondary=scratch, trips=False), settings)
        try:
            meta = self._checkpoint()
            if meta.get("out") != display_name(str(out.resolve())):
                raise StateError(f"{state} is the state of the run writing {meta.get('out')}, not {out}")
            _say_if_not_read(meta, followups)
            self.watcher = OutputWatcher(out, meta["outputs"])
            self.log = FollowupLog(followups, Intake(settings))
        except BaseException:
            self.store.close()
            raise
        self._waiting = Waiting()  # appended, not yet applied
        self._behind_since: float | None = None

    def _checkpoint(self) -> dict[str, Any]:
        saved = self.store.get(group(META), POSITION)
        if saved is None:
            raise StateError("no run has written this state yet: start tracer run --follow first")
        return orjson.loads(saved)  # type: ignore[no-any-return]

    def append_followup(self, record: dict[str, Any]) -> bool:
        event = self.log.append(record)
        if event is None:
            return False
        self._waiting.add(event, str(record.get("by")))
        return True

    def poll(self) -> Changes:
        sizes = self.watcher.sizes()
        if not self.watcher.moved(sizes) and not self._waiting:
            self._behind_since = None  # read to the end: nothing is behind
            return Changes()
        with self._lock:
            self.catch_up()
            checkpoint = self._checkpoint()["outputs"]
            seen = self.watcher.read(sizes, checkpoint)
            offices_changed = set(seen.queues) | self._waiting.applied(self.store)
            for person in set(seen.persons):
                offices_changed |= listed_in(self.store, person)
        return Changes(offices_changed, seen.alert_changes, len(seen.persons), self._lag(behind(sizes, checkpoint)))

    def _lag(self, is_behind: bool) -> float:
        if not is_behind:
            self._behind_since = None
            return 0.0
        if self._behind_since is None:
            self._behind_since = time.monotonic()
        return time.monotonic() - self._behind_since


def _say_if_not_read(meta: dict[str, Any], followups: Path) -> None:
    """Warn when the run does not name the follow-up file among its inputs (as far as can be told
    from here: the run's input names are as it was given them)."""
    for name in meta.get("inputs", []):
        with contextlib.suppress(OSError):
            if Path(name).resolve() == followups.resolve() or os.path.samefile(name, followups):
                return
    log.warning("the run of this state does not read %s (its inputs: %s): follow-ups will wait until it does",
                followups, ", ".join(meta.get("inputs", [])))
