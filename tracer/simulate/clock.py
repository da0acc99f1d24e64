"""Local time strings, precomputed so that the hot loops format no datetime objects.

Simulated time is an integer count of seconds since 00:00 of the start date in Shanghai, which has
kept a fixed +08:00 offset since 1991; so a time string is a table lookup per minute plus a suffix
per second.
"""

from __future__ import annotations

from datetime import date, timedelta

DAY = 86_400
OFFSET = "+08:00"
_SECONDS = tuple(f"{second:02d}{OFFSET}" for second in range(60))


class Clock:
    """Dates and ISO 8601 stamps for ``span`` days from ``start``."""

    def __init__(self, start: date, span: int) -> None:
        self.start = start
        days = [start + timedelta(days=day) for day in range(span)]
        self.dates = tuple(day.isoformat() for day in days)
        self.compact = tuple(day.strftime("%Y%m%d") for day in days)
        self.end = span * DAY  # the first second past the span: ``stamp`` covers the seconds before it
        self._day = {day: index for index, day in enumerate(self.dates)}
        self._minutes = tuple(
            f"{day}T{minute // 60:02d}:{minute % 60:02d}:" for day in self.dates for minute in range(1440)
        )

    def stamp(self, second: int) -> str:
        """``2020-01-15T07:34:05+08:00`` for a second count from the start."""
        return self._minutes[second // 60] + _SECONDS[second % 60]

    def second(self, stamp: str) -> int:
        """The second count ``stamp`` made ``stamp`` from."""
        return self._day[stamp[:10]] * DAY + int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])

    def date(self, day: int) -> str:
        """The date of any day offset, also outside the precomputed span (case onsets may be)."""
        return (self.start + timedelta(days=day)).isoformat()


def hhmm(minute: int) -> str:
    """``0734`` for the minute of the day, as in metro run ids."""
    return f"{minute // 60:02d}{minute % 60:02d}"
