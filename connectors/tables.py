"""Rows of a view written out as a person reads them: an aligned text table, CSV, JSON or XLSX.

Every writer takes the same rows (dicts with the same keys, in order) and returns bytes, so a
command writes them through ``connectors.outfile`` whole or not at all. Lists are joined with a
space and absent values are empty cells. CSV starts with a byte-order mark and text cells that a
spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) are quoted with a ``'``:
ids come from outside feeds (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from typing import Any

import xlsxwriter

from tracer.jsonl import json_record

FORMATS = ("table", "csv", "json", "xlsx")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], form: str) -> bytes:
    """``rows`` in format ``form`` (one of ``FORMATS``)."""
    if form == "json":
        return json_record(list(rows), indent=True)
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    if form == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_defused(cell) for cell in line] for line in cells])
        return ("\ufeff" + text.getvalue()).encode()
    if form == "xlsx":
        return _xlsx(columns, [[row.get(column) for column in columns] for row in rows])
    return _table(columns, cells)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return " ".join(str(item) for item in value.values() if item is not None)
    return str(value)


def _defused(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _width(text: str) -> int:
    """Columns a terminal gives ``text``: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _table(columns: Sequence[str], cells: list[list[str]]) -> bytes:
    shown = [[cell if cell.isprintable() else cell.encode("unicode_escape").decode() for cell in line]
             for line in cells]
    widths = [max([_width(column)] + [_width(line[index]) for line in shown]) for index, column in enumerate(columns)]
    lines = [list(columns), *shown]
    text = "".join("  ".join(cell + " " * (width - _width(cell)) for cell, width in zip(line, widths, strict=True))
                   .rstrip() + "\n" for line in lines)
    return text.encode()


def _xlsx(columns: Sequence[str], rows: list[list[Any]]) -> bytes:
    """One sheet, a header row, values as strings, numbers and booleans (never formulas)."""
    target = io.BytesIO()
    book = xlsxwriter.Workbook(target, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_numbers": False, "strings_to_urls": False})
    sheet = book.add_worksheet("tracer")
    sheet.write_row(0, 0, columns)
    for number, row in enumerate(rows, start=1):
        for index, value in enumerate(row):
            if isinstance(value, bool | int | float):
                sheet.write(number, index, value)
            elif value is not None:
                sheet.write_string(number, index, _cell(value))
    book.close()
    return target.getvalue()
