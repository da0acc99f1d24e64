"""The one output file of a command (`tracer import --out`, `tracer graph --out`): whole or not at all.

A regular file is written to a hidden temporary file beside it and renamed over it at the end, so
a failed or interrupted command never leaves half a file, and an old file stays as it was until
the new one is complete. A symlink at the target is replaced, never followed. A target that exists
and is not a regular file (a device such as /dev/stdout, a pipe) is written in place: renaming
over it would replace the device. ``-`` is standard output. Every failure to write (a missing
folder, a folder as target, no permission, a full disk, a file size limit) is an ``OutputError``
naming the target; errors reading the inputs stay the caller's, so the two are never confused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from tracer.errors import OutputError

if TYPE_CHECKING:
    import polars as pl

STDOUT = "-"


def refuse_overwriting(out: str | Path, inputs: Iterable[str | Path | None]) -> None:
    """Stop before anything is opened for writing if ``out`` is one of the inputs (also through a
    symlink or a hard link), lies inside an input folder or, an output folder, holds an input: the
    output would destroy what it is made from."""
    if str(out) == STDOUT:
        return
    target = Path(out)
    for source in filter(None, inputs):
        folder = Path(source).resolve()
        if _same_file(target, Path(source)) or (folder.is_dir() and target.resolve().is_relative_to(folder)):
            raise OutputError(f"cannot write {out}: it is, or is inside, the input {source}")
        if target.is_dir() and folder.is_relative_to(target.resolve()):
            raise OutputError(f"cannot write {out}: it holds the input {source}")


class Output:
    """A binary stream whose every failure is an ``OutputError`` naming the target."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream = stream
        self.name = name

    def write(self, data: bytes) -> None:
        with _failing_as_output(self.name):
            self._stream.write(data)

    def write_lines(self, column: pl.DataFrame) -> None:
        """Each string of a one-column polars DataFrame as a line of its own, as it is (no quoting):
        polars writes them to the stream without a Python string or bytes of them all."""
        with _failing_as_output(self.name):
            column.write_csv(self._stream, include_header=False, quote_style="never", line_terminator="\n")

    def flush(self, durable: bool = False) -> None:
        with _failing_as_output(self.name):
            self._stream.flush()
            if durable:
                os.fsync(self._stream.fileno())


@contextlib.contextmanager
def output_file(out: str | Path) -> Iterator[Output]:
    """Write ``out`` (``-``: standard output) through the yielded ``Output``; see the module doc."""
    if str(out) == STDOUT:
        with _stdout() as output:
            yield output
        return
    path = Path(out)
    with _failing_as_output(str(out)):
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        in_place = path.exists() and not path.is_file()
        # "x": a new file, never through a symlink; the same folder keeps the final rename atomic.
        temp = None if in_place else path.with_name(f".tracer-{secrets.token_hex(6)}.part")
        stream = open(temp or path, "xb" if temp else "wb")  # noqa: SIM115  (closed below)
    output = Output(stream, str(out))
    try:
        yield output
        output.flush(durable=temp is not None)
        stream.close()
        if temp is not None:
            with _failing_as_output(str(out)):
                os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            stream.close()
        if temp is not None:
            temp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _stdout() -> Iterator[Output]:
    sys.stdout.flush()  # anything printed before goes first
    output = Output(sys.stdout.buffer, "standard output")
    try:
        yield output
        output.flush()
    except OutputError:
        # What stays buffered cannot be written either: point the descriptor at /dev/null, or the
        # interpreter's last flush at exit would print a second, traceback-like complaint.
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
        raise


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False  # one of them does not exist (yet)


@contextlib.contextmanager
def _failing_as_output(name: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write {name}: {exc.strerror or exc}") from exc
