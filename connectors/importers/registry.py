"""``tracer import registry``: a residence list (户籍/居住登记) -> ``person`` events.

Each row names a person by an identity document and their home by a 9-digit subdistrict code or
by its name (``外滩街道``, or ``外滩`` without the 街道/镇/乡 suffix), resolved through the subdistrict
list the engine uses (``registry.subdistricts``; tracer/registry.py). A name that is no listed
subdistrict, a name two subdistricts share, and a code not in the list are reported, not guessed:
a wrong home sends a close contact's call to the wrong street office.

A person listed twice is written twice: the engine keeps the later row, as it keeps the later of two
person events. A repeat of an earlier row (same person, same home) is reported and not written again.
"""

from __future__ import annotations

import unicodedata

import polars as pl

from connectors.importers.base import Context, Events, Kind, Record
from connectors.importers.columnar import plain_documents
from connectors.importers.identity import KIND_NAMES, plain_form, read_kind
from connectors.importers.report import Rejected
from tracer.events import SUBDISTRICT_CODE
from tracer.registry import NAME_SUFFIX, Subdistricts, names

REQUIRED = ("id_type", "id_number", "subdistrict")


class Homes:
    """A home as written (code, name or short name) -> its code, or Rejected saying why not."""

    def __init__(self, context: Context) -> None:
        self._codes = Subdistricts.load(context.settings).codes
        self._names = names(context.settings)
        self._seen: dict[str, str] = {}
        # The fast path's map: what needs no normalising and names one listed subdistrict.
        self.plain = {code: code for code in self._codes} | {
            name: codes[0] for name, codes in self._names.items() if len(codes) == 1
        }

    def code(self, text: str) -> str:
        found = self._seen.get(text)
        if found is None:
            found = self._seen[text] = self._resolve(text)
        return found

    def _resolve(self, text: str) -> str:
        plain = unicodedata.normalize("NFKC", text).strip()
        if SUBDISTRICT_CODE.fullmatch(plain):
            if plain not in self._codes:
                raise Rejected("subdistrict code not in the subdistrict list (registry.subdistricts)")
            return plain
        if not plain:
            raise Rejected("no subdistrict")
        codes = self._names.get(plain) or self._names.get(NAME_SUFFIX.sub("", plain))
        if not codes:
            raise Rejected("subdistrict name not in the subdistrict list (registry.subdistricts)")
        if len(codes) > 1:
            raise Rejected(f"subdistrict name is ambiguous: {len(codes)} listed subdistricts have it; give the code")
        (code,) = codes
        return code


class Residents:
    def __init__(self, context: Context) -> None:
        self._ids = context.person_ids
        self._homes = Homes(context)
        self._homes_of: dict[str, str] = {}  # person -> home of their last row
        self._report = context.report

    def row(self, record: Record, line: int) -> Events:
        person = self._ids.person_id(read_kind(record["id_type"]), record["id_number"])
        home = self._homes.code(record["subdistrict"])
        before = self._homes_of.get(person)
        if before is not None:
            if before == home:
                raise Rejected("repeats an earlier row")
            self._report.note("person listed again with another home: the later row wins")
        self._homes_of[person] = home
        return [{"type": "person", "person_id": person, "subdistrict": home}]

    def frame(self, rows: pl.DataFrame, others: list[Record]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The rows whose document and home need no normalising and whose person is in no other row
        of the chunk nor earlier, at once."""
        found = rows.with_columns(
            pl.col("id_type").str.to_lowercase().replace_strict(KIND_NAMES, default=None).alias("_kind"),
            plain_form(rows, "id_number").alias("_number"),
            pl.col("subdistrict").replace_strict(self._homes.plain, default=None).alias("_home"),
        )
        plain = found.select(pl.col("_home").is_not_null()).to_series() & plain_documents(found, "_kind", "_number")
        found = found.with_columns(plain.alias("_plain"))
        candidates = found.filter("_plain")
        pids = self._ids.column(candidates["_kind"], candidates["_number"])
        seen = self._homes_of
        elsewhere = {self._key(record) for record in [*found.filter(~pl.col("_plain")).to_dicts(), *others]}
        candidates = candidates.with_columns(
            pids.alias("_pid"),
            pl.Series("_seen", [pid in seen or pid in elsewhere for pid in pids.to_list()], dtype=pl.Boolean),
        )
        candidates = candidates.with_columns((pl.col("_pid").is_duplicated() | pl.col("_seen")).alias("_again"))
        done = candidates.filter(~pl.col("_again"))
        self._homes_of.update(zip(done["_pid"], done["_home"], strict=True))
        json = pl.concat_str(
            pl.lit('{"type":"person","person_id":"'), "_pid", pl.lit('","subdistrict":"'), "_home", pl.lit('"}')
        )
        left = pl.concat([found.filter(~pl.col("_plain")), candidates.filter("_again")], how="diagonal")
        return done.select("line", json.alias("json")), left.select(rows.columns).sort("line")

    def _key(self, record: Record) -> str | None:
        """The person of a row, if it names one."""
        try:
            return self._ids.person_id(read_kind(record["id_type"]), record["id_number"])
        except Rejected:
            return None

    def end(self) -> None:
        """Nothing is held."""


KIND = Kind(
    name="registry",
    help="a residence list (ID type and number, subdistrict code or name) -> person events",
    what="a residence list",
    required=REQUIRED,
    optional=(),
    start=Residents,
)
