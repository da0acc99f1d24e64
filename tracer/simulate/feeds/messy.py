"""How exports mangle values, and rows broken on purpose, for the simulated feeds.

A value is written as people and systems write it (full-width digits, ``mu 5101``, ``2020/1/15``, a
lower-case check ``x``); each form reads back as the same value, so it costs no alert. A broken row
names a made-up person, so rejecting it costs none either; each has the reason its importer
reports, so feeds.json can say what the report must hold.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tracer.documents import check_digit

P_MANGLED = 0.02  # of values, for each other common form they have
_ASCII = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FULL_WIDTH = str.maketrans(_ASCII, "".join(chr(ord(c) + 0xFEE0) for c in _ASCII))
KIND_NAMES = {"id_card": ("id_card", "身份证", "居民身份证"), "passport": ("passport", "护照")}
BAD_NUMBER = "id_card number fails its check digit"


class Mangler:
    def __init__(self, rng: random.Random) -> None:
        self._rnd = rng.random
        self._choice = rng.choice

    def kind(self, kind: str) -> str:
        return self._choice(KIND_NAMES[kind])

    def number(self, number: str) -> str:
        draw = self._rnd()
        if draw < P_MANGLED:
            return number.translate(_FULL_WIDTH)
        if draw < 2 * P_MANGLED:
            return f" {number.lower()} "
        return number

    def service(self, number: str) -> str:
        draw = self._rnd()
        if draw < P_MANGLED:
            return f"{number[:2].lower()} {number[2:]}"
        if draw < 2 * P_MANGLED:
            return number.translate(_FULL_WIDTH)
        return number

    def date(self, day: str) -> str:
        if self._rnd() < P_MANGLED:
            year, month, mday = day.split("-")
            return f"{year}/{int(month)}/{int(mday)}"
        return day


def stranger(index: int) -> tuple[str, str]:
    """A valid ID card of nobody in the city (area 650102), for the broken rows."""
    first17 = f"650102{19900101 + index % 28:08d}{index % 1000:03d}"
    return "id_card", first17 + check_digit(first17)


def miscounted(number: str) -> str:
    """``number`` with its check character wrong."""
    wrong = "0" if number[-1] != "0" else "1"
    return number[:-1] + wrong


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str] | str]) -> int:
    """The rows under ``header``; a ``str`` row is written as it is (a broken line). Returns rows written."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            if isinstance(row, str):
                out.write(row + "\n")
                count += bool(row)  # a blank line is no record
            else:
                writer.writerow(row)
                count += 1
    return count


def tally(reasons: Iterable[str]) -> dict[str, int]:
    return dict(Counter(reasons))
