"""File sources and sinks for the embedded runner.

Sinks are append-only JSON Lines files whose sizes are checkpointed together with the engine
state: after a crash, ``OutputFiles.restore`` cuts every file back to its checkpointed size, so a
restarted run rewrites exactly what was lost and never leaves a torn line.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from tracer.errors import InputError, OutputError

CONTACTS_FILE = "contacts.jsonl"
DEAD_LETTER_FILE = "dead-letter.jsonl"
QUEUE_DIR = "alerts"
STDIN = "-"


class Line(NamedTuple):
    """One input line: its number (from 1), the byte offset after it, its bytes (no newline)."""

    number: int
    end: int
    data: bytes
    too_long: bool


def read_lines(source: str, offset: int, number: int, max_bytes: int) -> Iterator[Line]:
    """Lines of ``source`` (a path or ``-``) after byte ``offset`` / line ``number``.

    A file resumes by seeking; stdin cannot seek, so it skips ``number`` lines instead (which is
    right when the same data is piped again). A line longer than ``max_bytes`` is read to its end
    without being kept: it comes back with ``too_long`` set and only its first ``max_bytes``.
    """
    try:
        stream: BinaryIO = sys.stdin.buffer if source == STDIN else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from exc
    try:
        position = 0
        if source != STDIN:
            stream.seek(offset)
            position = offset
        skip = number if source == STDIN else 0
        while True:
            chunk = stream.readline(max_bytes + 1)
            if not chunk:
                return
            position += len(chunk)
            too_long = len(chunk) > max_bytes and not chunk.endswith(b"\n")
            data = chunk
            while too_long and not chunk.endswith(b"\n"):
                chunk = stream.readline(1 << 20)
                if not chunk:
                    break
                position += len(chunk)
            number += 1
            if skip:
                skip -= 1
                continue
            data = data.rstrip(b"\r\n")
            if data.strip() or too_long:
                yield Line(number, position, data[:max_bytes], too_long)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from exc
    finally:
        if source != STDIN:
            stream.close()


class OutputFiles:
    """The output folder: the contacts stream, the dead letters and one queue per subdistrict."""

    def __init__(self, root: str | Path, sync: bool = False) -> None:
        self.root = Path(root)
        self._sync = sync
        self._files: dict[str, BinaryIO] = {}
        self._sizes: dict[str, int] = {}  # checkpointed size of every file, open in this process or not
        try:
            (self.root / QUEUE_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder {self.root}: {exc.strerror}") from exc

    def _relative(self, destination: str) -> str:
        if destination == "contacts":
            return CONTACTS_FILE
        if destination == "dead-letter":
            return DEAD_LETTER_FILE
        return f"{QUEUE_DIR}/{destination}.jsonl"

    def write(self, destination: str, line: bytes) -> None:
        """Append one record; ``destination`` is ``contacts``, ``dead-letter`` or a queue name."""
        handle = self._files.get(destination)
        if handle is None:
            handle = self._open(destination)
        try:
            handle.write(line + b"\n")
        except OSError as exc:
            raise OutputError(f"cannot write {self._relative(destination)}: {exc.strerror}") from exc

    def _open(self, destination: str) -> BinaryIO:
        path = self.root / self._relative(destination)
        try:
            handle = open(path, "ab", buffering=1 << 16)  # noqa: SIM115
        except OSError as exc:
            raise OutputError(f"cannot open {path}: {exc.strerror}") from exc
        self._files[destination] = handle
        return handle

    def checkpoint(self) -> dict[str, int]:
        """Flush everything written so far and return each file's size (relative path -> bytes)."""
        try:
            for handle in self._files.values():
                handle.flush()
                if self._sync:
                    os.fsync(handle.fileno())
                self._sizes[os.path.relpath(handle.name, self.root)] = handle.tell()
        except OSError as exc:
            raise OutputError(f"cannot write outputs in {self.root}: {exc.strerror}") from exc
        return dict(self._sizes)

    def restore(self, sizes: dict[str, int]) -> None:
        """Cut the folder back to a checkpoint (call before writing): files made after it become empty.

        A fresh state restores ``{}``: outputs left by another state are emptied, not appended to.
        """
        self._sizes = dict(sizes)
        for path in sorted(self._existing()):
            relative = path.relative_to(self.root).as_posix()
            size = sizes.get(relative, 0)
            try:
                if path.stat().st_size > size:
                    with open(path, "r+b") as handle:
                        handle.truncate(size)
            except OSError as exc:
                raise OutputError(f"cannot restore {path}: {exc.strerror}") from exc

    def _existing(self) -> list[Path]:
        found = [self.root / CONTACTS_FILE, self.root / DEAD_LETTER_FILE]
        found += list((self.root / QUEUE_DIR).glob("*.jsonl"))
        return [p for p in found if p.exists()]

    def close(self) -> None:
        """Close every file; what cannot be flushed now is cut away by the next run's restore."""
        for handle in self._files.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._files.clear()
