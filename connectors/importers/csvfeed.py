"""Reading an outside CSV file row by row, where a bad row costs one report line, never the file.

Feeds come from spreadsheets and exports: a byte-order mark, blank lines, a row cut short or with
a stray comma, a byte that is not UTF-8, a runaway quote that swallows the rest of the file into
one field. Each such row becomes a ``BadRow`` (its line and why) and reading goes on; only a header
that lacks a required column, or names one twice, stops the import (``InputError``), since then no
row can be read right. Columns are matched by name, trimmed and case-insensitive, in any order;
an absent optional column reads as empty.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from tracer.errors import InputError
from tracer.formats import binary_file

FIELD_LIMIT = 65_536  # characters in one field; no real record's field is near it


class BadRow(NamedTuple):
    """A CSV row that cannot be a record: its (last) line in the file and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class Header:
    """Where each wanted column is in a row (None: absent, read as empty)."""

    width: int
    positions: dict[str, int | None]


def read_header(
    path: str, header: Sequence[str], required: Sequence[str], optional: Sequence[str], what: str
) -> Header:
    """The positions of ``required`` and ``optional`` columns; InputError naming what is wrong."""
    names = [name.strip().lower() for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1 and name})
    if repeated:
        raise InputError(f"{path} names the column(s) {', '.join(map(repr, repeated))} more than once: which is meant?")
    missing = [name for name in required if name not in names]
    if missing:
        _not_text(path)
        raise InputError(f"{path} lacks the column(s) {', '.join(missing)}: {what} has {', '.join(required)}")
    return Header(len(names), {name: names.index(name) if name in names else None for name in (*required, *optional)})


def _not_text(path: str) -> None:
    """InputError saying what ``path`` is when it is no text file at all (a workbook, a gzip file),
    rather than that its 'header' lacks columns."""
    try:
        with open(path, "rb") as stream:
            found = binary_file(stream.read(8))
    except OSError:
        return  # not a file that can be read again (a pipe): the missing columns are said
    if found is not None:
        what, step = found
        raise InputError(f"{path} is {what}, not a CSV file: {step}, then import it")


def read_rows(
    path: str, required: Sequence[str], optional: Sequence[str] = (), what: str = "the feed"
) -> Iterator[tuple[int, dict[str, str]] | BadRow]:
    """(line, record) for every row of ``path``, with a record's fields named by column; a row that
    is not a record as a ``BadRow``. ``what`` names the format in the missing-column error.

    Undecodable bytes are kept as surrogates (``surrogateescape``) so one bad byte costs one row.
    """
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as stream:
        first, lines = first_row(path, stream)
        header = read_header(path, first, required, optional, what)
        yield from records(stream, header, lines)


def first_row(path: str, stream: Iterator[str]) -> tuple[list[str], int]:
    """The header row of ``stream`` and the lines it took."""
    try:
        with field_limit():
            reader = csv.reader(stream)
            return next(reader, []), reader.line_num
    except csv.Error as exc:
        raise InputError(f"{path} has no usable header: {exc}") from None


def records(
    stream: Iterable[str], header: Header, before: int
) -> Iterator[tuple[int, dict[str, str]] | BadRow]:
    """The rows of ``stream`` (text after the header), numbered from ``before`` + 1, as records or
    BadRows. A field over FIELD_LIMIT ends its row there, and what follows is read as rows and
    judged like any other."""
    wanted = [(name, at) for name, at in header.positions.items() if at is not None]
    absent = dict.fromkeys([name for name, at in header.positions.items() if at is None], "")
    with field_limit():
        rows = csv.reader(stream)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                yield BadRow(before + rows.line_num, f"broken CSV row: {exc}")
                continue
            if not row or row == [""]:
                continue  # a blank line holds no record
            line = before + rows.line_num
            if len(row) != header.width:
                yield BadRow(line, f"{len(row)} fields where the header has {header.width}")
            elif not "".join(row).isascii() and not _utf8(row):
                yield BadRow(line, "invalid UTF-8")
            else:
                yield line, {name: row[at] for name, at in wanted} | absent


@contextlib.contextmanager
def field_limit() -> Iterator[None]:
    """csv's field limit (a process-wide setting) at FIELD_LIMIT, restored after."""
    previous = csv.field_size_limit(FIELD_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _utf8(row: list[str]) -> bool:
    try:
        "".join(row).encode()
    except UnicodeEncodeError:
        return False
    return True
