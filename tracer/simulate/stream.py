"""The event stream: lines written in event-time order, with the disorder of real feeds.

Services are generated one after another, but their riders board over the following minutes or
hours, so lines wait in per-minute buckets until no later service can board before them; only that
window is in memory, never the whole run. On the way, a small share of trip deliveries goes wrong
the way real feeds do: late, delivered twice, corrected later, or malformed.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import BinaryIO

import orjson

P_MALFORMED = 0.001  # of person and trip lines
P_DUPLICATE = 0.0005
P_CORRECTION = 0.0003
P_LATE = 0.003
_P_ANY = P_MALFORMED + P_DUPLICATE + P_CORRECTION + P_LATE
_REQUIRED = {
    "person": ("person_id", "subdistrict"),
    "trip": ("person_id", "mode", "service", "date", "board_time", "alight_time"),
}

_dumps = orjson.dumps


class EventStream:
    """Collects lines by the minute they are due and writes each minute once it is final."""

    def __init__(self, out: BinaryIO, rng: random.Random) -> None:
        self._out = out
        self._rnd = rng.random
        self._randint = rng.randint
        self._buckets: defaultdict[int, list[bytes]] = defaultdict(list)
        self._next = 0  # first minute not written yet
        self.events: Counter[str] = Counter()  # well-formed lines by type
        self.trips: Counter[str] = Counter()  # trips by mode (first deliveries)
        self.disorder: Counter[str] = Counter()  # duplicate, correction, late
        self.malformed = 0

    def person(self, record: dict) -> None:
        """Registry lines go out at once, ahead of every bucket."""
        if self._rnd() < P_MALFORMED:
            self._out.write(self._malformed(record) + b"\n")
            self.malformed += 1
        else:
            self._out.write(_dumps(record) + b"\n")
            self.events["person"] += 1

    def at(self, minute: int, record: dict) -> None:
        """A line due at ``minute`` (case reports, registry moves), written as it is."""
        self._buckets[minute].append(_dumps(record))
        self.events[record["type"]] += 1

    def trip(self, minute: int, record: dict, *, late: bool = False) -> bool:
        """A trip due at ``minute`` (its boarding, or later when ``late``), maybe disordered. Whether
        the ride stays as written (late or twice, but neither malformed nor corrected)."""
        draw = self._rnd()
        kept = True
        if draw >= _P_ANY:
            self._buckets[minute].append(_dumps(record))
        elif draw < P_MALFORMED:
            self._buckets[minute].append(self._malformed(record))
            self.malformed += 1
            return False
        else:
            kept = self._disorder(draw - P_MALFORMED, minute, record)
        self.events["trip"] += 1
        self.trips[record["mode"]] += 1
        if late:
            self.disorder["late"] += 1
        return kept

    def advance(self, minute: int) -> None:
        """Write every minute before ``minute``: nothing generated from now on is due earlier."""
        buckets, write = self._buckets, self._out.write
        while self._next < minute:
            bucket = buckets.pop(self._next, None)
            if bucket:
                write(b"\n".join(bucket) + b"\n")
            self._next += 1

    def close(self) -> None:
        """Write what is left (late lines, rides boarding after the last service), in minute order."""
        if self._buckets:
            self.advance(max(self._buckets) + 1)

    def _disorder(self, draw: float, minute: int, record: dict) -> bool:
        """Whether the ride stays as written."""
        line = _dumps(record)
        if draw < P_DUPLICATE:  # redelivered identically, a little later
            self._buckets[minute].append(line)
            self._buckets[minute + self._randint(0, 60)].append(line)
            self.disorder["duplicate"] += 1
            self.events["trip"] += 1
        elif draw < P_DUPLICATE + P_CORRECTION and "trip_id" in record:  # fixed hours later
            self._buckets[minute].append(line)
            self._buckets[minute + self._randint(60, 720)].append(_dumps(_corrected(record)))
            self.disorder["correction"] += 1
            self.events["trip"] += 1
            return False
        else:  # arrives a few hours to a day and a half late
            self._buckets[minute + self._randint(60, 2160)].append(line)
            self.disorder["late"] += 1
        return True

    def _malformed(self, record: dict) -> bytes:
        """A line the schema rejects: broken JSON, a missing field, an unknown mode, time reversed."""
        kind = int(self._rnd() * (4 if record["type"] == "trip" else 2))
        if kind == 0:
            line = _dumps(record)
            return line[: 1 + int(self._rnd() * (len(line) - 2))]
        broken = dict(record)
        if kind == 1:
            required = _REQUIRED[record["type"]]
            del broken[required[int(self._rnd() * len(required))]]
        elif kind == 2:
            broken["mode"] = "bus"
        else:
            broken["board_time"], broken["alight_time"] = record["alight_time"], record["board_time"]
        return _dumps(broken)


def _corrected(record: dict) -> dict:
    """The same trip (same trip_id) with the carriage or the seat row set right."""
    fixed = dict(record)
    carriage, seat = record.get("carriage"), record.get("seat")
    if isinstance(carriage, int):
        fixed["carriage"] = carriage - 1 if carriage > 1 else carriage + 1
    elif isinstance(seat, str):
        row = int(seat[:-1])
        fixed["seat"] = f"{row - 1 if row > 1 else row + 1}{seat[-1]}"
    else:  # flight crew: the rows they served are set right
        fixed["crew_rows"] = "1-10"
    return fixed
