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

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import polars as pl

from connectors.importers.csvfeed import FIELD_LIMIT, BadRow, Header, field_limit, first_row, read_header, records
from tracer.documents import CHECK, WEIGHTS

CHUNK_BYTES = 1 << 22  # lines are read this many bytes at a time; a chunk ends at a line's end
NUMBER = "line"  # a chunk's column of line numbers; a feed's own column of that name is read as ``RENAMED``
RENAMED = "line_"  # (metro taps have a ``line`` column: base._record gives a row its name back)
_BOM = b"\xef\xbb\xbf"
_CHECK_BYTES = dict(enumerate(CHECK.encode()))  # an ID number's weighted digit sum mod 11 -> its 18th byte


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
        while (quoted := _quoted(head, len(head))) and quoted[1] < len(head):  # a quoted name over lines
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
                lines += _line_ends(data, cut)
            rest = data[cut:]
            if not block:
                return


def _line_ends(data: bytes, cut: int) -> int:
    """The lines in ``data[:cut]`` as the csv module counts them (csvfeed.records' line numbers): a
    carriage return alone ends a line too."""
    ends = data.count(b"\n", 0, cut)
    if b"\r" in data:
        ends += data.count(b"\r", 0, cut) - data.count(b"\r\n", 0, cut)
    return ends


# A quoted field as the csv module reads one: a quote at a field's start (a line's, or after a
# comma), up to the quote that closes it, a doubled quote inside it being one quote. A quote
# anywhere else (inside an unquoted field, after a quoted part's closing quote) is taken as it is.
_QUOTED = re.compile(rb'(?<![^,\r\n])"(?:[^"]|"")*+(?:"|\Z)')


def _quoted(data: bytes, end: int) -> tuple[list[tuple[int, int]], int] | None:
    """The quoted fields of ``data[:end]`` that hold a line break (their start and end), and where
    ``data[:end]`` may be cut (after its last newline outside a quoted field); None where the csv
    module's own reading must decide: a row so long that a field of it may pass FIELD_LIMIT (the
    csv module then drops the rest of its line and reads the next as a new row)."""
    spans, start, after, cut = [], 0, 0, end  # start: no row holding a later field begins before it
    for found in _QUOTED.finditer(data, 0, end):
        opened, closed = found.span()
        newline = data.rfind(b"\n", after, opened)
        if newline >= 0:
            start = newline + 1
        if closed - start > FIELD_LIMIT:
            return None
        if closed == end:  # not closed before the data's last line end: the chunk ends before its row
            return spans, start
        if data.find(b"\n", opened, closed) >= 0:
            spans.append((opened, closed))
        after = closed
    return spans, cut


def _cut(data: bytes) -> int:
    """Where a chunk may end: after its last newline outside a quoted field (0: none yet)."""
    end = data.rfind(b"\n") + 1
    if data.find(b'"', 0, end) < 0:
        return end
    quoted = _quoted(data, end)
    return _csv_cut(data, end) if quoted is None else quoted[1]


def _csv_cut(data: bytes, end: int) -> int:
    """``_cut`` by the csv module itself: the last newline of ``data[:end]`` that ends a row as
    ``records`` reads it (a line after the last one tells a row ended by the data's end from one
    ended by its line end)."""
    text = data[:end].decode("utf-8", "surrogateescape")
    lines = io.StringIO(text, newline="").readlines()
    ends, at = [0], 0
    for line in lines:
        at += len(line.encode("utf-8", "surrogateescape"))
        ends.append(at)
    cut = 0
    with field_limit():
        reader = csv.reader(iter([*lines, "\n"]))
        while True:
            try:
                next(reader)
            except StopIteration:
                return cut
            except csv.Error:
                pass
            if reader.line_num < len(ends) and data[ends[reader.line_num] - 1] == 10:
                cut = ends[reader.line_num]


def _chunk(data: bytes, header: Header, before: int) -> Chunk:
    if b"\x00" in data or (b"\r" in data and data.count(b"\r") != data.count(b"\r\n")):  # splits polars would not make
        return Chunk(_empty(header), list(records(_text(data), header, before)))
    lines = pl.read_csv(
        data, has_header=False, separator="\x00", quote_char=None, encoding="utf8-lossy", infer_schema=False,
        new_columns=["raw"],
    ).with_row_index("line", offset=before + 1)
    raw = pl.col("raw")
    # Split into one field more than the header's: a line has the header's number of fields when
    # its last one is there and the one after is not (cheaper than counting its commas first).
    fields = raw.str.splitn(",", header.width + 1).alias("fields")
    found = pl.col("fields").struct
    plain = (
        raw.is_not_null() & ~raw.str.contains("\ufffd", literal=True) & (raw.str.len_bytes() <= FIELD_LIMIT)
        & found.field(f"field_{header.width - 1}").is_not_null() & found.field(f"field_{header.width}").is_null()
    )
    if b'"' in data:
        quoted = _quoted(data, len(data))
        if quoted is None:
            return Chunk(_empty(header), list(records(_text(data), header, before)))
        inside = pl.Series(_continued(data, *quoted), dtype=pl.UInt32) + (before + 1)
        plain = plain & ~raw.str.contains('"', literal=True) & ~pl.col("line").is_in(inside.implode())
    lines = lines.with_columns(fields).with_columns(plain.alias("plain"))
    wanted = [found.field(f"field_{at}").alias(_named(name)) for name, at in header.positions.items()
              if at is not None]
    absent = [pl.lit("").alias(_named(name)) for name, at in header.positions.items() if at is None]
    columns = lines.filter("plain").select("line", *wanted, *absent)
    others = lines.filter(~pl.col("plain"))["line"].to_list()
    return Chunk(columns, _others(data, others, header, before) if others else [])


def _continued(data: bytes, spans: list[tuple[int, int]], cut: int) -> list[int]:
    """The lines (from 0) a quoted field of ``spans`` runs on to, and those from ``cut`` on (a
    quoted field the data ends in)."""
    lines, counted, at = [], 0, 0
    for opened, closed in spans:
        counted += data.count(b"\n", at, opened)
        last = counted + data.count(b"\n", opened, closed)
        lines.extend(range(counted + 1, last + 1))
        counted, at = last, closed
    if cut < len(data):
        lines.extend(range(data.count(b"\n", 0, cut), data.count(b"\n") + 1))
    return lines


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


def plain_documents(rows: pl.DataFrame, kind: str, number: str) -> pl.Series:
    """Whether the columns ``kind`` (KINDS names) and ``number`` (``identity.plain_form``) of each
    row are a valid document as written, nothing more to normalise: every fast path's ID check (any
    other number, full-width beyond digits, spaced, 15 digits, wrong, goes to ``identity.normalise``,
    which says why it is refused). An ID card's check character is computed from its bytes, on the
    ID card rows only: each number of 18 bytes read as an array of them (``bin.reinterpret``) and
    the weighted sum taken over its elements, instead of slicing and parsing 17 strings a row (0.3
    against 0.6 us a row); the other kinds' numbers only matched."""
    kinds = rows[kind]
    cards = (kinds == "id_card").fill_null(False)
    matched = pl.col(number).str.contains(r"^[A-Z0-9]{5,32}$").fill_null(False)
    if not cards.any():
        return rows.select(kinds.is_not_null() & matched).to_series()
    others = kinds.is_not_null() & ~cards  # the other kinds' numbers matched on their rows alone
    plain = cards & False
    if others.any():
        plain = plain.scatter(others.arg_true(), rows.select(pl.col(number).filter(others)).select(matched).to_series())
    digits = pl.col("_bytes").arr
    total = pl.sum_horizontal([digits.get(at).cast(pl.Int16) * weight for at, weight in enumerate(WEIGHTS)])
    check = ((total - 48 * sum(WEIGHTS)) % 11).replace_strict(_CHECK_BYTES, return_dtype=pl.UInt8)
    card = (digits.get(17) == check) & pl.col(number).str.contains(r"^[0-9]{17}[0-9X]$")
    found = rows.filter(cards).select(
        number, pl.col(number).cast(pl.Binary).bin.reinterpret(dtype=pl.Array(pl.UInt8, 18)).alias("_bytes")
    )
    return plain.scatter(cards.arg_true(), found.select(card.fill_null(False)).to_series())


def by_value(rows: pl.DataFrame, column: str, expression: pl.Expr) -> pl.Series:
    """``expression`` (of the column ``column``) for each row, computed once per distinct value and
    joined back: for a column of values that repeat and that an expression costs much on (the ID
    type's ``to_lowercase`` over Chinese text: 2-3 against 7 ms for 54,000 rows; a local time's
    parse and time zone, 12 against 17 ms for 100,000 taps of 18,000 distinct seconds, where a
    dict's ``replace_strict`` took 28)."""
    values = rows.select(pl.col(column).unique())
    results = values.select(column, expression.alias("_result"))
    return rows.select(column).join(results, on=column, how="left", maintain_order="left", nulls_equal=True)[
        "_result"]


def by_number(values: list[str], number: pl.Expr) -> pl.Expr:
    """``values[number]`` of each row (null for a null number): a fast path's parts numbered per
    chunk (a ride, a place, a carriage code), each row holding its part's number."""
    return pl.lit(pl.Series(values, dtype=pl.String)).gather(number)
