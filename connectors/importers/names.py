"""Station and line names as every rail and metro importer compares them: one normaliser.

A ticket prints ``上海虹桥站``, the timetable ``上海虹桥``, a translation ``Shanghai Hongqiao``; a gate
record names its line ``地铁五号线``, a GTFS route ``5``. Each is brought to one form here, and only
here, so two feeds naming one station or line agree.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_STATION_NOISE = re.compile(r"[\s·・\-_'’.,()（）]")
_STATION_SUFFIX = re.compile(r"(?:火车站|地铁站|railwaystation|metrostation|station|站)$")
_DIGITS = "零一二三四五六七八九"
_LINE = re.compile(
    r"(?:地铁|METRO|SUBWAY)?\s*(?:LINE|L)?\s*0*([0-9]{1,3}|[零一二三四五六七八九十]{1,3})\s*(?:号线|线)?"
)



def station_key(name: str) -> str:
    """The form every station name is compared in: NFKC, case-folded, without spaces, dots, dashes
    and brackets, and without a trailing 站 / station (``上海虹桥站`` = ``上海虹桥``; ``Hongqiao``
    stays apart from ``Shanghai Hongqiao``: aliases come from the feed's translations)."""
    plain = _STATION_NOISE.sub("", unicodedata.normalize("NFKC", name).casefold())
    return _STATION_SUFFIX.sub("", plain) or plain


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
