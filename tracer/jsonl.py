"""One JSON Lines record, for every output of tracer.

orjson escapes the control characters but writes NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR raw,
and ``str.splitlines()`` splits on them: a record holding one (in an id, a raw dead-letter line)
would become two for such a reader. Escaped, they are the same JSON value and one line.
"""

from __future__ import annotations

from typing import Any

import orjson

# In UTF-8, as orjson writes them; inside a record they can only stand in a string.
_LINE_BREAKS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def escape_line_breaks(record: bytes) -> bytes:
    """A JSON record with every character that a line splitter might take for a line end escaped."""
    if record.isascii():
        return record
    for raw, escaped in _LINE_BREAKS:
        record = record.replace(raw, escaped)
    return record


def json_record(value: Any, *, indent: bool = False) -> bytes:
    """``value`` as JSON ending in a newline; a compact record is exactly one line for any reader."""
    return escape_line_breaks(orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0)) + b"\n"
