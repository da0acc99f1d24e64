"""One person across every feed: a keyed hash of their identity document, never the number itself.

The registry, flight manifests, rail tickets and metro taps name a person by a national ID number,
a passport or a transport card. Each importer maps (kind, number) to ``pid:`` and 24 hex digits of
a keyed BLAKE2b, so the same document gives the same ``person_id`` in every feed and the engine
links a case's flight to their metro rides, while the raw number is written nowhere: not in the
events, the report or a log. Without the key nobody can test a guessed number against a
``person_id`` (an unkeyed hash of an 18-digit ID number, whose birth date and area code are known,
is found by trying them all).

Numbers are normalised first, so one document is one person however a feed typed it: full-width
digits and letters folded (NFKC), spaces removed, upper case (a check digit ``x``), and a 15-digit
first-generation ID number written in its 18-digit form (``second_generation``), so an old
registry links to new tickets. The kind is part of the hashed message, so a passport and a card
with equal numbers never collide. A number that cannot be a document of its kind (an ID number with
a wrong check digit or an impossible first-generation birth date, a control character) is a
``BadId``, whose reason never repeats the number.

A transport card is a person of its own unless a card-holder list names its holder
(``PersonIds.with_holders``): then it is that person, resolved here for every importer and both
of their paths.

The key comes from ``$TRACER_ID_KEY`` or ``--id-key-file``, never a flag value (process lists and
shell histories show those), and must hold real entropy: tracer/privacy.py's loading and checks.
Keep it: a new key gives every person a new id, and events imported under two keys never link.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date
from functools import lru_cache
from pathlib import Path

import polars as pl

from connectors.importers.report import Rejected
from tracer import privacy
from tracer.documents import check_digit

KEY_VARIABLE = "TRACER_ID_KEY"
KEY_OPTION = "--id-key-file"
PREFIX = "pid:"
# The document kinds, with the names feeds give them (read after NFKC, lower case, trimmed).
KINDS = {
    "id_card": ("id_card", "id", "idcard", "id card", "resident id", "身份证", "居民身份证", "1"),
    "passport": ("passport", "护照", "2"),
    "permit": ("permit", "travel permit", "通行证", "港澳通行证", "台胞证", "回乡证", "3"),
    "card": ("card", "transport card", "交通卡", "公交卡", "card_no"),
}
KIND_NAMES = {name: kind for kind, names in KINDS.items() for name in names}
_ID_CARD = re.compile(r"[0-9]{17}[0-9X]|[0-9]{15}")  # 2nd and 1st generation resident ID cards
_DOCUMENT = re.compile(r"[A-Z0-9]{5,32}")  # passports, permits, card numbers: ASCII letters and digits
_SPACES = re.compile(r"\s+")
_CACHE = 1 << 20  # documents remembered per importer: one flies, rides and taps many times


class BadId(Rejected):
    """A document number that cannot be one of its kind; the reason never holds the number."""


@lru_cache(maxsize=256)
def read_kind(text: str) -> str:
    """The document kind a feed's column names (``身份证``, ``ID``, ``passport``, ...): one of KINDS."""
    kind = KIND_NAMES.get(unicodedata.normalize("NFKC", text).strip().lower())
    if kind is None:
        raise BadId(f"unknown ID type (expected one of {', '.join(KINDS)})")
    return kind


def normalise(kind: str, number: str) -> str:
    """``number`` as one document is always written, or BadId saying why it is none of ``kind``."""
    if not number.isascii():
        number = unicodedata.normalize("NFKC", number)
    number = _SPACES.sub("", number).upper()
    if not number:
        raise BadId(f"no {kind} number")
    if kind == "id_card":
        if not _ID_CARD.fullmatch(number):
            raise BadId("id_card number is not 18 characters (17 digits and a digit or X) nor 15 digits")
        if len(number) == 15:
            number = second_generation(number)
        elif check_digit(number[:17]) != number[17]:
            raise BadId("id_card number fails its check digit")
    elif not _DOCUMENT.fullmatch(number):
        raise BadId(f"{kind} number is not 5 to 32 ASCII letters and digits")
    return number


def second_generation(number: str) -> str:
    """The 18-digit form of a 15-digit first-generation number (GB 11643-1999): ``19`` before the
    two-digit birth year (every first-generation holder was born in the 1900s) and the check
    character appended, so one resident is one person under either card. BadId when the six
    birth digits are no date (the number is not one of a card)."""
    first17 = number[:6] + "19" + number[6:]
    try:
        date(int(first17[6:10]), int(first17[10:12]), int(first17[12:14]))
    except ValueError:
        raise BadId("id_card number of 15 digits (first generation) holds an impossible birth date") from None
    return first17 + check_digit(first17)


class PersonIds:
    """``person_id`` for a document, keyed: same key and document, same id, in every importer."""

    def __init__(self, key: bytes) -> None:
        # BLAKE2b takes a key of up to 64 bytes; a longer one is hashed down to that first.
        key = key if len(key) <= 64 else hashlib.blake2b(key).digest()
        self._hasher = hashlib.blake2b(key=key, digest_size=12)
        self._seen: dict[tuple[str, str], str] = {}
        self._holders: dict[str, str] | None = None  # card number (normal form) -> its holder's person id
        self._held: set[str] = set()  # the cards named (counted) with a known holder, and without
        self._unheld: set[str] = set()

    def with_holders(self, holders: dict[str, str]) -> PersonIds:
        """These ids (same key) where a transport card with a known holder is that person: ``holders``
        maps a card number in its normal form to the person id of its holder's document (a card-holder
        list, connectors/importers/holders.py). Every card is resolved here and only here, on the row
        path (``person_id``, ``rider``) and the column path (``riders``) alike."""
        ids = PersonIds.__new__(PersonIds)
        ids._hasher, ids._seen, ids._holders = self._hasher, {}, holders
        ids._held, ids._unheld = set(), set()
        return ids

    @property
    def cards(self) -> tuple[int, int] | None:
        """(cards named with a known holder, without one) when a card-holder list is given, else None."""
        return None if self._holders is None else (len(self._held), len(self._unheld))

    def person_id(self, kind: str, number: str) -> str:
        """``pid:`` and 24 hex digits; BadId when ``kind`` is unknown or ``number`` cannot be one of it.
        A card with a known holder is its holder (``with_holders``), counted in ``cards``."""
        found = self._seen.get((kind, number))
        if found is None:
            if kind not in KINDS:
                raise BadId(f"unknown ID type (expected one of {', '.join(KINDS)})")
            normal = normalise(kind, number)
            found = self._card(normal, True) if kind == "card" else self.hashed(kind, normal)
            if len(self._seen) >= _CACHE:
                self._seen.clear()
            self._seen[(kind, number)] = found
        return found

    def rider(self, number: str, count: bool = True) -> str:
        """The person riding on card ``number``: its holder, else the card itself. ``count``: a card of
        the feed itself (False: of a side file, such as the tap-outs ending carriage-code rides)."""
        if count:
            return self.person_id("card", number)
        return self._seen.get(("card", number)) or self._card(normalise("card", number), False)

    def riders(self, numbers: pl.Series, count: bool = True) -> pl.Series:
        """``rider`` of each card number of a column, numbers in their normal form (the checks of
        ``columnar.plain_documents`` passed): the fast path's ids, each distinct card resolved once."""
        unique = numbers.unique()
        if self._holders is None:
            ids = self.column(pl.repeat("card", unique.len(), eager=True), unique)
        else:
            holders = self._holders
            cards = unique.to_list()
            ids = pl.Series([holders.get(card) for card in cards], dtype=pl.String)
            unheld = ids.is_null()
            if count:
                self._held.update(unique.filter(~unheld).to_list())
                self._unheld.update(unique.filter(unheld).to_list())
            if unheld.any():
                missing = unique.filter(unheld)
                ids = ids.scatter(unheld.arg_true(), self.column(pl.repeat("card", missing.len(), eager=True), missing))
        return _mapped(numbers, unique, ids)

    def card_key(self, number: str) -> str:
        """Who rides on card ``number``, without hashing (to find a rider's taps, never written): the
        id of its holder when a card-holder list names one, else the number in its normal form
        (which no person id equals); BadId as ``rider``."""
        normal = normalise("card", number)
        return normal if self._holders is None else self._holders.get(normal, normal)

    def card_keys(self, numbers: pl.Series) -> pl.Series:
        """``card_key`` of each card number of a column, numbers in their normal form."""
        if self._holders is None:
            return numbers
        unique, holders = numbers.unique(), self._holders  # each distinct card looked up once
        return _mapped(numbers, unique, pl.Series([holders.get(card, card) for card in unique.to_list()],
                                                  dtype=pl.String))

    def _card(self, number: str, count: bool) -> str:
        """The rider of a card number in its normal form, counted in ``cards`` when ``count``."""
        holder = None if self._holders is None else self._holders.get(number)
        if count and self._holders is not None:
            (self._held if holder is not None else self._unheld).add(number)
        return holder if holder is not None else self.hashed("card", number)

    def hashed(self, kind: str, number: str) -> str:
        """The id of a number already in its normal form (``normalise``)."""
        hasher = self._hasher.copy()
        hasher.update(f"{kind}\x1f{number}".encode())
        return PREFIX + hasher.hexdigest()

    def column(self, kind: pl.Series, number: pl.Series) -> pl.Series:
        """``hashed`` of each (kind, number) of two columns, numbers in their normal form (the
        checks of ``columnar.plain_documents`` passed): the fast path's ids, the same as ``hashed`` gives."""
        messages = pl.DataFrame({"kind": kind, "number": number}).select(
            pl.concat_str("kind", pl.lit("\x1f"), "number").cast(pl.Binary)
        ).to_series().to_list()
        copy = self._hasher.copy
        digests = []
        append = digests.append
        for message in messages:
            hasher = copy()
            hasher.update(message)
            append(hasher.hexdigest())
        return PREFIX + pl.Series(digests, dtype=pl.String)


def _mapped(numbers: pl.Series, unique: pl.Series, values: pl.Series) -> pl.Series:
    """``values[i]`` for each of ``numbers`` equal to ``unique[i]``: joined back (37 against 53 ms
    for 200,000 numbers by ``replace_strict``)."""
    found = pl.DataFrame({"number": unique, "value": values})
    return numbers.to_frame("number").join(found, on="number", how="left", maintain_order="left")["value"]


_FOLDED = [chr(ord(c) + 0xFEE0) for c in "0123456789XxEe"]  # full-width forms NFKC folds to ASCII


def plain_form(rows: pl.DataFrame, column: str) -> pl.Expr:
    """The numbers of ``rows``' column ``column`` as ``normalise`` writes them, for the common cases:
    full-width digits folded (not looked for when every number is ASCII: 3 against 23 ms for
    440,000 cards), surrounding spaces trimmed, upper case (``columnar.plain_documents`` then
    checks the result)."""
    number = pl.col(column)
    if not rows.select((number.str.len_bytes() == number.str.len_chars()).all()).item():
        number = number.str.replace_many(_FOLDED, list("0123456789XxEe"))
    return number.str.strip_chars().str.to_uppercase()


def load_ids(key_file: Path | None) -> PersonIds:
    """The identity key from ``key_file``, else ``$TRACER_ID_KEY``; ConfigError saying what is
    expected when there is none or it is too weak to be secret."""
    return PersonIds(privacy.load_key(key_file, KEY_VARIABLE, KEY_OPTION, "tracer import"))
