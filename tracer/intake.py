"""The one path from a raw input line to the event a runner applies.

``tracer run``, ``tracer publish`` and every Kafka partition read lines through ``Intake.decode``,
so they accept, reject and warn alike: the length limit, the parser (tracer/events.py) and the
subdistrict list (tracer/registry.py), in that order. A line that cannot be traced raises
``InvalidEvent`` with the reason its dead letter gives; an accepted line may come with a warning
(it was applied, with something a person should know), which the runner reports as a dead letter
with ``"severity": "warning"``. How a dead letter is written (a file, a topic) is the runner's.
"""

from __future__ import annotations

from typing import NamedTuple

from tracer.errors import InvalidEvent
from tracer.events import Event, Person, parse_line
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

    def decode(self, data: bytes, too_long: bool = False) -> Decoded:
        """The event of one line (``too_long``: the reader cut it at ``max_line_bytes``). Raises
        ``InvalidEvent``."""
        if too_long or len(data) > self.max_line_bytes:
            raise InvalidEvent(f"line longer than max_line_bytes ({self.max_line_bytes})")
        event = parse_line(data, self._max_ride_us)
        if type(event) is Person:  # only a registry entry can name a subdistrict
            return Decoded(*self._subdistricts.check(event))
        return Decoded(event, None)
