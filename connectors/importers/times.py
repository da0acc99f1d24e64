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
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

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
