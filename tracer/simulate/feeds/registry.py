"""registry.csv: the residence list, one row per resident, by ID document (``tracer import registry``).

Each resident's first home the engine accepts (their first valid person event; moves during the run
are later events, which a snapshot of the list does not hold). Homes are written by code, or by the
subdistrict's name (full or without its 街道/镇 suffix when that is unambiguous), as local lists do.
"""

from __future__ import annotations

from tracer.registry import names
from tracer.settings import Settings
from tracer.simulate.feeds import FeedFile, Feeds
from tracer.simulate.feeds.documents import document
from tracer.simulate.feeds.messy import BAD_NUMBER, Mangler, miscounted, stranger, tally, write_csv

FILE = "registry.csv"
HEADER = ("id_type", "id_number", "subdistrict")
P_NAME = 0.1  # homes written by name
BROKEN_EVERY = 1000  # rows between two rows of each broken kind
UNKNOWN = ("火星街道", "subdistrict name not in the subdistrict list (registry.subdistricts)")
AMBIGUOUS = ("虹桥", "subdistrict name is ambiguous: 2 listed subdistricts have it; give the code")


def write(feeds: Feeds) -> FeedFile:
    rng, mangle = feeds.rng, Mangler(feeds.rng)
    by_code = _names()
    homes: dict[str, str] = {}
    for event in feeds.events("person"):
        homes.setdefault(event["person_id"], event["subdistrict"])
    rows: list[tuple[str, ...] | str] = []
    rejected: list[str] = []
    for number, (person, home) in enumerate(homes.items()):
        kind, id_number = document(person)
        written = home
        if home in by_code and rng.random() < P_NAME:
            written = rng.choice(by_code[home])
        row = (mangle.kind(kind), mangle.number(id_number), written)
        rows.append(row)
        if number % BROKEN_EVERY == 0:
            rows.append(row)
            rejected.append("repeats an earlier row")
            kind, other = stranger(number)
            rows += [(kind, miscounted(other), home), (kind, other, UNKNOWN[0]), (kind, other, AMBIGUOUS[0]),
                     f"{kind},{other}", ""]
            rejected += [BAD_NUMBER, UNKNOWN[1], AMBIGUOUS[1], "2 fields where the header has 3"]
    count = write_csv(feeds.out / FILE, HEADER, rows)
    return FeedFile("registry", FILE, count, tally(rejected))


def _names() -> dict[str, list[str]]:
    """code -> the names that name it alone (tracer/registry.py ``names``)."""
    found: dict[str, list[str]] = {}
    for name, codes in sorted(names(Settings()).items()):
        if len(codes) == 1:
            found.setdefault(codes[0], []).append(name)
    return found
