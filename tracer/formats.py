"""What an input that is not JSON Lines is, and which ``tracer import`` turns it into events.

A data engineer's first try is ``tracer run manifest.csv``; "broken JSON" on every line says
nothing they can act on. So a line that is not JSON at all has its dead letter say what the input
looks like (a CSV file, an XLSX or gzip file, a JSON array) and what to run instead, from the
first line of the input (a CSV header names its importer) or, when that was not seen (a resumed or
followed input), from the line itself. Only lines the JSON parser already refused come here: a
line that is JSON costs nothing more (docs/rules.md, "Inputs that are not JSON Lines").

The importers' names are written here, not imported: ``tracer run`` must say which to use whether
or not that importer is installed, and their header sets are the formats of docs/import.md.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)
NOT_JSON = ("broken JSON", "not a JSON object")  # the parser's reasons (tracer/events.py) this refines
_BOM = b"\xef\xbb\xbf"
_SIGNATURES = (  # first bytes of files that are not text: what it is, the step first, and for tracer run
    (b"PK\x03\x04", "an XLSX workbook (or another zip file)", "save the sheet as CSV (UTF-8)", ", then convert it"),
    (b"\xd0\xcf\x11\xe0", "an XLS workbook", "save the sheet as CSV (UTF-8)", ", then convert it"),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first", " (zcat FILE | tracer run - ...)"),
)
_SEPARATORS = (",", "\t", ";", "|")
_WORDS = re.compile(r"[^\W_]+")
# A column name: begins with a letter, holds no JSON punctuation and no run of three digits. A first
# line with any other field (a date, an ID number, a fragment of a JSON line) is data, never shown:
# it would be copied into the reason of every later line of the input.
_NAME = re.compile(r"[^\W\d][^\"{}:]{0,63}")
_NUMBER = re.compile(r"[0-9]{3}")
KINDS = ("manifest", "tickets", "taps", "registry", "nosugar")  # every importer, as a person lists them
# Columns that tell each importer's format (lower-cased header words, English or Chinese), most
# specific first: the first importer whose words a header holds is named.
IMPORTERS = (
    ("nosugar", ({"t_date", "t_no", "t_type"},)),
    ("taps", ({"card_no"}, {"deal_type"}, {"card", "tap"}, {"卡号"}, {"交易类型"})),
    ("tickets", ({"train"}, {"train_no"}, {"车次"}, {"carriage"}, {"车厢"})),
    ("manifest", ({"flight"}, {"flight_no"}, {"航班"}, {"航班号"})),
    ("registry", ({"subdistrict"}, {"街道"}, {"residence"}, {"住址"})),
)


class FormatHint:
    """One input's hint: what its first line (when this reader reads it) says the input is. That is
    also said once on standard error (a warning naming the input): a run fed a CSV file otherwise
    ends with exit 0 and a count of dead letters, and the reason only inside them."""

    def __init__(self, sees_first_line: bool, name: str = "an input") -> None:
        self._sees_first = sees_first_line
        self._name = name  # the input's display name, for the warning
        self._file: str | None = None  # what the first line said, for every later line

    def reason(self, number: int, data: bytes, reason: str) -> str:
        """``reason`` for the dead letter of line ``number``, saying what the input is when the
        line was not JSON at all (unchanged otherwise)."""
        if not reason.startswith(NOT_JSON):
            return reason
        if number == 1 and self._sees_first:
            self._file = describe(data, header=True)
            if self._file:  # column names only (never a data row: ``describe``), no person's id
                log.warning("%s: %s (its lines go to the dead letters)", self._name, self._file)
        what = self._file or describe(data, header=False)
        return f"{what} ({reason})" if what else reason


def binary_file(data: bytes) -> tuple[str, str] | None:
    """(what it is, the step to take first) when ``data``, a file's first bytes, begin a file that is
    not text (``tracer import`` says it so)."""
    found = _signature(data)
    return None if found is None else (found[1], found[2])


def _signature(data: bytes) -> tuple[bytes, str, str, str] | None:
    return next((entry for entry in _SIGNATURES if data.startswith(entry[0])), None)


def describe(data: bytes, header: bool) -> str | None:
    """What ``data`` (a line that is not JSON) shows its input to be and what to do, or None."""
    found = _signature(data)
    if found is not None:
        _, what, step, for_run = found
        return f"not JSON Lines but {what}: {step}{for_run} with {_importer(None)}"
    text = data.removeprefix(_BOM).lstrip()
    if text.startswith(b"{"):
        return None  # a broken JSON object: a JSON Lines line after all
    if text.startswith(b"["):
        return ("not JSON Lines but a JSON array: tracer run reads one event object per line "
                "(jq -c '.[]' FILE | tracer run - ...)")
    try:
        line = text.decode("utf-8")
    except UnicodeDecodeError:
        return None
    separator = max(_SEPARATORS, key=line.count)
    if line.count(separator) == 0:
        return None
    columns = [column.strip().strip('"').strip() for column in line.split(separator)]
    if not header or not _names(columns):
        return f"not JSON Lines but a row of delimited values (a CSV file?): convert the file with {_importer(None)}"
    shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
    return f"not JSON Lines but a CSV file (header: {shown[:200]}): convert it with {_importer(columns)}"


def _names(columns: list[str]) -> bool:
    """Whether ``columns`` read as a header's column names (blank ones aside), not as values."""
    named = [column for column in columns if column]
    return bool(named) and all(_NAME.fullmatch(column) and not _NUMBER.search(column) for column in named)


def _importer(columns: list[str] | None) -> str:
    """The ``tracer import`` to run for a file with these header ``columns`` (None: not known)."""
    words = {word.lower() for column in columns or () for word in [column, *_WORDS.findall(column)]}
    for kind, signs in IMPORTERS:
        if any(sign <= words for sign in signs):
            return f"`tracer import {kind} FILE --out events.jsonl`, then tracer run events.jsonl"
    return f"the `tracer import {'|'.join(KINDS)}` that fits its columns (docs/import.md), then tracer run its output"
