"""The one normaliser of service numbers, dates and station names (docs/rules.md, "Canonical forms").

People and feeds write ``mu 5101``, ``ＭＵ５１０１``, ``G 1234``, ``2020/01/15``, ``2020-1-5`` and
``虹桥火车站``; the store keys hold ``MU5101``, ``G1234``, ``2020-01-15``. Read literally, two
spellings of one flight are two flights that never meet, and a lookup of the other spelling is a
false all-clear. So every reader of outside values brings them to one form here: the lookup's
question (tracer/analysis/question.py), ``tracer run``'s intake (tracer/intake.py, which rewrites
or rejects a line as ``[intake] rewrite_noncanonical`` says) and the importers (connectors/).

Pure functions; each raises ``NotCanonical`` (an ``InvalidEvent``: a dead letter's reason as it is)
naming the field and what it expected. ``service`` leaves alone what it does not read as a flight
or train number (a metro run id, an unusual train): an id is whatever its feed made it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date as Date
from functools import lru_cache

from tracer.errors import InvalidEvent

# Patterns run on NFKC text (full-width digits and letters are ASCII by then); [0-9], never \d,
# which also takes other scripts' digits (tracer/events.py).
_DATES = (
    re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})"),  # 2020-01-15, 2020/1/15, 2020.1.15
    re.compile(r"([0-9]{4})()([0-9]{2})([0-9]{2})"),  # 20200115
    re.compile(r"([0-9]{4})\s*年()\s*([0-9]{1,2})\s*月\s*([0-9]{1,2})\s*[日号]?"),  # 2020年1月15日
)
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A train: one class letter and 1-4 digits (G1234). A flight: an airline designator, then 1-4
# digits and an optional letter: two letters (MU), a digit and a letter (9C, 3U), or a letter and a
# digit (Y8) followed by 3-4 digits, the letter not a train class (G5 1234 would read as a train
# number, L14 as flight L1 4): such a flight is read only with its mode given.
TRAIN_NUMBER = re.compile(r"[GDCZTK][0-9]{1,4}")
FLIGHT_NUMBER = re.compile(r"(?:[A-Z]{2}[0-9]{1,4}|[0-9][A-Z][0-9]{1,4}|[ABEFHIJL-SU-Y][0-9][0-9]{3,4})[A-Z]?")
_ANY_FLIGHT = re.compile(r"[A-Z0-9]{2}[0-9]{1,4}[A-Z]?")  # with the mode given: any designator (G5, 9C)
_SQUEEZED = re.compile(r"[\s\-\u2010-\u2015\u2212]")  # spaces and dashes inside a flight or train number
_SUFFIX = re.compile(r"(?:次列车|次|航班)$")  # G1234次, MU5101航班
_STATION_SUFFIX = re.compile(r"\s*(?:火车站|站|STATION|STN\.?)$", re.IGNORECASE)  # 虹桥站, Hongqiao Station
_SPACES = re.compile(r"\s+")
# Station names compared (``station_key``) and metro lines (``line``), as every rail and metro feed
# names them: 上海虹桥站 / 上海虹桥 / Shanghai Hongqiao, 地铁五号线 / 5号线 / Line 5.
_STATION_NOISE = re.compile(r"[\s·・\-_'’.,()（）]")
_KEY_SUFFIX = re.compile(r"(?:火车站|地铁站|railwaystation|metrostation|station|站)$")
_DIGITS = "零一二三四五六七八九"
_LINE = re.compile(
    r"(?:地铁|METRO|SUBWAY)?\s*(?:LINE|L)?\s*0*([0-9]{1,3}|[零一二三四五六七八九十]{1,3})\s*(?:号线|线)?"
)


class NotCanonical(InvalidEvent):
    """An outside value that cannot be brought to its canonical form; ``reason`` says why."""


def plain(text: str) -> str:
    """NFKC (full-width letters, digits and punctuation to ASCII, the ideographic space to a
    space), trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


def date(text: str) -> str:
    """``2020-01-15`` from the common ways of writing it (``2020/1/15``, ``2020.1.15``,
    ``20200115``, ``2020年1月15日``, full-width digits)."""
    if ISO_DATE.fullmatch(text):
        return _calendar(text, text[:4], text[5:7], text[8:])
    written = plain(text)
    for pattern in _DATES:
        found = pattern.fullmatch(written)
        if found:
            year, _, month, day = found.groups()
            return _calendar(text, year, month, day)
    raise NotCanonical(f"date: expected a date like 2020-01-15, got {show(text)}")


def _calendar(text: str, year: str, month: str, day: str) -> str:
    try:
        return Date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        raise NotCanonical(f"date: {show(text)} is not a day of the calendar") from None


def service_number(text: str) -> str:
    """A flight or train number as written by whoever wrote it, upper-cased, without spaces,
    dashes or a trailing ``次``/``航班`` (no such number has them)."""
    return _SUFFIX.sub("", _SQUEEZED.sub("", plain(text).upper()))


def mode_of(number: str) -> str | None:
    """``train`` or ``flight`` when ``number`` (``service_number``'s form) reads as one, else None."""
    if TRAIN_NUMBER.fullmatch(number):
        return "train"
    if FLIGHT_NUMBER.fullmatch(number):
        return "flight"
    return None


def service(text: str, mode: str) -> str:
    """The canonical service id of a ride of ``mode``: a flight or train number in its stored form
    (``mu 5101`` -> ``MU5101``, ``9c 8851`` -> ``9C8851``); anything else (a metro run id, a number
    that is no flight's or train's) as it is."""
    if mode == "metro":
        return text
    number = service_number(text)
    return number if (TRAIN_NUMBER if mode == "train" else _ANY_FLIGHT).fullmatch(number) else text


def station(text: str, aliases: Mapping[str, str] | None = None) -> str:
    """A station name in one form: NFKC, inner spaces as one, without a trailing ``站``,
    ``火车站`` or ``Station``; then ``aliases`` (canonical name -> canonical name, e.g. from a
    feed's stop list) applied once."""
    name = _STATION_SUFFIX.sub("", _SPACES.sub(" ", plain(text))) or plain(text)
    return aliases.get(name, name) if aliases else name


def show(text: str) -> str:
    """An outside text in a message: quoted, escaped (one line whatever it holds), cut short."""
    shown = repr(text)
    return shown if len(shown) <= 42 else shown[:39] + "...'"


def station_key(name: str) -> str:
    """The form every station name is compared in: NFKC, case-folded, without spaces, dots, dashes
    and brackets, and without a trailing 站 / station (``上海虹桥站`` = ``上海虹桥``; ``Hongqiao``
    stays apart from ``Shanghai Hongqiao``: aliases come from the feed's translations)."""
    plain = _STATION_NOISE.sub("", unicodedata.normalize("NFKC", name).casefold())
    return _KEY_SUFFIX.sub("", plain) or plain


@lru_cache(maxsize=1024)  # a feed names a few dozen lines, on every row
def line_name(text: str) -> str | None:
    """``L5`` from ``5``, ``L5``, ``Line 5``, ``5号线``, ``地铁五号线`` (Chinese numerals to 99), or
    None when the text names no numbered line."""
    found = _LINE.fullmatch(unicodedata.normalize("NFKC", text).strip().upper())
    if not found:
        return None
    number = found[1] if found[1].isascii() else _chinese_number(found[1])
    return None if number is None or int(number) == 0 else f"L{int(number)}"


def _chinese_number(text: str) -> str | None:
    """``五`` 5, ``十一`` 11, ``二十`` 20, ``二十三`` 23; None for anything else."""
    if "十" not in text:
        return str(_DIGITS.index(text)) if len(text) == 1 else None
    tens, _, units = text.partition("十")
    if len(tens) > 1 or len(units) > 1 or "十" in units:
        return None
    return str((_DIGITS.index(tens) if tens else 1) * 10 + (_DIGITS.index(units) if units else 0))
