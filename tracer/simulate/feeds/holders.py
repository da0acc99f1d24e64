"""card-holders.csv: which simulated person holds which transport card (``--card-holders``).

Taps and carriage-code scans name cards (transit.py ``card``); cases and the registry name ID
documents. A real platform joins them through the cards with a known holder: rides paid by a
real-name QR code account, registered cards. Not every card has one: anonymous stored-value cards
are bought over the counter. ``P_HELD`` is the share of the metro's riders whose card the list
names, a modelling choice (not a measured figure): most, not all, so the imports show both kinds of
card. The draw is per rider, seeded, so the same seed lists the same cards. A case whose card has no
known holder has metro rides no one can link to the case: their contacts are not found, as on a
real platform; tests/test_review_importers.py measures the share of the truth's metro alerts the
documented imports reach, and docs/import.md states it.

A few rows are broken on purpose, each naming a card of nobody in the city, so rejecting them costs
no alert: a holder's ID number with a wrong check digit, a card listed with two different holders,
a holder named by another card.
"""

from __future__ import annotations

from tracer.simulate.feeds import FeedFile, Feeds
from tracer.simulate.feeds.documents import document
from tracer.simulate.feeds.messy import BAD_NUMBER, Mangler, miscounted, stranger, tally, write_csv
from tracer.simulate.feeds.transit import HOLDERS, card, rides

FILE = HOLDERS
HEADER = ("card", "id_type", "id_number")
P_HELD = 0.6  # of the metro's riders, those whose card has a known holder
BROKEN_EVERY = 1000  # listed cards between two rows of each broken kind
CONFLICT = "card listed with two different holders: its holder is not known"
BY_CARD = "a card's holder is named by an identity document, not by another card"


def write(feeds: Feeds) -> FeedFile:
    rnd, mangle = feeds.rng.random, Mangler(feeds.rng)
    riders = sorted({trip["person_id"] for trip in rides(feeds, "metro")})
    rows: list[tuple[str, ...] | str] = []
    rejected: list[str] = []
    for number, person in enumerate(person for person in riders if rnd() < P_HELD):
        kind, id_number = document(person)
        rows.append((card(person), mangle.kind(kind), mangle.number(id_number)))
        if number % BROKEN_EVERY == 0:
            kind, other = stranger(number)
            _, another = stranger(number + 1)
            nobody = f"SPTCX{number:09d}"
            rows += [(nobody + "1", kind, miscounted(other)), (nobody + "2", kind, other),
                     (nobody + "2", kind, another), (nobody + "3", "交通卡", nobody + "4")]
            rejected += [BAD_NUMBER, CONFLICT, CONFLICT, BY_CARD]
    return FeedFile("card-holders", FILE, write_csv(feeds.out / FILE, HEADER, rows), tally(rejected),
                    {"share_held": P_HELD})
