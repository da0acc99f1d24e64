"""File sources and sinks for the embedded runner.

Sinks are append-only JSON Lines files whose sizes are checkpointed together with the engine
state: after a crash, ``OutputFiles.restore`` cuts every file back to its checkpointed size, so a
restarted run rewrites exactly what was lost and never leaves a torn line.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import resource
import select
import stat
import sys
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from connectors.outfile import refuse_overwriting
from tracer.errors import InputError, OutputError, StateError
from tracer.jsonl import escape_line_breaks

CONTACTS_FILE = "contacts.jsonl"
DEAD_LETTER_FILE = "dead-letter.jsonl"
STATUS_FILE = "status.jsonl"  # health status changes (docs/rules.md)
QUEUE_DIR = "alerts"
STDIN = "-"
_READ_SIZE = 1 << 20


def output_names(out: str | Path) -> str:
    """Where a run's outputs are, for a person."""
    return f"{out}/{CONTACTS_FILE}, {out}/{QUEUE_DIR}/, {out}/{STATUS_FILE}, {out}/{DEAD_LETTER_FILE}"


Line = tuple[int, int, bytes, bool]
"""One input line: its number (from 1), the byte offset after it, its bytes (no newline), and
whether it was longer than the limit. A plain tuple: a NamedTuple cost 0.24 us a line, a third
of reading one."""

Fingerprint = tuple[int, str]
"""What a run consumed of one input: its length in bytes and the SHA-256 of exactly those bytes
(SHA-256: 1.4 GB/s here with the CPU's SHA instructions, against 0.46 for BLAKE2b)."""


class InputChanged(StateError):
    """A resumed input whose consumed prefix is not the one the state read, or an earlier input
    (one the stream moved past) that grew: its new bytes would never be read."""

    def __init__(self, source: str, length: int, grew: bool = False) -> None:
        change = (
            f"it grew after this state read all {length:,} bytes of it and went on to the next input"
            if grew
            else f"its first {length:,} bytes differ or are gone"
        )
        super().__init__(
            f"input {display_name(source)} is not the one this state read ({change}); pass --new-inputs to read "
            "the inputs from their start as new input continuing this state, or use a new --state"
        )


def display_name(source: str) -> str:
    """A file name as text that is always valid UTF-8: bytes that are not are written ``\\xNN``.

    Names come from the command line (undecodable bytes as lone surrogates, which no JSON encoder
    accepts); dead letters, checkpoints and messages all use this form.
    """
    return os.fsencode(source).decode("utf-8", errors="backslashreplace")


class LineReader:
    """An input's lines, and the fingerprint of what has been consumed of it.

    Resuming at ``offset`` reads the first ``offset`` bytes again (stdin cannot seek; a file is
    read for its hash) and, given ``expected``, raises InputChanged unless they hash the same: a
    replaced file or a different stdin is refused, a file that only grew goes on. A line longer
    than ``max_bytes`` is read to its end without being kept: it comes back with ``too_long`` set
    and only its first ``max_bytes``. Blank lines are counted but not returned.

    ``hold_incomplete``: a regular file's last line without its newline that is not a whole JSON
    value is not returned (its writer may be mid-line); ``incomplete`` says how many bytes it has,
    and the position stays before it. Pipes and terminals are read as their bytes arrive (a live
    feed), and ``on_idle`` is called whenever the next read would wait, so a runner can commit.

    ``follow`` (``tracer run --follow``): a regular file read as it grows. Its lines never end: at the
    file's end for now comes a line with no bytes (blank lines are never returned, so it means only
    this), and the next one waits for more; a last line without its newline is held back until its
    newline arrives (``incomplete``: its bytes at the last look). A file that became shorter than
    what was read, or whose path now names another file, raises InputError: it was truncated or
    replaced, and reading on would skip or repeat lines.
    """

    def __init__(
        self,
        source: str,
        offset: int,
        number: int,
        max_bytes: int,
        expected: Fingerprint | None = None,
        hold_incomplete: bool = False,
        on_idle: Callable[[], None] | None = None,
        follow: bool = False,
    ) -> None:
        self.source, self.offset, self.number, self.max_bytes = source, offset, number, max_bytes
        self.expected, self.on_idle = expected, on_idle
        self.hold_incomplete, self.follow = hold_incomplete, follow
        self.incomplete = 0  # bytes of a held-back last line
        # The hash covers the input's first ``_hashed`` bytes; the reads after them are kept (with
        # the offset each starts at) until the consumer's position passes them: a runner applies
        # lines in batches, and its position may lie several reads behind the reader.
        self._hash = hashlib.sha256()
        self._hashed = offset
        self._kept: deque[tuple[int, bytes]] = deque()
        self._end = offset  # the offset after the last read

    def fingerprint(self, offset: int) -> Fingerprint:
        """Length and hash of the first ``offset`` bytes: the consumer's position, which only grows
        (``ValueError`` if it went back) and never passes what was read."""
        self.advance(offset)
        return offset, self._hash.hexdigest()

    def advance(self, offset: int) -> None:
        """The consumer's position moved to ``offset``: hash the bytes up to it, drop the reads behind it."""
        if offset < self._hashed or offset > self._end:
            raise ValueError(f"position {offset} is outside the unconsumed reads [{self._hashed}, {self._end}]")
        kept = self._kept
        while offset > self._hashed:
            start, chunk = kept[0]
            upto = min(offset, start + len(chunk))
            self._hash.update(memoryview(chunk)[self._hashed - start : upto - start])
            self._hashed = upto
            if upto == start + len(chunk):
                kept.popleft()

    @property
    def end(self) -> int:
        """The bytes read so far: once the lines are exhausted, the input's length (blank lines too)."""
        return self._end

    def __iter__(self) -> Generator[Line, None, None]:
        with self._open() as stream:
            yield from self._lines(stream)

    @contextlib.contextmanager
    def _open(self) -> Iterator[BinaryIO]:
        """The input stream (stdin is left open), its read errors as InputError."""
        name = display_name(self.source)
        try:
            stream: BinaryIO = sys.stdin.buffer if self.source == STDIN else open(self.source, "rb")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot read {name}: {exc.strerror}") from exc
        try:
            yield stream
        except OSError as exc:
            raise InputError(f"cannot read {name}: {exc.strerror}") from exc
        finally:
            if self.source != STDIN:
                stream.close()

    def _lines(self, stream: BinaryIO) -> Iterator[Line]:
        live = not _is_regular(stream)
        if live and self.follow:
            raise InputError(f"cannot follow {display_name(self.source)}: --follow reads regular files as they grow")
        read = stream.read1 if live else stream.read  # read1: what has arrived, at most one wait
        self._skip_prefix(read)
        number, position, max_bytes = self.number, self.offset, self.max_bytes
        hold = self.hold_incomplete and not live
        # One loop per line, the hot path of every run: a generator per line as well measured 0.9
        # against 0.5 us a line.
        for lines, first_size, terminated in _split(self._chunks(read, stream, live), max_bytes):
            if not lines:  # a followed file's end for now; ``first_size``: its unfinished line's bytes
                self.incomplete = first_size
                yield number, position, b"", False
                continue
            self.incomplete = 0  # a followed file's unfinished line may have ended since the last look
            if hold and not terminated and self._held_back(lines[0], first_size):
                return
            for data in lines:
                if first_size:
                    position += first_size
                    first_size = 0
                else:
                    position += len(data) + 1
                number += 1
                if data.endswith(b"\r"):
                    data = data[:-1]
                if len(data) > max_bytes:
                    yield number, position, data[:max_bytes], True
                elif data and not data.isspace():  # isspace: no copy, unlike strip
                    yield number, position, data, False

    def _held_back(self, data: bytes, size: int) -> bool:
        """Whether the last line, without its newline, is kept for later: not blank and not whole JSON."""
        if data.isspace() or (len(data) <= self.max_bytes and _parses(data)):
            return False
        self.incomplete = size
        return True

    def _skip_prefix(self, read: Callable[[int], bytes]) -> None:
        """Read (and hash) the bytes consumed before; refuse them if they are not the expected ones."""
        hasher, left = hashlib.sha256(), self.offset
        while left > 0:
            chunk = read(min(left, _READ_SIZE))
            if not chunk:
                break
            hasher.update(chunk)
            left -= len(chunk)
        if left or (self.expected is not None and self.expected != (self.offset, hasher.hexdigest())):
            raise InputChanged(self.source, self.offset)
        self._hash = hasher

    def _chunks(self, read: Callable[[int], bytes], stream: BinaryIO, live: bool) -> Iterator[bytes]:
        """The input's reads, each kept for the hash until the consumer has passed it; a followed
        file's end for now is an empty read."""
        while True:
            if live and self.on_idle is not None and not _ready(stream):
                self.on_idle()
            chunk = read(_READ_SIZE)
            if not chunk:
                if not self.follow:
                    return
                self._check_followed(stream)
                yield chunk
                continue
            self._kept.append((self._end, chunk))
            self._end += len(chunk)
            yield chunk

    def _check_followed(self, stream: BinaryIO) -> None:
        """Raise InputError if the followed file was cut below what was read, or its path now names
        another file (replaced, or removed)."""
        name, opened = display_name(self.source), os.fstat(stream.fileno())
        if opened.st_size < self._end:
            raise InputError(
                f"followed input {name} was truncated: it has {opened.st_size:,} bytes, and {self._end:,} were "
                "read; a followed file may only grow (--new-inputs reads the inputs again from their start)"
            )
        try:
            named = os.stat(self.source)
        except FileNotFoundError:
            named = None
        if named is None or (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino):
            change = "removed" if named is None else "replaced by another file"
            raise InputError(f"followed input {name} was {change} after {self._end:,} bytes of it were read")


def lines_in(source: str, length: int) -> int:
    """How many lines LineReader numbers in the first ``length`` bytes of ``source`` (a last one
    without its newline too): where a followed run goes on numbering an input that a run without
    --follow read to its end, which its checkpoint does not count."""
    count, last, left = 0, b"\n", length
    with LineReader(source, 0, 0, 0)._open() as stream:
        while left > 0 and (chunk := stream.read(min(left, _READ_SIZE))):
            count, last, left = count + chunk.count(b"\n"), chunk[-1:], left - len(chunk)
    return count + (last != b"\n")


def check_whole(source: str, expected: Fingerprint) -> None:
    """Raise InputChanged unless the file ``source`` is exactly the bytes ``expected`` hashes: an
    earlier input, complete by definition since the stream moved past it, that grew would have its
    new bytes skipped."""
    reader = LineReader(source, expected[0], 0, 0, expected)
    with reader._open() as stream:
        reader._skip_prefix(stream.read)
        if stream.read(1):
            raise InputChanged(source, expected[0], grew=True)


def _is_regular(stream: BinaryIO) -> bool:
    """A regular file (read in big blocking reads); else a pipe, socket or terminal (a live feed)."""
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):  # an in-memory stream: it has everything already
        return True


def _ready(stream: BinaryIO) -> bool:
    """Whether a read would return at once (data or end of input)."""
    return bool(select.select([stream], [], [], 0)[0])


def _parses(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


def _split(chunks: Iterator[bytes], max_bytes: int) -> Iterator[tuple[list[bytes], int, bool]]:
    """The lines of each read, the size of the first of them if it is not ``len + 1``, and whether
    the last of them ends with a newline (only the final line of the input may not).

    The first line may have begun in earlier reads; it is joined to its start and, if longer than
    ``max_bytes + 1``, keeps only its first ``max_bytes + 2`` bytes, so that a line of any length
    costs bounded memory (two more than the limit: without a final CR it is still too long). Its
    true size (the bytes it took, newline included) comes with it, since every other line took its
    length plus its newline: with reads of 4 bytes, ``ab\ncdefg\n`` gives ``([b"ab"], 0, True)``,
    then ``([b"cdefg"], 6, True)``. The last line, without a newline, comes alone at the end. An
    empty read (a followed file's end for now) gives ``([], size of the line begun, False)``.
    """
    head, head_size = b"", 0  # the start of a line that runs on into the next read, and its true size
    for chunk in chunks:
        if not chunk:  # a followed file's end for now: no lines, and the size of the one begun
            yield [], head_size, False
            continue
        lines = chunk.split(b"\n")
        tail = lines.pop()  # after the last newline: the start of the next line
        first_size = 0
        if head_size and lines:
            first_size = head_size + len(lines[0]) + 1
            lines[0] = (head + lines[0])[: max_bytes + 2]
            head, head_size = b"", 0
        if lines:
            yield lines, first_size, True
        if tail:
            if len(head) <= max_bytes + 1:
                head = (head + tail)[: max_bytes + 2]
            head_size += len(tail)
    if head_size:
        yield [head], head_size, False


def dead_letter(source: str, line: int, data: bytes, reason: str, **extra: Any) -> bytes:
    """The dead-letter record of docs/schema.md (``raw`` and ``source`` made valid UTF-8), for every runner."""
    raw = data.decode("utf-8", errors="replace")
    return orjson.dumps({"source": display_name(source), "line": line, "raw": raw, "reason": reason, **extra})


LOCK_FILE = ".tracer-lock"
OWNER_FILE = ".tracer-owner"
_NEW_FILE = os.O_WRONLY | os.O_CREAT
_DESCRIPTOR_MARGIN = 32
"""Descriptors kept free of the output pool: a run measured 14 besides its outputs (stdio and the
interpreter's own, RocksDB's log, lock, WAL, MANIFEST, folder and SST files, the input, the lock of
--out); RocksDB keeps every SST file open and opens more while it compacts, so twice that."""


class OutputFiles:
    """The output folder: the contacts stream, the dead letters and one queue per subdistrict.

    The folder is locked while a run holds it, and ``owner``/``claim`` record which state wrote
    it. Every file in it is opened as a regular file with no other link (``_open_output``): a
    symbolic or hard link planted there would have the run write, or cut, a file elsewhere, and a
    pipe would hang it. ``inputs`` that are, or lie in, the folder's files are refused before any is
    opened. At most ``max_open`` files are open at once, fewer if the process may not open that many
    besides RocksDB's (a city may have more offices than the process has descriptors): the least
    recently written one is closed.
    """

    def __init__(
        self, root: str | Path, sync: bool = False, max_open: int = 256, inputs: Sequence[str] = ()
    ) -> None:
        self.root = Path(root)
        self._sync = sync
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft_limit != resource.RLIM_INFINITY:
            max_open = min(max_open, soft_limit - _DESCRIPTOR_MARGIN)
        self._max_open = max(1, max_open)
        self._files: OrderedDict[str, BinaryIO] = OrderedDict()  # least recently written first
        self._sizes: dict[str, int] = {}  # checkpointed size of every file, open in this process or not
        try:
            (self.root / QUEUE_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder {self.root}: {exc.strerror}") from exc
        if (self.root / QUEUE_DIR).is_symlink():
            raise OutputError(f"{self.root / QUEUE_DIR} is a symbolic link; tracer does not follow links in --out")
        self._refuse_inputs(inputs)
        self._lock = self._take_lock()

    def _refuse_inputs(self, inputs: Sequence[str]) -> None:
        """Refuse an input inside the folder, or the same file as one it writes (a hard link): the
        run would empty what it reads. Standard input is checked through what it is open on."""
        sources = ["/dev/stdin" if source == STDIN else source for source in inputs]
        for target in [self.root, *self._existing()]:
            refuse_overwriting(target, sources)

    def _take_lock(self) -> int:
        """Hold the folder's lock until close, so that a second run on it stops at once."""
        path = self.root / LOCK_FILE
        fd = _open_output(path, _NEW_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise OutputError(f"output folder {self.root} is in use by another tracer run") from exc
        return fd

    def owner(self) -> dict[str, Any] | None:
        """The owner record of the folder (``state``: an id, ``persistent``, ``path``), or None."""
        path = self.root / OWNER_FILE
        try:
            fd = _open_output(path, os.O_RDONLY)
        except OutputError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                return None
            raise
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(4096)
        try:
            record = orjson.loads(data)
            if not (isinstance(record.get("state"), str) and isinstance(record.get("persistent"), bool)):
                raise ValueError("fields")
        except (ValueError, AttributeError) as exc:  # orjson's decode error is a ValueError
            message = f"{path} is not a tracer owner record; remove it if this folder may be overwritten"
            raise OutputError(message) from exc
        return record  # type: ignore[no-any-return]

    def claim(self, state: str, persistent: bool, state_path: str) -> None:
        """Record ``state`` as the folder's owner (replacing the file whole, never half written)."""
        path, scratch = self.root / OWNER_FILE, self.root / f"{OWNER_FILE}.new"
        record = orjson.dumps({"state": state, "persistent": persistent, "path": state_path})
        try:
            with contextlib.suppress(FileNotFoundError):
                scratch.unlink()
            fd = _open_output(scratch, _NEW_FILE | os.O_EXCL)
            with os.fdopen(fd, "wb") as handle:
                handle.write(record + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(scratch, path)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror}") from exc

    def _relative(self, destination: str) -> str:
        if destination == "contacts":
            return CONTACTS_FILE
        if destination == "dead-letter":
            return DEAD_LETTER_FILE
        if destination == "status":
            return STATUS_FILE
        return f"{QUEUE_DIR}/{destination}.jsonl"

    def write(self, destination: str, line: bytes) -> None:
        """Append one record; ``destination`` is ``contacts``, ``dead-letter``, ``status`` or a queue name.

        Every output line passes here: this is where line breaks inside strings are escaped.
        """
        handle = self._files.get(destination)
        if handle is None:
            handle = self._open(destination)
        else:
            self._files.move_to_end(destination)
        try:
            handle.write(escape_line_breaks(line) + b"\n")
        except OSError as exc:
            raise OutputError(f"cannot write {self._relative(destination)}: {exc.strerror}") from exc

    def _open(self, destination: str) -> BinaryIO:
        if len(self._files) >= self._max_open:
            self._close(next(iter(self._files)))
        path = self.root / self._relative(destination)
        try:
            fd = _open_output(path, _NEW_FILE | os.O_APPEND)
        except OutputError as exc:
            if not (self._files and getattr(exc.__cause__, "errno", None) == errno.EMFILE):
                raise
            self._max_open = len(self._files)  # the process is out of descriptors: a smaller pool from now on
            self._close(next(iter(self._files)))
            fd = _open_output(path, _NEW_FILE | os.O_APPEND)
        handle = os.fdopen(fd, "ab", buffering=1 << 16)
        self._files[destination] = handle
        return handle

    def _close(self, destination: str) -> None:
        """Flush and close one file, keeping its size for the next checkpoint."""
        handle = self._files.pop(destination)
        try:
            self._sizes[self._relative(destination)] = self._flush(handle)
        finally:
            with contextlib.suppress(OSError):
                handle.close()

    def _flush(self, handle: BinaryIO) -> int:
        try:
            handle.flush()
            if self._sync:
                os.fsync(handle.fileno())
            return handle.tell()
        except OSError as exc:
            raise OutputError(f"cannot write outputs in {self.root}: {exc.strerror}") from exc

    def checkpoint(self) -> dict[str, int]:
        """Flush everything written so far and return each file's size (relative path -> bytes)."""
        for destination, handle in self._files.items():
            self._sizes[self._relative(destination)] = self._flush(handle)
        return dict(self._sizes)

    def restore(self, sizes: dict[str, int]) -> None:
        """Cut the folder back to a checkpoint (call before writing): files made after it become empty.

        A fresh state restores ``{}``: outputs left by another state are emptied, not appended to.
        """
        self._sizes = dict(sizes)
        for path in sorted(self._existing()):
            relative = path.relative_to(self.root).as_posix()
            size = sizes.get(relative, 0)
            fd = _open_output(path, os.O_WRONLY)
            try:
                if os.fstat(fd).st_size > size:
                    os.ftruncate(fd, size)
            except OSError as exc:
                raise OutputError(f"cannot restore {path}: {exc.strerror}") from exc
            finally:
                os.close(fd)
        for destination in ("contacts", "dead-letter", "status"):  # present, if empty, after every run
            self._open(destination)

    def _existing(self) -> list[Path]:
        found = [self.root / CONTACTS_FILE, self.root / DEAD_LETTER_FILE, self.root / STATUS_FILE]
        found += list((self.root / QUEUE_DIR).glob("*.jsonl"))
        return [p for p in found if os.path.lexists(p)]

    def close(self) -> None:
        """Close every file and the lock; what cannot be flushed now is cut away by the next run's restore."""
        for handle in self._files.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._files.clear()
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1


def _open_output(path: Path, flags: int) -> int:
    """``os.open`` of a file in the output folder: a regular file with no other link, never a link.

    Opened without waiting (a FIFO would block the open until a reader comes), then checked on the
    descriptor itself, so nothing is written to or cut before the check: a symbolic link, a pipe or
    device, or a hard link to a file elsewhere would have the run hang or change that file.
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        raise OutputError(f"cannot open {path}: {_reason(exc)}") from exc
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise OutputError(f"cannot open {path}: it is not a regular file (a pipe, socket or device)")
        if found.st_nlink > 1:
            raise OutputError(
                f"cannot open {path}: it has other hard links, which tracer would change too; remove it, "
                "or replace it by a copy"
            )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link, and tracer does not follow links in its output folder"
    if exc.errno == errno.ENXIO:  # a FIFO opened for writing without a reader, or a device
        return "it is not a regular file (a pipe, socket or device)"
    return exc.strerror or str(exc)
