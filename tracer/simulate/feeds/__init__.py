"""``tracer generate --feeds DIR``: the simulated city once more, as the raw feeds real agencies send.

events.jsonl is tracer's own format; real data comes as a residence list with ID numbers, airline
manifests, case reports keyed by ID number, and so on (docs/import.md). Each writer in ``WRITERS``
turns the simulator's events into one such file, formatted as exports are (``mu 5101``, ``2020/1/15``,
full-width digits, a lower-case check ``x``) and with a few rows broken on purpose, which the
importer must report; ``feeds.json`` lists every file with its rows and the rejections expected, so
a test knows the truth. A new feed is one more writer: a function from ``Feeds`` to a ``FeedFile``.

The writers read events.jsonl back, keeping the lines the engine accepts (a malformed line is a
dead letter for the engine, so it is in no feed either), so the feeds and events.jsonl describe the
same city and importing the feeds gives the alerts of the events they carry (tests/test_import_e2e.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracer.errors import InvalidEvent
from tracer.events import parse_line
from tracer.jsonl import json_record
from tracer.settings import RuleSettings
from tracer.simulate.city import Population
from tracer.simulate.clock import Clock
from tracer.simulate.schedule import Schedule

MANIFEST = "feeds.json"


@dataclass
class Feeds:
    """What a writer may use: the city, its timetable and clock, its events, a seeded rng."""

    out: Path
    events_path: Path
    clock: Clock
    population: Population
    schedule: Schedule
    rng: random.Random

    def events(self, *types: str) -> Iterator[dict[str, Any]]:
        """The lines of events.jsonl the engine accepts, of the given types, in file order."""
        max_ride_us = int(RuleSettings().max_ride_hours * 3_600_000_000)
        wanted = {kind.encode() for kind in types}
        with open(self.events_path, "rb") as lines:
            for line in lines:
                if not any(b'"type":"' + kind + b'"' in line for kind in wanted):
                    continue
                try:
                    parse_line(line, max_ride_us)
                except InvalidEvent:
                    continue
                record = orjson.loads(line)
                if record.get("type") in types:
                    yield record


@dataclass
class FeedFile:
    """One written feed: its importer (``tracer import KIND``), file, rows and the rows it must reject."""

    kind: str
    file: str
    rows: int
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> rows, as the importer reports them
    truth: dict[str, Any] = field(default_factory=dict)  # what a test needs to rebuild the events from it

    def as_json(self) -> dict[str, Any]:
        rejected = dict(sorted(self.rejected.items()))
        return {"kind": self.kind, "file": self.file, "rows": self.rows, "rejected": rejected} | self.truth


Writer = Callable[[Feeds], FeedFile]


def writers() -> tuple[Writer, ...]:
    """Every feed, in the order to import them (the registry first; the card-holder list, which the
    taps and carriage codes read, last: a new writer goes last, so the others keep their rng draws)."""
    from tracer.simulate.feeds import cases, holders, manifests, registry, transit

    return (registry.write, cases.write, manifests.write, transit.write_timetable, transit.write_tickets,
            transit.write_taps, transit.write_carriage_codes, holders.write)


def write_feeds(feeds: Feeds) -> dict[str, Any]:
    """Every feed of ``writers()`` into ``feeds.out``, and feeds.json listing them; returns that list."""
    feeds.out.mkdir(parents=True, exist_ok=True)
    listing = {"files": [write(feeds).as_json() for write in writers()]}
    (feeds.out / MANIFEST).write_bytes(json_record(listing, indent=True))
    return listing
