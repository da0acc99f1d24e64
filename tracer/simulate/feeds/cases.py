"""cases.csv: the case reports, keyed by the case's ID document (``tracer import cases``).

One row per case event the engine accepts, in file order: a later row with the same case id
updates the case (a status change, an isolation), as a later case event does.
"""

from __future__ import annotations

from tracer.simulate.feeds import FeedFile, Feeds
from tracer.simulate.feeds.documents import document
from tracer.simulate.feeds.messy import Mangler, write_csv

FILE = "cases.csv"
HEADER = ("case_id", "id_type", "id_number", "status", "onset", "isolated_at", "reported_at")


def write(feeds: Feeds) -> FeedFile:
    mangle = Mangler(feeds.rng)
    rows = []
    for event in feeds.events("case"):
        kind, number = document(event["person_id"])
        isolated = event.get("isolated_at")
        rows.append((
            event["case_id"], mangle.kind(kind), mangle.number(number), event["status"], mangle.date(event["onset"]),
            _local(isolated) if isolated else "", _local(event["reported_at"]),
        ))
    return FeedFile("cases", FILE, write_csv(feeds.out / FILE, HEADER, rows))


def _local(stamp: str) -> str:
    """``2020-01-15 08:30:05`` from ``2020-01-15T08:30:05+08:00``: exports write local time."""
    return stamp[:19].replace("T", " ")
