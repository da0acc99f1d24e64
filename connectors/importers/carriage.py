"""Carriage codes (车厢码) -> metro rides in a named carriage, without any timetable.

From February 2020 Shanghai's metro riders scanned a code inside the carriage. The code names the
train set and the carriage, so two riders who scanned codes of one carriage were in it together
while their rides overlapped: the ride's ``service`` is the train set, its ``carriage`` the
carriage, its ``date`` the local date of the scan (docs/rules.md, "Metro rides from carriage
codes"). A ride starts at the scan and ends at the rider's next tap-out (from ``--taps``) less the
walk from the platform to the gate, or, with no tap-out within ``default_ride_minutes``, that long
after the scan. These are close-contact rides (``metro.same_carriage``): the carriage is known.

A code is ``TRAIN_SET:CARRIAGE`` (``L2-T03:5``), or the file has ``train_set`` and ``carriage``
columns. The rider is ``card``, or ``id_type`` and ``id_number`` (a tap-out ends only a card's
ride: the taps name cards); a card is its holder when ``--card-holders`` names one
(``PersonIds.rider``, the one place a card is resolved, for the scans and their tap-outs alike).

The carriage must be a number from 1 to ``MAX_CARRIAGE``: ``-1``, ``0`` or a 20-digit number is a
misread code, and a ride in a carriage no train has would meet nobody or the wrong people. A scan
repeated (same rider, code and second: the same trip id) is reported, not written again: a rider
scanning twice or a file delivered twice would otherwise overstate the rides. The trip ids written
are remembered for the whole import (about 130 bytes a scan) since a repeat may be anywhere.
"""

from __future__ import annotations

import argparse
import hashlib
from bisect import bisect_left, bisect_right
from functools import lru_cache
from pathlib import Path

import polars as pl

from connectors.importers import taps
from connectors.importers.base import Context, Events, Kind, Record
from connectors.importers.columnar import by_number, by_value, plain_documents, read_chunks
from connectors.importers.csvfeed import BadRow
from connectors.importers.identity import plain_form, read_kind
from connectors.importers.report import NotTraced, Rejected
from tracer.analysis.question import read_carriage
from tracer.errors import InputError, InvalidEvent
from tracer.events import format_time, parse_line
from tracer.jsonl import json_record

REQUIRED = ("time",)
OPTIONAL = ("code", "train_set", "carriage", "card", "id_type", "id_number")
DEFAULT_RIDE_MINUTES = 30
DUPLICATE = "duplicate scan: the same rider, carriage code and second again"
MAX_CARRIAGE = 16  # twice the longest metro train set in Shanghai (8 cars): a carriage past it is a typo
_CARRIAGES = frozenset(str(number) for number in range(1, MAX_CARRIAGE + 1))  # as read_carriage writes them
LONGEST_RIDE_HOURS = 4  # a tap-out later than this after a scan does not end its ride
TAP_COLUMNS = ("card", "time", "direction")  # what a tap-out needs to end a ride


def read_code(record: Record) -> tuple[str, str]:
    """(train set, carriage) of a scan, or ``Rejected``."""
    if record["train_set"].strip():
        return _code(record["train_set"], record["carriage"])
    train_set, _, carriage = record["code"].strip().rpartition(":")
    return _code(train_set, carriage)


def _code_id(train_set: str, carriage: str) -> str:
    """A short digest of a carriage, for trip ids: a person's scans at one second differ by it."""
    return hashlib.blake2b(f"{train_set}\x1f{carriage}".encode(), digest_size=6).hexdigest()


def _members(fields: dict[str, str]) -> str:
    """``fields`` as the JSON members a written line holds them (no braces)."""
    return json_record(fields).decode()[1:-2]


@lru_cache(maxsize=1 << 16)  # a city has a few thousand carriages, scanned all day
def _code(train_set: str, carriage: str) -> tuple[str, str]:
    train_set = train_set.strip()
    if not train_set or not carriage.strip():
        raise Rejected("carriage code is not TRAIN_SET:CARRIAGE (nor are train_set and carriage given)")
    if len(train_set) > 64 or not train_set.isprintable():
        raise Rejected("train set is longer than 64 characters or holds control characters")
    try:
        label = read_carriage(carriage)
    except InputError:
        label = None
    if label not in _CARRIAGES:
        raise Rejected(f"carriage is not a number from 1 to {MAX_CARRIAGE} (5, 05, 5车, 第5车厢)")
    return train_set, label


class CarriageCodes:
    def __init__(self, context: Context) -> None:
        self._ids, self._report = context.person_ids, context.report
        self._zone = context.settings.rules.zone
        self._ride = getattr(context.options, "default_ride_minutes", DEFAULT_RIDE_MINUTES) * 60
        self._walk = getattr(context.options, "walk_seconds", taps.TapSettings().walk_seconds)
        self._out_frame = self._read_tap_outs(getattr(context.options, "taps", None) or [])
        self._tap_outs: tuple[list[str], list[int]] | None = None  # for ``row``: keys and times, sorted
        self._valid = lru_cache(maxsize=1 << 16)(self._check)
        self._scans: set[str] = set()  # the trip ids written: a scan repeated is reported, not written again

    def row(self, record: Record, line: int) -> Events:
        """The trip event of one scan, or ``Rejected``."""
        train_set, carriage = read_code(record)
        scanned = taps.local_seconds(record["time"], self._zone)
        person = self._rider(record)
        trip_id = f"scan:{person[4:]}:{scanned}:{_code_id(train_set, carriage)}"
        if trip_id in self._scans:
            raise Rejected(DUPLICATE)
        self._scans.add(trip_id)
        out = self._tap_out(self._ids.card_key(record["card"]) if record["card"].strip() else person, scanned)
        if out is None:
            self._report.note(f"no tap-out after the scan: a ride of {self._ride // 60} minutes assumed")
        end = out if out is not None else scanned + self._ride
        board = format_time(scanned * 1_000_000, self._zone)
        return [{"type": "trip", "trip_id": trip_id, "person_id": person, "mode": "metro", "service": train_set,
                 "date": board[:10], "board_time": board, "alight_time": format_time(end * 1_000_000, self._zone),
                 "carriage": carriage}]

    def _rider(self, record: Record, count: bool = True) -> str:
        """The person of a scan: its card's rider (identity.py: the holder when known), or its ID."""
        if record["card"].strip():
            return self._ids.rider(record["card"], count)
        if record["id_type"].strip():
            return self._ids.person_id(read_kind(record["id_type"]), record["id_number"])
        raise Rejected("no card and no id_type and id_number")

    def frame(self, rows: pl.DataFrame, others: list[Record]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The scans by card, of a plain code and local time, ended by a tap-out, at once (the tap-out
        found by an as-of join); ``row`` takes the rest (the rides of a default length are noted), and
        every scan whose rider may repeat it elsewhere (``_repeats``), so the row path reports the repeat.
        The chunk's codes are numbered, a scan holding its code's number (its JSON and digest looked
        up by number), and each distinct time is parsed and formatted once (``by_value``)."""
        numbers: dict[str, int] = {}
        parts: list[tuple[str, str, str]] = []  # per number: the service's and the carriage's JSON, the digest
        for (text,) in rows.select("code").unique().iter_rows():
            part = self._part(text)
            if part is not None:
                numbers[text] = len(parts)
                parts.append(part)
        found = rows.with_columns(
            pl.col("code").replace_strict(numbers, default=None, return_dtype=pl.UInt32).alias("_code"),
            plain_form(rows, "card").alias("_number"),
            by_value(rows, "time", self._seconds(pl.col("time"))).alias("_at"),
        )
        plain = found.select(pl.col("_code").is_not_null() & (pl.col("train_set") == "")
                             & pl.col("_at").is_not_null()).to_series() & _plain_cards(found)
        candidates = found.filter(plain).select("line", "_code", "_number", "_at")
        code = pl.col("_code")
        digest = by_number([part[2] for part in parts], code)
        candidates = candidates.with_columns(self._ids.riders(candidates["_number"]).alias("_pid"),
                                             self._ids.card_keys(candidates["_number"]).alias("_key"),
                                             (pl.col("_at") + self._walk + 1).alias("_after"))
        candidates = candidates.with_columns(pl.concat_str(
            pl.lit("scan:"), pl.col("_pid").str.slice(4), pl.lit(":"), pl.col("_at").cast(pl.String), pl.lit(":"),
            digest).alias("_trip"))
        trips = candidates["_trip"].to_list()
        seen = self._scans
        written = (pl.repeat(False, len(trips), dtype=pl.Boolean, eager=True) if seen.isdisjoint(trips)
                   else pl.Series([trip in seen for trip in trips], dtype=pl.Boolean))
        candidates = candidates.with_columns(
            self._repeats(candidates, written, [*others, *found.filter(~plain).to_dicts()]).alias("_repeat"),
            written.alias("_written"), pl.col("_key").hash().alias("_rider"),
            pl.Series("_at_line", range(len(trips)), dtype=pl.UInt32)).sort("_after")
        joined = self._ended(candidates)
        ended = (pl.col("_out") - pl.col("_at") <= LONGEST_RIDE_HOURS * 3600).fill_null(False) & ~pl.col("_repeat")
        done = joined.filter(ended).sort("line").with_columns((pl.col("_out") - self._walk).alias("_end"))
        # Every trip id remembered, then those not written and not seen before forgotten (the same
        # strs: each hashed once): a trip id of the chunk is written at most once (``_repeats``).
        seen.update(trips)
        seen.difference_update([trips[at] for at in joined.filter(~ended & ~pl.col("_written"))["_at_line"].to_list()])
        done = done.with_columns(by_value(done, "_at", self._stamp(pl.col("_at"))).alias("_board"),
                                 by_value(done, "_end", self._stamp(pl.col("_end"))).alias("_alight"))
        board = pl.col("_board")
        json = pl.concat_str(
            pl.lit('{"type":"trip","trip_id":"'), "_trip", pl.lit('","person_id":"'), "_pid",
            pl.lit('","mode":"metro",'), by_number([part[0] for part in parts], code), pl.lit(',"date":"'),
            board.str.slice(0, 10), pl.lit('","board_time":"'), board, pl.lit('","alight_time":"'), "_alight",
            pl.lit('",'), by_number([part[1] for part in parts], code), pl.lit("}"),
        )
        left = pl.concat([found.filter(~plain).select(rows.columns), rows.filter(pl.col("line").is_in(
            joined.filter(~ended)["line"].implode()))])
        return done.select("line", json.alias("json")), left.sort("line")

    def _part(self, code: str) -> tuple[str, str, str] | None:
        """The JSON of a plain code's service and carriage and its digest (None: not plain)."""
        train_set, _, carriage = code.strip().rpartition(":")
        try:
            found = _code(train_set, carriage)
        except Rejected:
            return None
        if not self._valid(*found):
            return None
        return _members({"service": found[0]}), _members({"carriage": found[1]}), _code_id(*found)

    def _stamp(self, seconds: pl.Expr) -> pl.Expr:
        """Local ``2020-01-15T07:33:10+08:00`` of epoch ``seconds``."""
        return (pl.from_epoch(seconds, "s").dt.replace_time_zone("UTC").dt.convert_time_zone(self._zone.key)
                .dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))

    def _ended(self, candidates: pl.DataFrame) -> pl.DataFrame:
        """``candidates`` (sorted by ``_after``) with the time ``_out`` of each rider's first tap-out
        from ``_after`` on (null: none), by an as-of join on the 64-bit hash of the rider's key
        (``_rider``), about half the time of one on the key itself; a hash two riders share (a
        match of another key) has it done again by the key."""
        outs = self._out_frame.filter(pl.col("_hash").is_in(candidates["_rider"].unique().implode()))
        joined = candidates.join_asof(outs, left_on="_after", right_on="_out", by_left="_rider", by_right="_hash",
                                      strategy="forward", check_sortedness=False)  # both sorted by time
        if not joined.select((pl.col("_key") != pl.col("_key_right")).any()).item():
            return joined
        return candidates.join_asof(outs, left_on="_after", right_on="_out", by="_key", strategy="forward",
                                    check_sortedness=False)

    def _repeats(self, candidates: pl.DataFrame, written: pl.Series, others: list[Record]) -> pl.Series:
        """Which plain scans must go the row way to be told from a repeat: a trip id written before
        (``written``) or twice among them, or a rider of another row of the chunk (``others``: read
        one by one)."""
        riders = set()
        for record in others:
            try:
                riders.add(self._rider(record, count=False))
            except Rejected:
                continue
        return (candidates["_trip"].is_duplicated() | written
                | candidates["_pid"].is_in(pl.Series(list(riders), dtype=pl.String).implode()))

    def end(self) -> None:
        """Nothing is held."""

    def _check(self, train_set: str, carriage: str) -> bool:
        """Whether the engine takes a ride on this train set and carriage as the fast path writes it."""
        line = json_record({"type": "trip", "person_id": "p", "mode": "metro", "service": train_set,
                            "date": "2020-01-15", "board_time": "2020-01-15T08:00:00+08:00",
                            "alight_time": "2020-01-15T08:10:00+08:00", "carriage": carriage})
        try:
            parse_line(line, 3_600_000_000)
        except InvalidEvent:
            return False
        return True

    def _tap_out(self, rider: str, scanned: int) -> int | None:
        """When the rider (``PersonIds.card_key``: a card's holder, the card, or a person without a
        card) left the carriage: their first tap-out after the scan, less the walk."""
        if self._tap_outs is None:  # the tap-outs by rider, then time, read once a row needs them
            ordered = self._out_frame.sort("_key", "_out")
            self._tap_outs = ordered["_key"].to_list(), ordered["_out"].to_list()
        keys, times = self._tap_outs
        at = bisect_right(times, scanned + self._walk, bisect_left(keys, rider), bisect_right(keys, rider))
        if at == len(times) or keys[at] != rider or times[at] - scanned > LONGEST_RIDE_HOURS * 3600:
            return None
        return times[at] - self._walk

    def _read_tap_outs(self, paths: list[Path]) -> pl.DataFrame:
        """Every tap-out of ``paths`` as (``_key``, ``_out`` epoch seconds), sorted by time; a
        record that is no tap is noted. This tool's CSV is read a column at a time."""
        frames, items = [], []
        for path in map(str, paths):
            if taps.tap_format(path) != "csv":
                items.append(taps.read_taps(path, taps.KIND))
                continue
            for chunk in read_chunks(path, TAP_COLUMNS, (), taps.KIND.what):
                found, left = self._plain_tap_outs(chunk.plain)
                frames.append(found)
                items.append([*((row.pop("line"), row) for row in left.to_dicts()), *chunk.others])
        outs: list[tuple[str, int]] = []
        for item in (item for part in items for item in part):
            try:
                if isinstance(item, BadRow):
                    raise Rejected(item.reason)
                person, moment, inward = self._tap(item[1])
            except (Rejected, NotTraced):
                self._report.note("a record of --taps that is no tap: not used to end rides")
                continue
            if not inward:
                outs.append((person, moment))
        schema = {"_key": pl.String, "_out": pl.Int64}
        found = pl.concat([*frames, pl.DataFrame(outs, schema=schema, orient="row")]).sort("_out")
        return found.with_columns(pl.col("_key").hash().alias("_hash"))  # ``frame`` picks a chunk's riders by it

    def _plain_tap_outs(self, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The tap-outs among plain rows (a plain card, a local time), the plain tap-ins dropped as
        the row path drops them, and the rest (to be read one by one)."""
        kind = pl.col("direction")
        if rows.select(((kind == "in") | (kind == "out")).all()).item():  # as taps.DIRECTIONS reads them
            inward = rows.select(kind == "in").to_series()  # 2 against 29 ms for 440,000 taps (by_value)
        else:
            kind = kind.str.strip_chars().str.to_lowercase()
            inward = by_value(rows, "direction", kind.replace_strict(taps.DIRECTIONS, default=None,
                                                                      return_dtype=pl.Boolean))
        found = rows.with_columns(
            inward.alias("_in"),
            plain_form(rows, "card").alias("_number"),
            by_value(rows, "time", self._seconds(pl.col("time"))).alias("_out"),
        )
        plain = found.select(pl.col("_in").is_not_null() & pl.col("_out").is_not_null()).to_series()
        plain = plain & _plain_cards(found)
        outs = found.filter(plain).filter(~pl.col("_in"))
        outs = outs.select(self._ids.card_keys(outs["_number"]).alias("_key"), "_out")
        return outs, found.filter(~plain).select(rows.columns)

    def _seconds(self, text: pl.Expr) -> pl.Expr:
        """Epoch seconds of local ``2020-01-15 07:33:10`` of 1970-2099 (null for any other form: read
        one by one, as ``taps.local_seconds``; polars' ``strptime`` alone also takes ``2020-1-15
        8:00:10``, a leading space or the year 1900, which that refuses)."""
        form = text.str.contains(r"^(?:19[7-9][0-9]|20[0-9]{2})-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-5][0-9]$")
        return pl.when(form).then(text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
                                  .dt.replace_time_zone(self._zone.key, ambiguous="null", non_existent="null")
                                  .dt.epoch("s"))

    def _tap(self, record: dict[str, str]) -> tuple[str, int, bool]:
        card, moment, kind, _, _ = taps.tap_fields(record)
        inward = taps.direction(kind)
        return self._ids.card_key(card), taps.local_seconds(moment, self._zone), inward


def _plain_cards(rows: pl.DataFrame) -> pl.Series:
    """Whether the card number ``_number`` of each row (``identity.plain_form``) needs no more
    normalising: the check every fast path makes (columnar.plain_documents)."""
    return plain_documents(rows.with_columns(pl.lit("card").alias("_kind")), "_kind", "_number")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--taps", type=Path, action="append", metavar="FILE",  # one file each: FILE... would
                        # swallow the scans named after it ("the following arguments are required: FILE")
                        help="the riders' metro taps (docs/import.md, \"taps\"): a tap-out ends a scan's ride; "
                             "repeat for more files")
    parser.add_argument("--default-ride-minutes", type=taps.bounded(int, 1, 240), default=DEFAULT_RIDE_MINUTES,
                        help=f"a scan without a tap-out: the ride lasts this long (default {DEFAULT_RIDE_MINUTES})")
    parser.add_argument("--walk-seconds", type=taps.bounded(int, 0, 3600), default=taps.TapSettings().walk_seconds,
                        help=f"platform to gate: the ride ended this long before the tap-out "
                        f"(default {taps.TapSettings().walk_seconds})")


KIND = Kind(
    name="carriage-codes",
    help="carriage-code scans (card or ID, TRAIN_SET:CARRIAGE, time) -> metro rides in that carriage, no timetable",
    what="a carriage-code scan export",
    required=REQUIRED,
    optional=OPTIONAL,
    start=CarriageCodes,
    arguments=add_arguments,
    cards=True,
)
