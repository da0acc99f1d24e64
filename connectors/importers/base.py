"""The importer framework: a feed ``Kind`` turns records into tracer events; ``run_import`` does the rest.

Every importer has the same duties, so they live here once: read the files (CSV by default,
connectors/importers/csvfeed.py), count every record once in a ``Report``, check each event with the
engine's own validator (``tracer.events.parse_line``) before it is written, so what an import writes
``tracer run`` accepts, and write the output whole or not at all (connectors/outfile.py). A kind only
says what a record means: its ``start`` builds a ``Converter`` for one import, whose ``row`` returns
the record's events or raises ``Rejected`` (with a reason a person can act on, never the record's
values) or ``NotTraced`` (what this engine does not trace: a bus tap).

A converter may hold a record (return None, or leave a plain row out of what ``frame`` returns):
metro taps wait for their pair. It then settles that record later, through the ``Context``
(``emit``, ``written``, ``written_lines``, ``reject`` or ``not_traced``), at the latest in its
``end``; the report's check catches a record never settled.

Valid by construction. The engine's check costs about as much as everything else an importer does
(7-12 us an event), so the fast paths (``frame``; ``Context.written`` and ``written_lines`` for
taps) skip it, and stay safe as follows: a line's fields are either *shared* by many lines (a
flight, a ride on a run with its stations, times and confidence), which the kind checks with
``parse_line`` once for each distinct value, on a whole line it builds, before any line uses it
(metro taps check each field of a ride where it can be wrong, once per distinct value, and per ride
only the rule joining two of them: ``taps.Lines``); or *per row* (a person id: ``pid:`` and 24 hex
digits; a trip id built of such an id, digits and an already checked service), whose form the engine
accepts by construction and whose only limit (an id's length) is checked per row. A line that cannot
be shown valid that way goes the checked way (``Context.emit``), which gives the engine's reason.
``run_import(..., recheck=True)`` re-parses every line written the fast way and fails loudly on one
the engine refuses: the tests run the fast paths with it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from connectors.importers.columnar import NUMBER, RENAMED, Chunk, read_chunks
from connectors.importers.csvfeed import BadRow, read_rows
from connectors.importers.holders import with_card_holders
from connectors.importers.identity import PersonIds
from connectors.importers.report import NotTraced, Rejected, Report
from connectors.outfile import Output, output_file, refuse_overwriting
from tracer.errors import ConfigError, InputError, InvalidEvent
from tracer.events import parse_line
from tracer.jsonl import json_record
from tracer.settings import Settings

Record = Mapping[str, str]  # a row's fields by column name
_BATCH = 4096  # records' lines written at once on the row path
Events = list[dict[str, Any]]


class Converter(Protocol):
    def row(self, record: Record, line: int) -> Events | None:
        """The record's events (none is fine), or None when held to be settled later."""

    def end(self) -> None:
        """Settle every held record (through the Context): the input has ended."""


class FrameConverter(Converter, Protocol):
    """A converter with a fast path (connectors/importers/columnar.py): ``frame`` takes plain rows
    as columns (``line`` and the kind's columns) and returns the JSON lines (``line``, ``json``;
    without the newline) of the rows it converted, each exactly the line ``row`` would give and
    valid for the engine, and the rows it leaves to ``row`` (the same columns): every row it cannot
    convert with certainty, and every row whose outcome depends on another (a repeat), among them
    and ``others``, the chunk's rows that were not plain (which ``row`` does after the converted ones).
    A row in neither is held: counted as read, and settled by ``end`` (metro taps)."""

    def frame(self, rows: pl.DataFrame, others: list[Record]) -> tuple[pl.DataFrame, pl.DataFrame]: ...


@dataclass(frozen=True)
class Kind:
    """A feed format: its name (``tracer import NAME``), its columns, and how its records convert."""

    name: str
    help: str
    what: str  # the format in an error: "a flight manifest"
    required: tuple[str, ...]
    optional: tuple[str, ...]
    start: Callable[[Context], Converter]
    identity: bool = True  # maps ID numbers: needs the identity key
    arguments: Callable[[argparse.ArgumentParser], None] | None = None  # its own options (--timetable)
    read: Callable[[str, Kind], Iterator[tuple[int, dict[str, str]] | BadRow]] | None = None  # not CSV
    cards: bool = False  # names riders by transport card: takes a card-holder list (--card-holders)
    plain: Callable[[str], bool] | None = None  # with ``read``: whether a file is CSV of the kind's columns (fast)


@dataclass
class Context:
    """What a converter may use during one import: the identity, the settings, its own options,
    and the ways to settle a held record."""

    settings: Settings
    ids: PersonIds | None
    options: argparse.Namespace
    report: Report = field(default_factory=Report)
    where: Callable[[int], str] = lambda line: f"line {line}"
    pending: list[tuple[int, bytes]] = field(default_factory=list)  # (line, its events' lines), to write
    recheck: bool = False  # re-parse the lines written valid by construction (tests)
    columnar: bool = True  # the fast path (False: the reference, row by row)
    converted: pl.DataFrame | None = None  # ``written_lines``: (line, json) settled by ``end``, to write

    @property
    def person_ids(self) -> PersonIds:
        """The identity, for a kind that needs it (``run_import`` refuses to start without it)."""
        assert self.ids is not None
        return self.ids

    def emit(self, line: int, events: Events, clean: bool = True) -> None:
        """Count the record of ``line`` written, with its events, once the engine accepts every one;
        else rejected whole, with the engine's reason. ``clean``: used without a caveat."""
        max_ride_us = int(self.settings.rules.max_ride_hours * 3_600_000_000)
        lines = [json_record(event) for event in events]
        try:
            for encoded in lines:
                parse_line(encoded, max_ride_us)
        except InvalidEvent as exc:
            self.reject(line, f"the engine refuses it: {exc.reason}")
            return
        self.pending.append((line, b"".join(lines)))
        self.report.written += 1
        self.report.events += len(lines)
        self.report.clean += clean

    def written(self, line: int, lines: bytes, events: int, clean: bool = True) -> None:
        """Count the record of ``line`` written, with ``events`` lines (``lines``, each ending in a
        newline) valid by construction (the module's docstring): no per-event check."""
        if self.recheck:
            self.assert_valid(lines)
        self.pending.append((line, lines))
        self.report.written += 1
        self.report.events += events
        self.report.clean += clean

    def written_lines(self, lines: pl.DataFrame, records: int, events: int, clean: int) -> None:
        """Count ``records`` written as ``lines`` (``line``, ``json``: a record's lines without the
        last newline, in line order), valid by construction; once, from a converter's ``end``."""
        assert self.converted is None, "written_lines is called once"
        if self.recheck and lines.height:
            self.assert_valid(lines["json"].str.join("\n").item().encode())
        self.converted = lines
        self.report.written += records
        self.report.events += events
        self.report.clean += clean

    def assert_valid(self, lines: bytes) -> None:
        """AssertionError unless the engine accepts every line of ``lines`` (the ``recheck`` of the
        fast paths)."""
        max_ride_us = int(self.settings.rules.max_ride_hours * 3_600_000_000)
        for encoded in lines.splitlines():
            try:
                parse_line(encoded, max_ride_us)
            except InvalidEvent as exc:
                raise AssertionError(f"a line built valid is not: {exc.reason}: {encoded!r}") from None

    def reject(self, line: int, reason: str) -> None:
        self.report.reject(self.where(line), reason)

    def not_traced(self, what: str) -> None:
        self.report.not_traced[what] += 1


def run_import(
    kind: Kind,
    files: Sequence[str],
    out: str,
    settings: Settings,
    ids: PersonIds | None,
    options: argparse.Namespace | None = None,
    columnar: bool = True,
    recheck: bool = False,
) -> Report:
    """Convert ``files`` (read as one feed, in order) to events in ``out`` (``-``: standard output),
    written whole or not at all; the report of every record. InputError when a file cannot be read or
    lacks a required column, OutputError when ``out`` cannot be written: never one for the other.
    ``columnar``: the fast path for kinds that have one (False: every row by ``row``, the reference).
    ``recheck``: re-parse every line written valid by construction, AssertionError on one the engine
    refuses (the tests' guard of the fast paths; the module's docstring)."""
    if kind.identity and ids is None:
        raise ConfigError(f"tracer import {kind.name} needs the identity key")
    holders = getattr(options, "card_holders", None) if kind.cards else None
    refuse_overwriting(out, [*files, holders])
    context = Context(settings, ids, options or argparse.Namespace(), recheck=recheck, columnar=columnar)
    if holders is not None and ids is not None:
        context.ids = with_card_holders(ids, holders, context.report)
    read = kind.read or (lambda path, kind: read_rows(path, kind.required, kind.optional, kind.what))
    with output_file(out) as target:
        converter = kind.start(context)
        fast = columnar and hasattr(converter, "frame")
        for path in files:
            if len(files) > 1:
                context.where = lambda line, path=path: f"{path} line {line}"
            try:
                if fast and (kind.read is None or (kind.plain is not None and kind.plain(path))):
                    for chunk in read_chunks(path, kind.required, kind.optional, kind.what):
                        _chunk(context, converter, chunk, target)  # type: ignore[arg-type]
                else:
                    for item in read(path, kind):
                        _convert(context, converter, item)
                        if len(context.pending) >= _BATCH:
                            _write(context, target)
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
        converter.end()
        _write(context, target, context.converted)
    context.report.cards = context.ids.cards if context.ids is not None else None
    context.report.check()
    return context.report


def _chunk(context: Context, converter: FrameConverter, chunk: Chunk, target: Output) -> None:
    """The plain rows through ``frame``, the others and those it left through ``row``, all written
    in line order (the rows it holds: by its ``end``)."""
    converted, left = converter.frame(chunk.plain, [item[1] for item in chunk.others if not isinstance(item, BadRow)])
    assert converted.height + left.height <= chunk.plain.height, "a frame converts, leaves or holds each row"
    if context.recheck and converted.height:
        context.assert_valid(converted["json"].str.join("\n").item().encode())
    context.report.records += chunk.plain.height - left.height  # the rest are counted one by one
    context.report.written += converted.height
    context.report.events += converted.height
    context.report.clean += converted.height
    rows = [_record(row) for row in left.to_dicts()]
    for item in sorted([*rows, *chunk.others], key=_line):
        _convert(context, converter, item)
    _write(context, target, converted)


def _record(row: dict[str, str]) -> tuple[int, dict[str, str]]:
    """A row a frame left, as the row reader gives it: (line, record), a column named ``line`` restored."""
    line = row.pop(NUMBER)
    if RENAMED in row:
        row[NUMBER] = row.pop(RENAMED)
    return line, row


def _line(item: tuple[int, dict[str, str]] | BadRow) -> int:
    return item.line if isinstance(item, BadRow) else item[0]


def _write(context: Context, target: Output, converted: pl.DataFrame | None = None) -> None:
    """``converted`` (``line``, ``json``, in line order) and the context's pending lines, merged in
    line order. Polars writes the merged column straight to the file (``Output.write_lines``): the
    lines are never one Python string, nor copied to bytes (about 0.35 us a line less than joining,
    encoding and writing them)."""
    pending, context.pending = sorted(context.pending, key=lambda item: item[0]), []
    if converted is None or converted.height == 0:
        target.write(b"".join(encoded for _, encoded in pending))
        return
    if pending:
        try:  # each record's lines as one string without its last newline (a record may have none)
            lines = [(line, encoded[:-1].decode()) for line, encoded in pending if encoded]
        except UnicodeDecodeError:  # not from json_record: written as they are, between the frame's
            _write_between(target, converted, pending)
            return
        extra = pl.DataFrame(lines, schema={"line": converted.schema["line"], "json": pl.String}, orient="row")
        converted = converted.select("line", "json").merge_sorted(extra, "line")
    target.write_lines(converted.select("json"))


def _write_between(target: Output, converted: pl.DataFrame, pending: list[tuple[int, bytes]]) -> None:
    """``_write``'s merge with the pending lines as bytes, cut in around the frame's lines."""
    json = converted["json"]
    whole = (json.str.join("\n").item() + "\n").encode()  # encoded once, then cut in bytes
    starts = pl.concat([pl.Series([0], dtype=pl.Int64), (json.str.len_bytes().cast(pl.Int64) + 1).cum_sum()])
    cuts = converted["line"].search_sorted(pl.Series([line for line, _ in pending], dtype=pl.UInt32))
    parts, start = [], 0
    for at, (_, encoded) in zip([*starts.gather(cuts).to_list(), len(whole)], [*pending, (0, b"")], strict=True):
        parts.append(whole[start:at])
        parts.append(encoded)
        start = at
    target.write(b"".join(parts))


def _convert(context: Context, converter: Converter, item: tuple[int, dict[str, str]] | BadRow) -> None:
    context.report.records += 1
    if isinstance(item, BadRow):
        context.reject(item.line, item.reason)
        return
    line, record = item
    noted = context.report.noted
    try:
        events = converter.row(record, line)
    except Rejected as exc:
        context.reject(line, str(exc))
    except NotTraced as exc:
        context.not_traced(str(exc))
    else:
        if events is not None:
            context.emit(line, events, clean=context.report.noted == noted)
