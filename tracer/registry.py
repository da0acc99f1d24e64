"""The real subdistrict codes, and the one check every runner makes of a person event.

A well-formed code (9 ASCII digits, tracer/events.py) can still name no street office: a typo, a
code retired by a redistricting, another city's code. Its alerts would land in a queue nobody
reads, so a person event whose code is not in the list (``registry.subdistricts``: the shipped
Shanghai list, or another city's CSV) is applied as "no known home", and their alerts go to the
``unassigned`` queue, which someone does read; the runner reports it as a warning dead letter.
The embedded run, ``tracer publish`` and each Kafka partition call ``check`` on every event, so
they route the same way whatever runs them.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from functools import cache
from importlib import resources

from tracer.errors import ConfigError
from tracer.events import SUBDISTRICT_CODE, Event, Person
from tracer.settings import Settings, read_small_file

SHIPPED = "data/shanghai_subdistricts.csv"  # in the tracer package
SETTING = "registry.subdistricts"
NAME_SUFFIX = re.compile(r"(?:街道办事处|街道|镇|乡)$")  # 外滩街道 is also written 外滩
_MAX_LIST_BYTES = 16 << 20  # a country's township codes are well under 1 MiB


class Subdistricts:
    """The set of real codes; ``check`` turns an unlisted person's home into none."""

    def __init__(self, codes: frozenset[str]) -> None:
        self.codes = codes

    @classmethod
    def load(cls, settings: Settings) -> Subdistricts:
        """The list ``settings`` names; ConfigError (one line) when the file is missing or malformed."""
        return cls(_codes(settings.registry.subdistricts))

    def check(self, event: Event) -> tuple[Event, str | None]:
        """``event`` as it is to be applied, and the warning to report (None: nothing to say)."""
        if type(event) is not Person or event.subdistrict is None or event.subdistrict in self.codes:
            return event, None
        reason = (f"subdistrict {event.subdistrict} is not in the subdistrict list ({SETTING}); "
                  "the person's alerts go to unassigned")
        return Person(event.person_id, None), reason


@cache  # read once per process: every Kafka partition of a worker shares it
def _codes(path: str) -> frozenset[str]:
    return parse_codes(*_read_list(path))


def names(settings: Settings) -> dict[str, tuple[str, ...]]:
    """The codes of each subdistrict name in the list's optional ``name`` column (NFKC: full-width
    brackets as ASCII), in code order, as people write it: whole (``外滩街道``) or without its
    街道/镇/乡 suffix (``外滩``). `tracer import
    registry` reads homes given by name; a name two codes share (``虹桥``: 虹桥街道 and 虹桥镇) is
    ambiguous. Empty when the list has no names."""
    return _names(settings.registry.subdistricts)


@cache
def _names(path: str) -> dict[str, tuple[str, ...]]:
    text = _read_list(path)[0]
    codes = _codes(path)  # checks the list first
    found: dict[str, set[str]] = {}
    for row in csv.DictReader(line for line in text.splitlines() if not line.startswith("#")):
        name = unicodedata.normalize("NFKC", row.get("name") or "").strip()  # as the importer reads names
        if name and row.get("code") in codes:
            for written in {name, NAME_SUFFIX.sub("", name) or name}:
                found.setdefault(written, set()).add(row["code"])
    return {name: tuple(sorted(listed)) for name, listed in found.items()}


def _read_list(path: str) -> tuple[str, str]:
    """The text of the list ``path`` names (\"\": the shipped one) and how to name it in errors."""
    origin = path or f"tracer/{SHIPPED}"
    shipped = resources.files("tracer").joinpath(SHIPPED)
    try:
        data = read_small_file(path, _MAX_LIST_BYTES, SETTING) if path else shipped.read_bytes()
        return data.decode("utf-8-sig"), origin  # a list saved by a spreadsheet starts with a byte-order mark
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{SETTING}: cannot read {origin}: {exc}") from exc


def parse_codes(text: str, origin: str) -> frozenset[str]:
    """The ``code`` column of a CSV whose first lines may be ``#`` comments (the shipped file's
    provenance); every code must be 9 ASCII digits, and there must be one at least."""
    lines = text.splitlines()
    comments = next((n for n, line in enumerate(lines) if not line.startswith("#")), len(lines))
    reader = csv.DictReader(lines[comments:], strict=True)
    codes = set()
    try:
        if "code" not in (reader.fieldnames or ()):
            raise ConfigError(f"{SETTING}: {origin} has no 'code' column")
        for row in reader:
            code = row["code"]
            if not isinstance(code, str) or not SUBDISTRICT_CODE.fullmatch(code):
                line = comments + reader.line_num
                raise ConfigError(f"{SETTING}: {origin} line {line}: code {code!r} is not 9 ASCII digits")
            codes.add(code)
    except csv.Error as exc:
        raise ConfigError(f"{SETTING}: {origin} is not a CSV file: {exc}") from exc
    if not codes:
        raise ConfigError(f"{SETTING}: {origin} lists no codes")
    return frozenset(codes)
