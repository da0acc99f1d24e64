"""Local times as feeds write them -> ISO 8601 with the offset, the form tracer events carry.

Exports write ``2020-01-15 08:30``, ``2020/1/15 8:30:05`` or a bare ``08:30`` on a row that has its
date elsewhere; none says its zone. They are read in the rules' time zone (``rules.timezone``,
Asia/Shanghai), whose offset for that day is then written out, so the engine compares instants.
A time given with an offset (``2020-01-15T08:30:00+08:00``) is kept as it is. Anything else is a
``Rejected`` naming the field and the form expected; each distinct text is read once (a flight's
departure repeats on every row of its manifest).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from connectors.importers.report import Rejected
from tracer.errors import InvalidEvent
from tracer.events import parse_time

_STAMP = re.compile(  # 2020-01-15 08:30[:05], 2020/1/15 8:30, 2020-01-15T08:30:05
    r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})[ T]+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?"
)
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")  # 08:30 on the row's date
_OFFSET = re.compile(r".*(?:[+-][0-9]{2}:[0-9]{2}|Z)")
_CACHE = 1 << 16


class LocalTimes:
    """Reads times in one zone; remembers what it read."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._seen: dict[tuple[str, str | None], str] = {}

    def read(self, text: str, field: str, day: str | None = None, after: str | None = None) -> str:
        """``text`` as ISO 8601 with offset. A clock time alone is on ``day`` (``YYYY-MM-DD``), or
        the day after when it would not be later than ``after`` (an arrival after midnight)."""
        key = (text, day, after)
        found = self._seen.get(key)
        if found is None:
            found = self._read(text, field, day, after)
            if len(self._seen) >= _CACHE:
                self._seen.clear()
            self._seen[key] = found
        return found

    def _read(self, text: str, field: str, day: str | None, after: str | None) -> str:
        plain = unicodedata.normalize("NFKC", text).strip()
        if not plain:
            raise Rejected(f"no {field}")
        if _OFFSET.fullmatch(plain):
            try:
                parse_time(plain)
            except InvalidEvent:
                raise Rejected(f"{field} is not a time like 2020-01-15 08:30 or 2020-01-15T08:30:00+08:00") from None
            return plain
        found = _STAMP.fullmatch(plain)
        if found:
            numbers = [int(part or 0) for part in found.groups()]
        elif day is not None and (found := _CLOCK.fullmatch(plain)):
            day_of = date.fromisoformat(day)
            numbers = [day_of.year, day_of.month, day_of.day, *(int(part or 0) for part in found.groups())]
        else:
            raise Rejected(f"{field} is not a time like 2020-01-15 08:30 or 08:30")
        try:
            moment = datetime(*numbers, tzinfo=self._zone)  # type: ignore[misc]
        except ValueError:
            raise Rejected(f"{field} is not a time of the calendar") from None
        if not _STAMP.fullmatch(plain) and after is not None and moment <= datetime.fromisoformat(after):
            moment = (moment.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=self._zone)
        return moment.isoformat()


def stamps(seconds: pl.Series, zone: ZoneInfo) -> pl.Series:
    """``tracer.events.format_time`` of each epoch second of ``seconds`` in ``zone``
    (``2020-01-15T08:00:00+08:00``), a column at a time; null where it is left to ``format_time``:
    a local year outside 1970-2099, or an hour in which the offset changes. Python's own zone data
    gives each hour's offset (polars' time zones are another copy of the tz database, which may be
    older or newer than Python's); an offset the same at an hour's start and end holds through it,
    as no zone changes its offset twice within an hour. About 8 us a distinct time saved."""
    offsets = []
    for hour in (seconds // 3600).unique().to_list():
        try:
            start, end = (datetime.fromtimestamp(hour * 3600 + second, UTC).astimezone(zone) for second in (0, 3599))
        except (OverflowError, ValueError, OSError):  # beyond datetime's years
            continue
        offset = start.utcoffset()
        if offset is not None and offset == end.utcoffset() and start.year >= 1970 and end.year <= 2099:
            offsets.append((hour, int(offset.total_seconds()), start.isoformat()[19:]))
    found = pl.DataFrame(offsets, orient="row", schema={"_hour": pl.Int64, "_offset": pl.Int64, "_text": pl.String})
    local = pl.from_epoch(pl.col("_seconds") + pl.col("_offset"), "s").dt.strftime("%Y-%m-%dT%H:%M:%S")
    return seconds.cast(pl.Int64).to_frame("_seconds").with_columns((pl.col("_seconds") // 3600).alias("_hour")).join(
        found, on="_hour", how="left", maintain_order="left").select(pl.concat_str(local, "_text"))["_seconds"]
