"""The one path from a raw input line to the event a runner applies.

``tracer run``, ``tracer publish`` and every Kafka partition read lines through ``Intake.decode``,
so they accept, reject and warn alike: the length limit, the parser (tracer/events.py) and the
subdistrict list (tracer/registry.py), in that order. A line that cannot be traced raises
``InvalidEvent`` with the reason its dead letter gives; an accepted line may come with a warning
(it was applied, with something a person should know), which the runner reports as a dead letter
with ``"severity": "warning"``. How a dead letter is written (a file, a topic) is the runner's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from tracer.errors import InvalidEvent
from tracer.events import Event, Person, parse_line
from tracer.plainlines import plain_events
from tracer.registry import Subdistricts
from tracer.settings import Settings

WARNING = "warning"  # the severity of a dead letter of an applied line


class Decoded(NamedTuple):
    event: Event
    warning: str | None  # None: nothing to report


class Intake:
    """Settings-bound decoding of input lines; one per runner."""

    def __init__(self, settings: Settings) -> None:
        self.max_line_bytes = settings.runtime.max_line_bytes
        self._max_ride_us = int(settings.rules.max_ride_hours * 3_600_000_000)
        self._subdistricts = Subdistricts.load(settings)
        self._plain = settings.runtime.plain_lines

    def decode(self, data: bytes, too_long: bool = False) -> Decoded:
        """The event of one line (``too_long``: the reader cut it at ``max_line_bytes``). Raises
        ``InvalidEvent``."""
        if too_long or len(data) > self.max_line_bytes:
            raise InvalidEvent(f"line longer than max_line_bytes ({self.max_line_bytes})")
        event = parse_line(data, self._max_ride_us)
        if type(event) is Person:  # only a registry entry can name a subdistrict
            return Decoded(*self._subdistricts.check(event))
        return Decoded(event, None)

    def decode_many(self, lines: Sequence[tuple[bytes, bool]]) -> list[tuple[Event | None, str | None]]:
        """``decode`` of each ``(data, too_long)``: ``(event, warning)``, or ``(None, reason)`` for a
        line refused. Plain lines go through the fast lane (tracer/plainlines.py), which accepts only
        what ``decode`` accepts as it stands; every other line is decoded here, one by one."""
        plain = plain_events([data for data, _ in lines], self._max_ride_us, self._subdistricts.codes) \
            if self._plain else [None] * len(lines)
        decoded: list[tuple[Event | None, str | None]] = []
        for (data, too_long), event in zip(lines, plain, strict=True):
            if event is not None and not too_long and len(data) <= self.max_line_bytes:
                decoded.append((event, None))
                continue
            try:
                decoded.append(self.decode(data, too_long))
            except InvalidEvent as exc:
                decoded.append((None, exc.reason))
        return decoded
