"""The one path from a raw input line to the event a runner applies.

``tracer run``, ``tracer publish`` and every Kafka partition read lines through ``Intake.decode``,
so they accept, reject and warn alike: the length limit, the parser (tracer/events.py) and the
subdistrict list (tracer/registry.py), in that order, then the canonical forms of a ride's service
and date (tracer/canonical.py, ``canonical_ride``). A line that cannot be traced raises
``InvalidEvent`` with the reason its dead letter gives; an accepted line may come with a warning
(it was applied, with something a person should know), which the runner reports as a dead letter
with ``"severity": "warning"``. How a dead letter is written (a file, a topic) is the runner's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from tracer import canonical
from tracer.errors import InvalidEvent
from tracer.events import Event, Exposure, Person, Trip, parse_line
from tracer.plainlines import plain_events
from tracer.registry import Subdistricts
from tracer.settings import Settings

WARNING = "warning"  # the severity of a dead letter of an applied line
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, dropped before a line is read
_BOM_DROPPED = "a UTF-8 byte order mark before the event was dropped"


class Decoded(NamedTuple):
    event: Event
    warning: str | None  # None: nothing to report


class Intake:
    """Settings-bound decoding of input lines; one per runner."""

    def __init__(self, settings: Settings) -> None:
        self.max_line_bytes = settings.runtime.max_line_bytes
        self._max_ride_us = int(settings.rules.max_ride_hours * 3_600_000_000)
        self._subdistricts = Subdistricts.load(settings)
        self._rewrite = settings.intake.rewrite_noncanonical
        # (mode, service) of flight and train numbers seen in their canonical form: by mode, as a
        # text canonical for one mode may not be for another (``g5 1234``: no train's, a flight's G51234)
        self._canonical: set[tuple[str, str]] = set()
        self._plain = settings.runtime.plain_lines

    def decode(self, data: bytes, too_long: bool = False) -> Decoded:
        """The event of one line (``too_long``: the reader cut it at ``max_line_bytes``). Raises
        ``InvalidEvent``."""
        if too_long or len(data) > self.max_line_bytes:
            raise InvalidEvent(f"line longer than max_line_bytes ({self.max_line_bytes})")
        if data.startswith(BOM):  # a file saved "UTF-8 with BOM", or such files concatenated
            event, warning = self.decode(data[len(BOM):])
            return Decoded(event, "; ".join(filter(None, (_BOM_DROPPED, warning))))
        try:
            event = parse_line(data, self._max_ride_us)
        except InvalidEvent as exc:  # perhaps a date in another form (2020/1/15)
            return self.canonical_ride(data, refused=exc)
        kind = type(event)
        if kind is Person:  # only a registry entry can name a subdistrict
            return Decoded(*self._subdistricts.check(event))
        if (kind is Trip or kind is Exposure) and not self._known_canonical(event):  # type: ignore[arg-type]
            return self.canonical_ride(data, parsed=event)
        return Decoded(event, None)

    def decode_many(self, lines: Sequence[tuple[bytes, bool]]) -> list[tuple[Event | None, str | None]]:
        """``decode`` of each ``(data, too_long)``: ``(event, warning)``, or ``(None, reason)`` for a
        line refused. Plain lines go through the fast lane (tracer/plainlines.py), which accepts only
        what ``decode`` accepts as it stands; every other line is decoded here, one by one, and so is
        a flight or train ride whose number is not known canonical yet (``canonical_ride``)."""
        plain = plain_events([data for data, _ in lines], self._max_ride_us, self._subdistricts.codes) \
            if self._plain else [None] * len(lines)
        known, limit, decode = self._known_canonical, self.max_line_bytes, self._decoded
        return [(event, None) if event is not None and not too_long and len(data) <= limit and (
                    type(event) is Person or known(event)) else decode(data, too_long)  # type: ignore[arg-type]
                for (data, too_long), event in zip(lines, plain, strict=True)]

    def _decoded(self, data: bytes, too_long: bool) -> tuple[Event | None, str | None]:
        """``decode``, with a refusal as ``(None, reason)``."""
        try:
            return self.decode(data, too_long)
        except InvalidEvent as exc:
            return None, exc.reason

    def canonical_ride(
        self, data: bytes, parsed: Trip | Exposure | None = None, refused: InvalidEvent | None = None
    ) -> Decoded:
        """A trip or exposure line (``parsed``, or ``refused`` by the parser) with its service and
        date in their canonical forms: rewritten and parsed again, with a warning that says what was
        rewritten, or (``rewrite_noncanonical`` false) refused saying what the canonical forms are.
        When they change nothing, ``parsed`` is the event and ``refused`` the reason. A line already
        canonical costs ``decode`` a set lookup: only the first of each number comes here."""
        obj = _object(data)
        changes = _canonical_fields(obj) if obj is not None else []
        if not changes:
            if parsed is None:
                assert refused is not None
                raise refused
            self._remember(parsed.mode, parsed.service)
            return Decoded(parsed, None)
        said = ", ".join(f"{name} {canonical.show(old)} -> {new!r}" for name, old, new in changes)
        if not self._rewrite:
            raise InvalidEvent(f"not in canonical form: {said} (rewrite_noncanonical is off)")
        event = parse_line(orjson.dumps(obj), self._max_ride_us)
        self._remember(obj["mode"], obj["service"])
        return Decoded(event, f"rewritten to canonical form: {said}")

    def _known_canonical(self, ride: Trip | Exposure) -> bool:
        """Whether a ride's service is in a canonical form already seen for its mode (metro lines:
        always)."""
        return ride.mode == "metro" or (ride.mode, ride.service) in self._canonical

    def _remember(self, mode: str, service: str) -> None:
        if len(self._canonical) < 100_000:  # bounded: hostile input may send a new number on every line
            self._canonical.add((mode, service))


def _object(data: bytes) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _canonical_fields(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Bring a trip's or exposure's ``service`` and ``date`` to their canonical forms in place;
    ``(field, old, new)`` of each it changed. Fields of other types, or not text, are left to the
    parser to judge."""
    if obj.get("type") not in ("trip", "exposure"):
        return []
    changes = []
    service, mode, day = obj.get("service"), obj.get("mode"), obj.get("date")
    if isinstance(service, str) and isinstance(mode, str):
        new = canonical.service(service, mode)
        if new != service:
            changes.append(("service", service, new))
    if isinstance(day, str) and not canonical.ISO_DATE.fullmatch(day):
        with contextlib.suppress(canonical.NotCanonical):  # no date at all: the parser's reason stands
            changes.append(("date", day, canonical.date(day)))
    for name, _, new in changes:
        obj[name] = new
    return changes
