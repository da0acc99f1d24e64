"""One person across every feed: a keyed hash of their identity document, never the number itself.

The registry, flight manifests, rail tickets and metro taps name a person by a national ID number,
a passport or a transport card. Each importer maps (kind, number) to ``pid:`` and 24 hex digits of
a keyed BLAKE2b, so the same document gives the same ``person_id`` in every feed and the engine
links a case's flight to their metro rides, while the raw number is written nowhere: not in the
events, the report or a log. Without the key nobody can test a guessed number against a
``person_id`` (an unkeyed hash of an 18-digit ID number, whose birth date and area code are known,
is found by trying them all).

Numbers are normalised first, so one document is one person however a feed typed it: full-width
digits and letters folded (NFKC), spaces removed, upper case (a check digit ``x``). The kind is part
of the hashed message, so a passport and a card with equal numbers never collide. A number that
cannot be a document of its kind (an ID number with a wrong check digit, a control character) is a
``BadId``, whose reason never repeats the number.

The key comes from ``$TRACER_ID_KEY`` or ``--id-key-file``, never a flag value (process lists and
shell histories show those), and must hold real entropy: tracer/privacy.py's loading and checks.
Keep it: a new key gives every person a new id, and events imported under two keys never link.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import polars as pl

from connectors.importers.report import Rejected
from tracer import privacy
from tracer.documents import CHECK as _CHECK
from tracer.documents import WEIGHTS as _WEIGHTS
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
        if len(number) == 18 and check_digit(number[:17]) != number[17]:
            raise BadId("id_card number fails its check digit")
    elif not _DOCUMENT.fullmatch(number):
        raise BadId(f"{kind} number is not 5 to 32 ASCII letters and digits")
    return number


class PersonIds:
    """``person_id`` for a document, keyed: same key and document, same id, in every importer."""

    def __init__(self, key: bytes) -> None:
        # BLAKE2b takes a key of up to 64 bytes; a longer one is hashed down to that first.
        key = key if len(key) <= 64 else hashlib.blake2b(key).digest()
        self._hasher = hashlib.blake2b(key=key, digest_size=12)
        self._seen: dict[tuple[str, str], str] = {}

    def person_id(self, kind: str, number: str) -> str:
        """``pid:`` and 24 hex digits; BadId when ``kind`` is unknown or ``number`` cannot be one of it."""
        found = self._seen.get((kind, number))
        if found is None:
            if kind not in KINDS:
                raise BadId(f"unknown ID type (expected one of {', '.join(KINDS)})")
            found = self.hashed(kind, normalise(kind, number))
            if len(self._seen) >= _CACHE:
                self._seen.clear()
            self._seen[(kind, number)] = found
        return found

    def hashed(self, kind: str, number: str) -> str:
        """The id of a number already in its normal form (``normalise``)."""
        hasher = self._hasher.copy()
        hasher.update(f"{kind}\x1f{number}".encode())
        return PREFIX + hasher.hexdigest()

    def column(self, kind: pl.Series, number: pl.Series) -> pl.Series:
        """``hashed`` of each (kind, number) of two columns, numbers in their normal form (the
        checks of ``plain_number`` passed): the fast path's ids, the same as ``hashed`` gives."""
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


_FOLDED = [chr(ord(c) + 0xFEE0) for c in "0123456789XxEe"]  # full-width forms NFKC folds to ASCII


def plain_form(number: pl.Expr) -> pl.Expr:
    """A column of numbers as ``normalise`` writes them, for the common cases: full-width digits
    folded, surrounding spaces trimmed, upper case (``plain_number`` then checks the result)."""
    return number.str.replace_many(_FOLDED, list("0123456789XxEe")).str.strip_chars().str.to_uppercase()


def plain_number(kind: pl.Expr, number: pl.Expr) -> pl.Expr:
    """Whether ``number`` (a column, upper-cased) is a valid document of ``kind`` (a column of
    KINDS names) as written, with nothing to normalise: the fast path's test. Any other (full-width,
    spaced, 15 digits, wrong) is left to ``normalise``, which says why it is refused."""
    total = pl.sum_horizontal(
        [number.str.slice(at, 1).cast(pl.Int32, strict=False) * weight for at, weight in enumerate(_WEIGHTS)]
    )
    check = (total % 11).replace_strict(dict(enumerate(_CHECK)), default=None, return_dtype=pl.String)
    card = number.str.contains(r"^[0-9]{17}[0-9X]$") & (number.str.slice(17, 1) == check)
    other = number.str.contains(r"^[A-Z0-9]{5,32}$")
    return kind.is_not_null() & pl.when(kind == "id_card").then(card).otherwise(other).fill_null(False)


def load_ids(key_file: Path | None) -> PersonIds:
    """The identity key from ``key_file``, else ``$TRACER_ID_KEY``; ConfigError saying what is
    expected when there is none or it is too weak to be secret."""
    return PersonIds(privacy.load_key(key_file, KEY_VARIABLE, KEY_OPTION, "tracer import"))
