"""A card-holder list (``--card-holders FILE``): which person holds which transport card.

Gate taps and carriage-code scans name a card, never a person; case reports, the registry and the
tickets name an ID number. Real platforms joined the two: a metro QR ride was tied to a real-name
account, a registered card has a holder on file. Without that join a case's metro rides are the
rides of a stranger (the card's own id), so no metro alert ever names a case. This module reads
the join, a CSV with a header::

    card,id_type,id_number
    SPTCP000000012,身份证,310101198001010018

and gives ``PersonIds.with_holders`` (connectors/importers/identity.py, the one place a card is
resolved) the holder of each card: the person id of the holder's document, under the same key as
every other feed, so the card's rides are the holder's. A card not listed keeps its own id and is
counted in the report ("cards without a known holder").

A row that cannot be used is reported, with its file and line and a reason that never quotes the
row's values, and the list is read on: a row that is no CSV record, a card or ID number that cannot
be one of its kind, a holder's ID type that is a card, a repeat of an earlier row. A card listed
with two different holders has no known holder: the join is wrong somewhere and a wrong holder
would send a stranger's rides to someone's street office. Only a header without the three columns
stops the import (exit 2), as for the feed itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from connectors.importers.csvfeed import BadRow, read_rows
from connectors.importers.identity import PersonIds, normalise, read_kind
from connectors.importers.report import Rejected, Report
from tracer.errors import InputError

OPTION = "--card-holders"
COLUMNS = ("card", "id_type", "id_number")
CONFLICT = "card listed with two different holders: its holder is not known"


def with_card_holders(ids: PersonIds, path: Path, report: Report) -> PersonIds:
    """``ids`` resolving the cards of the list at ``path``; its unusable rows in ``report``."""
    holders: dict[str, str] = {}
    first: dict[str, str] = {}  # card -> where it was first listed, to report both rows of a conflict
    conflicting: set[str] = set()
    rows = 0
    try:
        for item in read_rows(str(path), COLUMNS, (), "a card-holder list"):
            rows += 1
            where = f"{path} line {item.line if isinstance(item, BadRow) else item[0]}"
            try:
                if isinstance(item, BadRow):
                    raise Rejected(item.reason)
                card, holder = _row(ids, item[1])
            except Rejected as exc:
                report.set_aside(where, str(exc))
                continue
            known = holders.get(card)
            if card in conflicting or (known is not None and known != holder):
                if card not in conflicting:
                    report.set_aside(first[card], CONFLICT)
                    conflicting.add(card)
                report.set_aside(where, CONFLICT)
            elif known is not None:
                report.set_aside(where, "repeats an earlier row")
            else:
                holders[card], first[card] = holder, where
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for card in conflicting:
        del holders[card]
    report.holders = (rows, len(holders))
    return ids.with_holders(holders)


def _row(ids: PersonIds, record: dict[str, str]) -> tuple[str, str]:
    """(card number in its normal form, the holder's person id), or ``Rejected`` saying why not."""
    card = normalise("card", record["card"])
    kind = read_kind(record["id_type"])
    if kind == "card":
        raise Rejected("a card's holder is named by an identity document, not by another card")
    return card, ids.person_id(kind, record["id_number"])


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        OPTION, type=Path, metavar="FILE", dest="card_holders",
        help="CSV card,id_type,id_number: a card with a known holder rides as that person (docs/import.md)",
    )
