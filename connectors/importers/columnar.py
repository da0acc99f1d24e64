"""The fast way in: a CSV file read as columns (polars), its plain rows converted a column at a time.

Reading row by row costs microseconds a row in Python, more than the whole budget of an importer
(docs/import.md, "Speed"). So a file is read in chunks of lines with polars, and each line is
judged at once, a column at a time: a *plain* line (valid UTF-8, no quote, the header's number of
fields, not blank, short) is split on commas into columns; every other line (a quoted field, a row
cut short, a bad byte, a quoted field running over several lines) is read by the csv module
exactly as the row reader reads it (csvfeed.records), with its line number. Both give the same
records; a kind's ``frame`` then converts the plain columns it can, and returns the rest to its
``row``, the reference, which gives every rejection its reason.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import polars as pl

from connectors.importers.csvfeed import FIELD_LIMIT, BadRow, Header, first_row, read_header, records

CHUNK_BYTES = 1 << 22  # lines are read this many bytes at a time; a chunk ends at a line's end
NUMBER = "line"  # a chunk's column of line numbers; a feed's own column of that name is read as ``RENAMED``
RENAMED = "line_"  # (metro taps have a ``line`` column: base._record gives a row its name back)
_BOM = b"\xef\xbb\xbf"


@dataclass
class Chunk:
    """The rows of some consecutive lines: the plain ones as columns (``line`` and the wanted
    columns, all strings; a wanted column named ``line`` as ``RENAMED``), the others as records or
    BadRows, in line order."""

    plain: pl.DataFrame
    others: list[tuple[int, dict[str, str]] | BadRow]


def read_chunks(
    path: str, required: Sequence[str], optional: Sequence[str] = (), what: str = "the feed"
) -> Iterator[Chunk]:
    """The rows of ``path`` chunk by chunk; the same records ``csvfeed.read_rows`` gives."""
    with open(path, "rb") as stream:
        head = stream.readline()
        while head.count(b'"') % 2:  # a quoted header name over several lines
            more = stream.readline()
            if not more:
                break
            head += more
        text = head.removeprefix(_BOM).decode("utf-8", "surrogateescape")
        first, lines = first_row(path, iter(io.StringIO(text, newline="")))
        header = read_header(path, first, required, optional, what)
        rest = b""
        while True:
            block = stream.read(CHUNK_BYTES)
            data = rest + block
            cut = _cut(data) if block else len(data)
            if cut == 0 and block:
                rest = data
                continue
            if cut:
                yield _chunk(data[:cut], header, lines)
                lines += data.count(b"\n", 0, cut)
            rest = data[cut:]
            if not block:
                return


def _cut(data: bytes) -> int:
    """Where a chunk may end: after its last newline outside a quoted field (0: none yet)."""
    cut = data.rfind(b"\n") + 1
    odd = data.count(b'"', 0, cut) % 2
    while cut and odd:
        before = data.rfind(b"\n", 0, cut - 1) + 1
        odd ^= data.count(b'"', before, cut) % 2
        cut = before
    return cut


def _chunk(data: bytes, header: Header, before: int) -> Chunk:
    if b"\x00" in data or data.count(b"\r") != data.count(b"\r\n"):  # splits polars would not make
        return Chunk(_empty(header), list(records(_text(data), header, before)))
    lines = pl.read_csv(
        data, has_header=False, separator="\x00", quote_char=None, encoding="utf8-lossy", infer_schema=False,
        new_columns=["raw"],
    ).with_row_index("line", offset=before + 1)
    raw = pl.col("raw")
    quotes = raw.str.count_matches('"', literal=True).fill_null(0)
    opened = (quotes % 2).cum_sum() - quotes % 2  # odd quote counts before a line: inside a quoted field
    plain = (
        raw.is_not_null() & (quotes == 0) & (opened % 2 == 0) & ~raw.str.contains("\ufffd", literal=True)
        & (raw.str.count_matches(",", literal=True) == header.width - 1) & (raw.str.len_chars() <= FIELD_LIMIT)
    )
    lines = lines.with_columns(plain.alias("plain"))
    fields = pl.col("raw").str.split_exact(",", header.width - 1)
    wanted = [fields.struct.field(f"field_{at}").alias(_named(name)) for name, at in header.positions.items()
              if at is not None]
    absent = [pl.lit("").alias(_named(name)) for name, at in header.positions.items() if at is None]
    columns = lines.filter("plain").select("line", *wanted, *absent)
    others = lines.filter(~pl.col("plain"))["line"].to_list()
    return Chunk(columns, _others(data, others, header, before) if others else [])


def _others(data: bytes, numbers: list[int], header: Header, before: int) -> list[tuple[int, dict[str, str]] | BadRow]:
    """The rows of the lines ``numbers`` (runs of consecutive lines read together: one record may
    span several), read as the row reader reads them."""
    raw = data.split(b"\n")
    found: list[tuple[int, dict[str, str]] | BadRow] = []
    start = 0
    while start < len(numbers):
        end = start
        while end + 1 < len(numbers) and numbers[end + 1] == numbers[end] + 1:
            end += 1
        first, last = numbers[start] - before - 1, numbers[end] - before - 1
        found += records(_text(b"\n".join(raw[first:last + 1]) + b"\n"), header, numbers[start] - 1)
        start = end + 1
    return found


def _text(data: bytes) -> io.StringIO:
    return io.StringIO(data.decode("utf-8", "surrogateescape"), newline="")


def _named(column: str) -> str:
    return RENAMED if column == NUMBER else column


def _empty(header: Header) -> pl.DataFrame:
    return pl.DataFrame(schema={NUMBER: pl.UInt32, **dict.fromkeys(map(_named, header.positions), pl.String)})
