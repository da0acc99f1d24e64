"""What a run has written since the console last looked, as far as the state holds it.

The runner flushes its output files, then commits the state with every file's size (its
checkpoint) in one RocksDB batch. Once the console's secondary instance has caught up, the state
holds exactly the output bytes up to those sizes; so the watcher reads, of each file, the bytes
from where it stopped to the checkpointed size, never beyond: an office is told about a line only
when its page, fetched now, shows it. Bytes past the checkpoint are written but not yet in the
state the console reads: the lag.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from connectors.files import CONTACTS_FILE, QUEUE_DIR, STATUS_FILE

_QUEUE_PREFIX, _SUFFIX = f"{QUEUE_DIR}/", ".jsonl"


@dataclass
class Seen:
    """The lines the state has come to hold since the last look."""

    alert_changes: int = 0  # contacts.jsonl lines
    queues: set[str] = field(default_factory=set)  # offices whose queue grew, or was cut back
    persons: list[str] = field(default_factory=list)  # whose status changed (status.jsonl)


class OutputWatcher:
    def __init__(self, out: Path, checkpoint: dict[str, int]) -> None:
        self.out = out
        self.read_to = dict(checkpoint)  # relative path -> the bytes read (what the state held at start)

    def sizes(self) -> dict[str, int]:
        """Every output file's size now (relative path -> bytes)."""
        found = {}
        for name in (CONTACTS_FILE, STATUS_FILE):
            with contextlib.suppress(FileNotFoundError):
                found[name] = os.stat(self.out / name).st_size
        with contextlib.suppress(FileNotFoundError), os.scandir(self.out / QUEUE_DIR) as entries:
            for entry in entries:
                if entry.name.endswith(_SUFFIX) and entry.is_file(follow_symlinks=False):
                    found[_QUEUE_PREFIX + entry.name] = entry.stat(follow_symlinks=False).st_size
        return found

    def moved(self, sizes: dict[str, int]) -> bool:
        """Whether any file is not the size the watcher read it to."""
        return any(size != self.read_to.get(name, 0) for name, size in sizes.items())

    def read(self, sizes: dict[str, int], checkpoint: dict[str, int]) -> Seen:
        """The lines of each file from where it was read to up to what the state holds of it."""
        seen = Seen()
        for name, size in sizes.items():
            start, end = self.read_to.get(name, 0), min(size, checkpoint.get(name, 0))
            if end == start:
                continue
            self.read_to[name] = end
            office = name[len(_QUEUE_PREFIX):-len(_SUFFIX)] if name.startswith(_QUEUE_PREFIX) else None
            if office is not None:
                seen.queues.add(office)  # grew, or a restarted run cut it back to its checkpoint
            elif end > start:
                data = self._bytes(name, start, end)
                if name == STATUS_FILE:
                    seen.persons += [orjson.loads(line)["person_id"] for line in data.splitlines()]
                else:
                    seen.alert_changes += data.count(b"\n")
        return seen

    def _bytes(self, name: str, start: int, end: int) -> bytes:
        with open(self.out / name, "rb") as source:
            source.seek(start)
            return source.read(end - start)


def behind(sizes: dict[str, int], checkpoint: dict[str, int]) -> bool:
    """Whether the outputs hold lines the state does not (yet)."""
    return any(size > checkpoint.get(name, 0) for name, size in sizes.items())
