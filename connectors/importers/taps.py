"""Metro card taps (AFC gate records) -> journeys -> metro rides on the runs the timetable allows.

A tap says card, time, in or out, line and station: no train, no carriage. Taps are paired per
card in time order (an in, then the next out within ``max_ride_hours``); what does not pair is
reported: a tap-in with no tap-out, a tap-out with no tap-in, the same tap twice within
``duplicate_seconds`` (a gate read twice), an exit at the station of entry (no ride). Each journey
is routed and its runs inferred (``connectors/importers/journeys.py``). This tool's CSV goes a column
at a time (``Taps``: read, paired, fitted and written in polars), the other formats and the cards with
a duplicate tap tap by tap, the reference, which writes the same bytes and report
(tests/test_import_transit.py).

How an uncertain ride is traced (docs/rules.md, "Metro rides inferred from card taps"): each run
that fits a leg gets ``confidence`` = 1 / the number of runs that fit it; the runs of a leg are
written when that share is at least ``min_confidence`` (default 0.5: one run, or either of two),
else that leg is not traced (noted; a journey with no leg traced is rejected as ambiguous). An
inferred ride never has a carriage, so it can only make or be a general contact
(``metro.same_train``), never a close one.

Two formats are read: this tool's CSV (``card,time,direction,line,station``) and the Shenzhen Tong
open data as published (CSV or JSON, ``deal_date``, ``card_no``, ``deal_type`` ``地铁入站`` /
``地铁出站`` / ``巴士``, ``company_name`` ``地铁五号线``, ``station``); a bus tap is counted as not
traced. Times without an offset are local time in the timetable's zone.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
import polars as pl

from connectors.importers.base import Context, Events, Kind, Record
from connectors.importers.columnar import RENAMED, plain_documents
from connectors.importers.csvfeed import BadRow, read_rows
from connectors.importers.gtfs import add_timetable_argument, timetable_of
from connectors.importers.identity import KIND_NAMES, PersonIds, read_kind
from connectors.importers.journeys import Candidate, Network, fitting_runs, hour_days
from connectors.importers.report import NotTraced, Rejected
from connectors.importers.timetable import Pattern, Timetable
from tracer.canonical import line_name
from tracer.errors import InvalidEvent
from tracer.events import MAX_ID, parse_line, repeated_time
from tracer.jsonl import escape_line_breaks, json_record

REQUIRED = ("card", "time", "direction", "station")
OPTIONAL = ("line", "id_type", "id_number")  # the holder of a real-name card, when the export names them
SHENZHEN = ("card_no", "deal_date", "deal_type", "station")  # Shenzhen Tong open data, as published
SHENZHEN_OPTIONAL = ("company_name", "car_no", "equ_no", "deal_value", "deal_money", "close_date", "conn_mark")
DIRECTIONS = {"in": True, "entry": True, "进站": True, "地铁入站": True, "out": False, "exit": False,
              "出站": False, "地铁出站": False}
NOT_TRACED = {"巴士": "bus tap (buses are not traced)", "bus": "bus tap (buses are not traced)"}
_LOCAL_MINUTE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[ T]([0-9]{2}):([0-9]{2})")


@dataclass(frozen=True, slots=True)
class TapSettings:
    walk_seconds: int = 60  # gate to platform (and platform to platform at a transfer), at least
    max_ride_hours: float = 4.0  # a tap-out later than this after the tap-in does not pair with it
    duplicate_seconds: int = 60  # the same card, direction and station again within this: one tap
    min_confidence: float = 0.5  # a leg whose fitting runs are fewer than 1 / this is not traced


@dataclass(frozen=True, slots=True)
class Tap:
    person: str  # the card's person id: the raw card number is kept nowhere
    at: int  # epoch seconds
    inward: bool
    station: str  # station key
    line: int
    where: str  # file and line, for the report


class Refused(NamedTuple):
    """A tap the columnar path rejects: its file (an index of ``Taps._wheres``) and line, named in the
    report only when settled (a NamedTuple: a feed may reject tens of thousands)."""

    source: int
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class Journey:
    tap_in: Tap
    tap_out: Tap


Settled = tuple[str, int, "Journey | tuple[Tap, str] | Refused"]  # (card, order, what ``Taps._settle`` settles)


def tap_fields(record: Record) -> tuple[str, str, str, str, str]:
    """(card, time, direction, line, station) of a record in either format, as written."""
    if "deal_type" in record:
        return (record["card_no"], record["deal_date"], record["deal_type"].strip(), record["company_name"],
                record["station"])
    line, station = record.get("line", ""), record.get("station", "")  # a reader of tap-outs only wants no more
    return record["card"], record["time"], record["direction"].strip(), line, station


def direction(text: str) -> bool:
    """True for a tap-in, False for a tap-out; ``NotTraced`` (a bus) or ``Rejected`` for the rest."""
    if text.lower() in NOT_TRACED:
        raise NotTraced(NOT_TRACED[text.lower()])
    inward = DIRECTIONS.get(text.lower())
    if inward is None:
        raise Rejected(f"direction {text[:20]!r} is neither a tap-in nor a tap-out")
    return inward


class TapReader:
    """Records (either format) as taps. What a tap's direction, line and station say is worked out
    once per distinct triple (a feed has a few hundred stations): only the card and time are per row."""

    _LIMIT = 1 << 16  # triples remembered: a hostile feed may write a new one on every row

    def __init__(self, ids: PersonIds, timetable: Timetable) -> None:
        self._ids = ids
        self._timetable = timetable
        self._places: dict[tuple[str, str, str], tuple[bool, str]] = {}

    def read(self, record: Record, line: int, where: str) -> Tap:
        """The record as a tap; ``Rejected`` or ``NotTraced`` when it is none."""
        card, moment, kind, company, name = tap_fields(record)
        inward, station = self.place(kind, company, name)
        holder = record.get("id_number", "").strip()
        ids = self._ids
        person = ids.person_id(read_kind(record["id_type"]), holder) if holder else ids.person_id("card", card)
        return Tap(person, local_seconds(moment, self._timetable.zone), inward, station, line, where)

    def place(self, kind: str, company: str, name: str) -> tuple[bool, str]:
        """(tap-in?, station key) of a direction (stripped), line and station as written; ``Rejected``
        or ``NotTraced`` (a bus)."""
        found = self._places.get((kind, company, name))
        if found is None:
            inward = direction(kind)
            station = self._timetable.station(name)
            if station is None:
                raise Rejected(f"station {name.strip()[:40]!r} is not in the timetable")
            if company.strip() and line_name(company) is None:
                raise Rejected(f"line {company[:40]!r} names no numbered line")
            found = inward, station
            if len(self._places) < self._LIMIT:
                self._places[(kind, company, name)] = found
        return found


def local_seconds(text: str, zone: ZoneInfo) -> int:
    """Epoch seconds of ``2018-08-31 22:14:50`` (local time in ``zone``) or of an ISO 8601 time with
    an offset; ``Rejected`` for anything else."""
    minute = _minute(text[:16], zone) if len(text) == 19 and text[16] == ":" else None  # the common form first
    if minute is not None and text[17:].isdigit() and text[17:].isascii() and int(text[17:]) < 60:
        return minute + int(text[17:])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None or not 1970 <= moment.year < 2100:
        raise Rejected("time is not 'YYYY-MM-DD HH:MM:SS' (local) nor ISO 8601 with an offset")
    return int(moment.timestamp())


@lru_cache(maxsize=1 << 16)  # a day of taps has 1,440 distinct minutes
def _minute(text: str, zone: ZoneInfo) -> int | None:
    """Epoch seconds of local ``2018-08-31 22:14``, or None when ``text`` is not one."""
    found = _LOCAL_MINUTE.fullmatch(text)
    if not found:
        return None
    try:
        moment = datetime.fromisoformat(found[1]).replace(hour=int(found[2]), minute=int(found[3]), tzinfo=zone)
    except ValueError:
        return None
    return int(moment.timestamp()) if 1970 <= moment.year < 2100 else None


def pair(taps: Iterable[Tap], settings: TapSettings) -> Iterator[Journey | tuple[Tap, str]]:
    """Journeys, and ``(tap, reason)`` for every tap that is not part of one, per card in time
    order (ties in file order)."""
    by_card: dict[str, list[Tap]] = defaultdict(list)
    for tap in taps:
        by_card[tap.person].append(tap)
    longest = settings.max_ride_hours * 3600
    for person in sorted(by_card):
        opened: Tap | None = None
        last: Tap | None = None
        for tap in sorted(by_card[person], key=lambda tap: tap.at):
            if (last is not None and last.inward == tap.inward and last.station == tap.station
                    and tap.at - last.at <= settings.duplicate_seconds):
                yield tap, DUPLICATE
                continue
            last = tap
            if tap.inward:
                if opened is not None:
                    yield opened, NO_TAP_OUT
                opened = tap
            elif opened is None:
                yield tap, NO_TAP_IN
            elif tap.at - opened.at > longest:
                yield opened, NO_TAP_OUT
                yield tap, too_late(settings)
                opened = None
            elif tap.station == opened.station:
                yield opened, ONE_STATION
                yield tap, ONE_STATION
                opened = None
            else:
                yield Journey(opened, tap)
                opened = None
        if opened is not None:
            yield opened, NO_TAP_OUT


DUPLICATE = "duplicate tap: the same card, direction and station again"
NO_TAP_OUT = "tap-in without a tap-out"
NO_TAP_IN = "tap-out without a tap-in"
ONE_STATION = "tap-in and tap-out at one station: no ride"
NO_ROUTE = "no route between the stations of the tap-in and the tap-out"
NO_RUN = "no run fits between the tap-in and the tap-out"


def too_late(settings: TapSettings) -> str:
    return f"tap-out more than max_ride_hours ({settings.max_ride_hours:g}) after the tap-in"


def too_ambiguous(settings: TapSettings) -> str:
    return f"ambiguous: more runs fit than --min-confidence {settings.min_confidence:g} allows"


Ride = tuple[int, Candidate, float]  # a traced ride of a journey: its leg's number, the run, the confidence


def fits(journey: Journey, timetable: Timetable, network: Network, settings: TapSettings) -> tuple[list[Ride], int]:
    """The rides a journey is traced as and the number of its legs too ambiguous to trace, or
    ``Rejected`` saying why it gives none."""
    tap_in, tap_out = journey.tap_in, journey.tap_out
    return fit(tap_in.station, tap_out.station, tap_in.at, tap_out.at, timetable, network, settings)


def fit(origin: str, destination: str, tap_in: int, tap_out: int, timetable: Timetable, network: Network,
        settings: TapSettings) -> tuple[list[Ride], int]:
    """``fits`` of a journey from ``origin`` at ``tap_in`` to ``destination`` at ``tap_out``: what
    it depends on (the columnar path fits each distinct one that changes lines once)."""
    legs = network.route(origin, destination)
    if legs is None:
        raise Rejected(NO_ROUTE)
    found = fitting_runs(timetable, legs, tap_in, tap_out, settings.walk_seconds)
    if found is None:
        raise Rejected(NO_RUN)
    shares = [1 / len(fits) for fits in found]
    if max(shares) < settings.min_confidence:
        raise Rejected(too_ambiguous(settings))
    chosen = [(number, candidate, round(share, 4))
              for number, (fits, share) in enumerate(zip(found, shares, strict=True))
              if share >= settings.min_confidence for candidate in fits]
    return chosen, sum(share < settings.min_confidence for share in shares)


def rides(journey: Journey, timetable: Timetable, network: Network, settings: TapSettings) -> tuple[Events, int]:
    """The trip events of a journey (``fits``) and the number of its legs too ambiguous to trace."""
    chosen, ambiguous = fits(journey, timetable, network, settings)
    person, at = journey.tap_in.person, journey.tap_in.at
    return [{"type": "trip", "trip_id": _trip_id(person, at, number, candidate.run.service), "person_id": person,
             **_shared(candidate, share, timetable)} for number, candidate, share in chosen], ambiguous


def _shared(candidate: Candidate, confidence: float, timetable: Timetable) -> dict[str, Any]:
    """The fields of a ride that every rider of that run between those stations shares."""
    run = candidate.run
    return {
        "mode": "metro",
        "service": run.service,
        "date": run.date,
        "board_time": timetable.stamp(run.depart[candidate.board]),
        "alight_time": timetable.stamp(run.arrive[candidate.alight]),
        "board_station": run.names[candidate.board],
        "alight_station": run.names[candidate.alight],
        "confidence": confidence,
    }


class Lines:
    """A journey's rides as JSON lines valid by construction (connectors/importers/base.py): the
    rider's ids (a person id, a trip id of it, digits and the checked service) pasted in front of the
    ride's fields (``_shared``), each field's JSON member encoded once per distinct value; the same
    bytes as ``json_record`` of ``rides``' events.

    Each field is checked where it can be wrong, once per distinct value (``_member``): a service, a
    date and a station name by the engine on a line that differs from a valid one only there
    (``parse_line``: a few hundred runs and stations, not one check per ride at about 10 us); a stop
    time by the engine's own time parse (``repeated_time``: the stamps are ISO 8601 by construction,
    only their year can be out of range). Per ride only what joins two fields: the engine's rule that
    the alight time is after the board time and at most ``max_ride_hours`` later, on the epoch
    seconds the stamps exactly encode. tests/test_import_taps_lines.py checks this decision against
    ``parse_line`` of the whole line on hostile timetables."""

    _LIMIT = 1 << 18  # distinct values remembered: a day of a big city's runs and stop times fits

    def __init__(self, timetable: Timetable, max_ride_us: int) -> None:
        self._timetable = timetable
        self._max_ride_us = max_ride_us
        self._members: dict[tuple[str, Any], bytes | None] = {}  # (field, value) -> its member, None: refused

    def of(self, tap_in: Tap, chosen: list[Ride]) -> bytes | None:
        """The lines, or None when one cannot be shown valid (it goes the checked way)."""
        parts = []
        for number, candidate, confidence in chosen:
            shared = self.ride(candidate, confidence)
            trip_id = _trip_id(tap_in.person, tap_in.at, number, candidate.run.service)
            if shared is None or len(trip_id) > MAX_ID:
                return None
            parts.append(b'{"type":"trip","trip_id":' + escape_line_breaks(orjson.dumps(trip_id)) + b',"person_id":'
                         + orjson.dumps(tap_in.person) + shared)
        return b"".join(parts)

    def ride(self, candidate: Candidate, confidence: float) -> bytes | None:
        """``,`` and the shared fields' JSON (``_shared``'s, in its order) to the line's end; None
        when the engine would refuse a line of them (the class's docstring)."""
        run, board, alight = candidate
        depart, arrive = run.depart[board], run.arrive[alight]
        values = ("metro", run.service, run.date, depart, arrive, run.names[board], run.names[alight], confidence)
        parts = [self._member(field, value) for field, value in zip(_RIDE_FIELDS, values, strict=True)]
        if None in parts or not 0 < (arrive - depart) * 1_000_000 <= self._max_ride_us:
            return None
        parts.append(b"}\n")
        return b"".join(parts)  # type: ignore[arg-type]

    def rides(self, rides: pl.DataFrame) -> pl.Series:
        """``ride`` of each row without its newline, a column at a time (null where ``ride`` is
        None): ``rides`` holds a column per field of ``_RIDE_FIELDS`` (stop times in epoch seconds),
        each distinct value's member worked out once and joined back (the stop times stamped at once)."""
        self._timetable.stamped(pl.concat([rides["board_time"], rides["alight_time"]]).unique())
        parts = []
        for field in _RIDE_FIELDS:
            values = rides.select(pl.col(field).unique())
            members = [None if (member := self._member(field, value)) is None else member.decode()
                       for value in values[field].to_list()]
            parts.append(rides.select(field).join(values.with_columns(pl.Series("_member", members, dtype=pl.String)),
                                                  on=field, how="left", maintain_order="left")["_member"])
        ride_us = (pl.col("alight_time") - pl.col("board_time")) * 1_000_000
        return rides.select(pl.when((ride_us > 0) & (ride_us <= self._max_ride_us))
                            .then(pl.concat_str([*parts, pl.lit("}")]))).to_series()

    def _member(self, field: str, value: Any) -> bytes | None:
        """``,"field":value`` as JSON (a time: epoch seconds, written as ``Timetable.stamp``), or
        None when the engine refuses that value there: worked out once per distinct value (a time's
        JSON once for both fields)."""
        found = self._members.get((field, value), False)
        if found is False:
            if field in _STOP_TIMES:
                stamp = self._members.get(("", value), False)  # the time's JSON, whichever field asked first
                if stamp is False:
                    text = self._timetable.stamp(value)
                    stamp = self._members[("", value)] = orjson.dumps(text) if _moment(text) else None
            elif _takes(field, value, self._max_ride_us):
                stamp = escape_line_breaks(orjson.dumps(value))
            else:
                stamp = None
            found = None if stamp is None else b',"' + field.encode() + b'":' + stamp
            if len(self._members) >= self._LIMIT:
                self._members.clear()
            self._members[(field, value)] = found
        return found


_STOP_TIMES = ("board_time", "alight_time")
_RIDE_FIELDS = ("mode", "service", "date", *_STOP_TIMES, "board_station", "alight_station", "confidence")  # ``_shared``
_VALID_RIDE = {"type": "trip", "trip_id": "tap:0", "person_id": "pid:0", "mode": "metro", "service": "L1",
               "date": "2020-01-15", "board_time": "2020-01-15T08:00:00+08:00",
               "alight_time": "2020-01-15T08:10:00+08:00"}  # ``_takes``: a line the engine takes


def _takes(field: str, value: Any, max_ride_us: int) -> bool:
    """Whether the engine takes a valid ride with ``field`` set to ``value``."""
    try:
        parse_line(json_record(_VALID_RIDE | {field: value}), max_ride_us)
    except InvalidEvent:
        return False
    return True


def _moment(stamp: str) -> bool:
    """Whether the engine reads ``stamp`` (a ``Timetable.stamp``) as a time: its own parse, cached."""
    try:
        repeated_time(stamp)
    except InvalidEvent:
        return False
    return True


def _trip_id(person: str, tap_in: int, leg: int, service: str) -> str:
    """Stable over re-imports of the same taps, so a re-import replaces rather than adds: the
    rider, the tap-in, the leg and the run (a run id is short: a line, a date, a time)."""
    return f"tap:{person[4:]}:{tap_in}:{leg}:{service}"


def caveats(chosen: list[Ride], ambiguous: int) -> tuple[bool, bool, bool]:
    """(sure, a leg too ambiguous, a leg below confidence 1) of a journey's ``fits``."""
    unsure = any(confidence < 1 for _, _, confidence in chosen)
    return not ambiguous and not unsure, ambiguous > 0, unsure


AMBIGUOUS = "a leg too ambiguous to trace (the journey's other legs are)"
UNSURE = "a leg on one of several runs that fit (confidence below 1)"
_TAPS = {"line": pl.UInt32, "_pid": pl.String, "_at": pl.Int64, "_in": pl.Boolean, "_station": pl.String,
         "_src": pl.UInt32}  # the taps ``Taps`` holds on the fast path: line, person, time, tap-in?, station, file
_COMMON_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-5][0-9]$"  # local_seconds' first form
_NO_LINES = pl.DataFrame(schema={"line": pl.UInt32, "json": pl.String})
_STATIONS = ["_from", "_to"]  # a journey's stations (keys), tapped in at ``_at_in`` and out at ``_at``
_FITTED = {"_key": pl.UInt32, "_sure": pl.Boolean, "_ambiguous": pl.Boolean, "_unsure": pl.Boolean,
           "_events": pl.Int64, "_longest": pl.Int64, "_reason": pl.String}  # a distinct journey's fit, or why
# it has none (``Taps._fitted``)
_RIDES = {"_key": pl.UInt32, "_ride": pl.Int64, "_suffix": pl.String, "_shared": pl.String}  # and its rides
_SPAN = 1 << 34  # ``_bisect``: epoch seconds of 1970-2100 fit below, with room for one on either side


def _by_card(taps: pl.DataFrame) -> pl.DataFrame:
    """``taps`` each card's together, in time order, ties in file order. Sorted by a hash of the
    person id (a third of the time of sorting the strings), unless two cards share a hash."""
    found = taps.with_columns(pl.col("_pid").hash().alias("_card")).sort("_card", "_at", "_src", "line")
    shared = (pl.col("_card") == pl.col("_card").shift(1)) & (pl.col("_pid") != pl.col("_pid").shift(1))
    return found.drop("_card") if not found.select(shared.any()).item() else taps.sort("_pid", "_at", "_src", "line")


def _refused(taps: pl.DataFrame, part: int, source: str, line: str, reason: pl.Expr) -> pl.DataFrame:
    """Rejected taps as (``_pid``, ``_rank``, ``_part``, ``_src``, ``line``, ``_reason``): the card,
    the order the reference settles it in (a journey's two taps at the tap-out's place, ``_part`` 0
    the tap-in, 1 the tap-out), its file and line, and why."""
    return taps.select("_pid", "_rank", pl.lit(part, dtype=pl.Int64).alias("_part"), pl.col(source).alias("_src"),
                       pl.col(line).alias("line"), reason.alias("_reason"))


def _rank(column: str) -> pl.Expr:
    """Each row's place (0, 1, ...) among the consecutive rows of its value of ``column``."""
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    return index - pl.when((pl.col(column) != pl.col(column).shift(1)).fill_null(True)).then(index).forward_fill()


def _searchable(pattern: Pattern) -> bool:
    """Whether ``_bisect`` finds ``pattern``'s runs as ``Pattern.between`` does: its runs do not
    overtake, and its times lie within ``_SPAN`` (a timetable of 1970 to 2100 does)."""
    times = [time for column in (*pattern.depart, *pattern.arrive) for time in column]
    return pattern.ordered and min(times, default=0) >= 0 and max(times, default=0) < _SPAN // 2


def _bisect(rows: pl.DataFrame, patterns: list[Pattern], position: str, at: pl.Expr, side: str) -> pl.Series:
    """``bisect_left`` (``side`` left) or ``bisect_right`` of each row's ``at`` in the departures
    (``position`` ``_b``) or arrivals (``_a``) of its ``_pattern`` at that position: one sorted
    column of (group, time) for every group the rows ask about, searched at once."""
    groups = rows.select("_pattern", position).unique().with_row_index("_group")
    flat, starts = [], []
    for group, pattern, at_position in groups.iter_rows():
        times = (patterns[pattern].depart if position == "_b" else patterns[pattern].arrive)[at_position]
        starts.append(len(flat))
        flat += [group * _SPAN + time + 1 for time in times]
    groups = groups.with_columns(pl.Series(starts, dtype=pl.Int64).alias("_start"))
    found = rows.select("_pattern", position, at.clip(-1, _SPAN - 2).alias("_at_")).join(
        groups, on=["_pattern", position], how="left", maintain_order="left")
    query = found["_group"].cast(pl.Int64) * _SPAN + found["_at_"] + 1
    return pl.Series(flat, dtype=pl.Int64).search_sorted(query, side=side) - found["_start"]  # type: ignore[arg-type]


class Taps:
    """Holds every tap until the input ends: a journey's two taps may be anywhere in the files.

    The reference (``columnar=False``) reads tap by tap (``row``) and pairs, fits and writes journey
    by journey (``pair``, ``_settle``). The fast path reads the plain rows of this tool's CSV a column
    at a time (``frame``), and ``end`` pairs the taps of a card without a duplicate tap (almost
    every card) by a shift (``_paired``: a tap-out and the tap-in before it), fits each distinct
    (origin, destination, tap-in, tap-out) once (those on one line by binary searches in their stop
    patterns' times, a column at a time), rejects the journeys that give no ride with ``fit``'s
    reason, and pastes the rides' lines together from their shared fields (``Lines.rides``) in
    polars. The rest (the taps of cards with a duplicate, and journeys with a line not valid by
    construction) is settled the reference's way; every rejection and note in its order: the same bytes and the
    same report (tests/test_import_transit.py)."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._timetable = timetable_of(context)
        self._network = Network(self._timetable)
        self._settings = settings_of(context.options)
        self._reader = TapReader(context.person_ids, self._timetable)
        self._lines = Lines(self._timetable, int(context.settings.rules.max_ride_hours * 3_600_000_000))
        self._taps: list[Tap] = []  # read by ``row``
        self._sources: list[int] = []  # and the file of each (fast path: an index of ``_wheres``)
        self._frames: list[pl.DataFrame] = []  # read by ``frame``: ``_TAPS``
        self._wheres: list[Callable[[int], str]] = []  # each file's ``Context.where``

    def row(self, record: Record, line: int) -> None:
        context = self._context
        self._taps.append(self._reader.read(record, line, context.where(line)))
        if context.columnar:
            self._sources.append(self._source())

    def frame(self, rows: pl.DataFrame, others: list[Record]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Holds the plain rows that read as taps: a direction, line and station once per distinct
        triple (``TapReader.place``), a time once per distinct minute (``local_seconds``' own
        ``_minute``), the person by ``PersonIds.column``; ``row`` takes the rest and gives each its
        reason. Pairing waits for ``end``, so ``others`` changes nothing."""
        places = []
        for kind, company, name in rows.select("direction", RENAMED, "station").unique().iter_rows():
            with contextlib.suppress(Rejected, NotTraced):
                places.append((kind, company, name, *self._reader.place(kind.strip(), company, name)))
        time, columns = pl.col("time"), rows.columns
        rows = rows.with_columns(time.str.contains(_COMMON_TIME).alias("_common"),
                                 time.str.slice(0, 16).alias("_minute"))
        minutes = rows.filter("_common").select(pl.col("_minute").unique())
        zone = self._timetable.zone
        minutes = minutes.with_columns(pl.Series("_at", [_minute(minute, zone) for minute in minutes["_minute"]],
                                                 dtype=pl.Int64))
        holder = pl.col("id_number").str.strip_chars()
        named = pl.col("id_type").str.to_lowercase().replace_strict(KIND_NAMES, default=None)
        kind = pl.when(holder != "").then(named).otherwise(pl.lit("card"))
        number = pl.when(holder != "").then(holder).otherwise(pl.col("card").str.strip_chars()).str.to_uppercase()
        schema = {"direction": pl.String, RENAMED: pl.String, "station": pl.String, "_in": pl.Boolean,
                  "_station": pl.String}
        found = rows.join(pl.DataFrame(places, schema=schema, orient="row"), on=["direction", RENAMED, "station"],
                          how="left").join(minutes, on="_minute", how="left").with_columns(
            pl.when("_common").then(pl.col("_at") + time.str.slice(17, 2).cast(pl.Int64)).alias("_at"),
            kind.alias("_kind"), number.alias("_number"))
        found = found.with_columns(plain_documents(found, "_kind", "_number").alias("_document"))
        plain = pl.col("_in").is_not_null() & pl.col("_at").is_not_null() & pl.col("_document")
        held = found.filter(plain)
        ids = self._context.person_ids
        if held.select((pl.col("_kind") == "card").all()).item():  # no holder named: the common export
            held = held.with_columns(ids.riders(held["_number"]).alias("_pid"))
        else:
            people = held.select("_kind", "_number").unique()
            cards, named = people.filter(pl.col("_kind") == "card"), people.filter(pl.col("_kind") != "card")
            people = pl.concat([  # a card rides as its holder when the card-holder list knows one (ids.riders)
                cards.with_columns(ids.riders(cards["_number"]).alias("_pid")),
                named.with_columns(ids.column(named["_kind"], named["_number"]).alias("_pid"))])
            held = held.join(people, on=["_kind", "_number"])
        held = held.select(*(pl.col(name).cast(dtype) for name, dtype in _TAPS.items() if name != "_src"),
                           pl.lit(self._source(), dtype=pl.UInt32).alias("_src"))
        self._frames.append(held)
        return _NO_LINES, found.filter(~plain).select(columns)

    def end(self) -> None:
        """Pair, fit and write every tap read (the class's docstring)."""
        if not self._context.columnar:
            for item in pair(self._taps, self._settings):
                self._settle(item)
            return
        taps = pl.concat([*self._frames, pl.DataFrame(
            {"line": [tap.line for tap in self._taps], "_pid": [tap.person for tap in self._taps],
             "_at": [tap.at for tap in self._taps], "_in": [tap.inward for tap in self._taps],
             "_station": [tap.station for tap in self._taps], "_src": self._sources}, schema=_TAPS)])
        self._taps, self._frames = [], []
        journeys, left, refused = self._paired(_by_card(taps))
        keys = journeys.select("_from", "_to", "_at_in", "_at").unique().with_row_index("_key")
        fitted, rides = self._fitted(keys)
        journeys = journeys.join(keys, on=["_from", "_to", "_at_in", "_at"]).join(fitted, on="_key", how="left")
        trip_id = (pl.col("_pid").str.len_chars() + 1 + pl.col("_at_in").cast(pl.String).str.len_chars()
                   + pl.col("_longest"))
        written = pl.col("_events").is_not_null() & (trip_id <= MAX_ID)
        rejected = pl.col("_reason").is_not_null()
        done = journeys.filter(written)
        refused, rest = self._refuse_all(pl.concat([refused, _refused(journeys.filter(rejected), 0, "_in_src",
                                                                     "_in_line", pl.col("_reason")),
                                                    _refused(journeys.filter(rejected), 1, "_src", "line",
                                                             pl.col("_reason"))]))
        for row in journeys.filter(~written & ~rejected).iter_rows(named=True):  # the reference's way
            left.append((row["_pid"], row["_rank"], self._journey(row)))
        firsts = self._settle_all([*left, *refused])
        self._context.report.rejected.update(rest)
        json = pl.concat_str(
            pl.lit('{"type":"trip","trip_id":"tap:'), pl.col("_pid").str.slice(4), pl.lit(":"),
            pl.col("_at_in").cast(pl.String), "_suffix", pl.lit('","person_id":"'), "_pid", pl.lit('"'), "_shared")
        lines = done.join(rides, on="_key").sort("_in_line", "_pid", "_rank", "_ride")
        self._context.written_lines(lines.select(pl.col("_in_line").alias("line"), json.alias("json")),
                                    2 * done.height, int(done["_events"].sum()), 2 * int(done["_sure"].sum()))
        self._noted(done, firsts)

    def _paired(self, taps: pl.DataFrame) -> tuple[pl.DataFrame, list[Settled], pl.DataFrame]:
        """``pair`` of the taps (sorted by card and time) a column at a time, for the cards without a
        duplicate tap: then a tap-out pairs with the tap before it when that is a tap-in, and every
        other tap is rejected by its neighbours alone. The journeys as columns (``_pid``, the tap-in's
        ``_at_in``, ``_from``, ``_in_line``, ``_in_src``, the tap-out's ``_at``, ``_to``, ``line``,
        ``_src``, and ``_rank``, its place among the card's taps); and ``pair``'s items for the rest
        (the rejected taps, and every tap of a card with a duplicate), with (card, order) to settle
        them in, the reference's order."""
        settings = self._settings
        last = (pl.col("_pid") != pl.col("_pid").shift(-1)).fill_null(True)
        taps = taps.with_columns(
            _rank("_pid").alias("_rank"), last.alias("_last"), pl.col("_in").shift(1).alias("_in_before"),
            pl.col("_in").shift(-1).alias("_in_after"),
            pl.col("_at").shift(1).alias("_at_in"), pl.col("_station").shift(1).alias("_from"),
            pl.col("line").shift(1).alias("_in_line"), pl.col("_src").shift(1).alias("_in_src"))
        after = pl.col("_rank") > 0  # not the card's first tap: the shifted columns are the tap before
        duplicate = (after & (pl.col("_in") == pl.col("_in_before")) & (pl.col("_station") == pl.col("_from"))
                     & (pl.col("_at") - pl.col("_at_in") <= settings.duplicate_seconds))  # the first, if any
        messy = pl.col("_pid").is_in(taps.filter(duplicate)["_pid"].unique().implode())
        left: list[Settled] = []
        others = [self._tap(*row) for row in taps.filter(messy).select(
            "_pid", "_at", "_in", "_station", "line", "_src").iter_rows()]
        for order, item in enumerate(pair(others, settings)):
            left.append(((item.tap_in if isinstance(item, Journey) else item[0]).person, order, item))
        taps = taps.filter(~messy)
        paired = ~pl.col("_in") & after & pl.col("_in_before")
        late = pl.col("_at") - pl.col("_at_in") > settings.max_ride_hours * 3600
        one = pl.col("_station") == pl.col("_from")
        unpaired = pl.when("_in").then(pl.col("_last") | pl.col("_in_after")).otherwise(~paired)  # and the reverse
        no_pair = pl.when("_in").then(pl.lit(NO_TAP_OUT)).otherwise(pl.lit(NO_TAP_IN))
        rejected = taps.filter(paired & (late | one))
        refused = pl.concat([
            _refused(taps.filter(unpaired), 0, "_src", "line", no_pair),  # a tap-in not followed by a tap-out
            _refused(rejected, 0, "_in_src", "_in_line", pl.when(late).then(pl.lit(NO_TAP_OUT)).otherwise(
                pl.lit(ONE_STATION))),
            _refused(rejected, 1, "_src", "line", pl.when(late).then(pl.lit(too_late(settings))).otherwise(
                pl.lit(ONE_STATION)))])
        journeys = taps.filter(paired & ~late & ~one).select(
            "_pid", "_at_in", "_from", "_in_line", "_in_src", "_at", pl.col("_station").alias("_to"), "line", "_src",
            "_rank")
        return journeys, left, refused

    def _refuse_all(self, refused: pl.DataFrame) -> tuple[list[Settled], Counter[str]]:
        """The taps the columnar path rejects (``_refused``'s columns) as items to settle, only the
        first ones of each reason in the reference's order (those the report can name), and the
        count of the rest by reason (added after settling: a reason's first row is settled)."""
        samples = self._context.report.samples
        ordered = refused.sort("_pid", "_rank", "_part")
        named = ordered if samples is None else ordered.filter(
            pl.int_range(pl.len()).over("_reason") < max(samples, 1))
        items: list[Settled] = [(pid, order, Refused(source, line, reason)) for pid, order, source, line, reason in
                                named.select("_pid", "_rank", "_src", "line", "_reason").iter_rows()]
        rest = Counter(dict(ordered["_reason"].value_counts().iter_rows()))
        rest.subtract(dict(named["_reason"].value_counts().iter_rows()))
        return items, rest

    def _fitted(self, keys: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Each distinct journey (``_key``: ``_from``, ``_to``, ``_at_in``, ``_at``) fitted once:
        for those whose rides are all valid by construction, (``_sure``, ``_ambiguous``, ``_unsure``,
        ``_events`` its rides, ``_longest`` the longest trip id suffix in characters), and the rides
        (``_ride`` in order, ``_suffix`` the trip id's end as JSON, ``_shared`` the rest of the line);
        for those that give no ride, ``_reason`` (``fit``'s). The others (a ride not valid by
        construction) are left out: the reference's way. Journeys on one line a column at a time
        (``_on_one_line``), the rest one by one (``fit``)."""
        lines = []
        for origin, destination in keys.select("_from", "_to").unique().iter_rows():
            legs = self._network.route(origin, destination)
            if legs is None:
                lines.append((origin, destination, None, None, None, NO_ROUTE))
            elif len(legs) == 1:
                lines.append((origin, destination, legs[0].line, legs[0].board, legs[0].alight, None))
        keys = keys.join(pl.DataFrame(lines, orient="row", schema=dict.fromkeys(
            [*_STATIONS, "_line", "_board", "_alight", "_reason"], pl.String)), on=_STATIONS, how="left")
        unrouted = keys.filter(pl.col("_reason").is_not_null()).select("_key", "_reason")
        fitted, rides, left = self._on_one_line(keys.filter(pl.col("_line").is_not_null()))
        more = self._one_by_one(pl.concat([
            keys.filter(pl.col("_line").is_null() & pl.col("_reason").is_null()).select(left.columns), left]))
        return pl.concat([fitted, more[0], unrouted], how="diagonal"), pl.concat([rides, more[1]])

    def _on_one_line(self, keys: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """``_fitted`` for journeys routed on one line, a column at a time: each run that fits found
        by a binary search (``search_sorted``) in its stop pattern's sorted times, as
        ``Pattern.between`` does; the service dates once per hour of tap-in, each leg placed on its
        patterns by joins (``_placed``), each distinct ride's line by ``Lines.rides``. Also the keys left to
        ``_one_by_one``: those on a pattern ``_bisect`` cannot search (runs that overtake)."""
        timetable, settings = self._timetable, self._settings
        hours = [(hour, *hour_days(hour, timetable.zone)) for hour in
                 keys.select((pl.col("_at_in") // 3600).unique())["_at_in"].to_list()]
        days = pl.DataFrame([(*row, timetable.last_arrival.get(row[2], 0)) for row in hours], orient="row",
                            schema={"_hour": pl.Int64, "_day": pl.String, "_before": pl.String, "_until": pl.Int64})
        found = keys.with_columns((pl.col("_at_in") // 3600).alias("_hour")).join(days, on="_hour")
        tried = pl.concat([found.with_columns(pl.lit(0).alias("_order")),  # the runs of the day, then of the day
                           found.filter(pl.col("_until") > pl.col("_at_in"))  # before while they still run
                           .with_columns(pl.col("_before").alias("_day"), pl.lit(1).alias("_order"))])
        patterns, placed = self._placed(tried.select("_day", "_line", "_board", "_alight").unique())
        tried = tried.join(placed, on=["_day", "_line", "_board", "_alight"], how="left")
        overtaken = tried.filter(~pl.col("_searchable"))["_key"].unique().implode()
        tried = tried.filter(pl.col("_searchable") & ~pl.col("_key").is_in(overtaken))
        first = _bisect(tried, patterns, "_b", pl.col("_at_in") + settings.walk_seconds, "left")
        last = _bisect(tried, patterns, "_a", pl.col("_at") - settings.walk_seconds, "right")
        tried = tried.with_columns(first.alias("_first"), last.alias("_last")).filter(
            pl.col("_last") > pl.col("_first"))
        counts = tried.group_by("_key").agg((pl.col("_last") - pl.col("_first")).sum().alias("_events"))
        sure_enough = 1.0 / pl.col("_events") >= settings.min_confidence
        searched = keys.filter(~pl.col("_key").is_in(overtaken)).select("_key").join(counts, on="_key", how="left")
        unfitted = searched.filter(~sure_enough.fill_null(False)).select("_key", pl.when(pl.col("_events").is_null())
                                                                           .then(pl.lit(NO_RUN))
                                                                           .otherwise(pl.lit(too_ambiguous(settings)))
                                                                           .alias("_reason"))
        counts = counts.filter(sure_enough)
        confidence = {events: round(1 / events, 4) for events in counts["_events"].unique().to_list()}
        runs = tried.join(counts, on="_key").sort("_key", "_order", "_place").with_columns(
            pl.int_ranges("_first", "_last").alias("_run")).explode("_run").select(
            "_key", "_events", "_pattern", "_run", "_b", "_a", _rank("_key").alias("_ride"))
        distinct = runs.select("_pattern", "_run", "_b", "_a", "_events").unique()
        values, services = [], {}
        for pattern, run, board, alight, events in distinct.iter_rows():
            ride = patterns[pattern].runs[run]
            values.append(("metro", ride.service, ride.date, ride.depart[board], ride.arrive[alight], ride.names[board],
                           ride.names[alight], confidence[events]))
            if ride.service not in services:
                suffix = f":0:{ride.service}"
                services[ride.service] = (escape_line_breaks(orjson.dumps(suffix))[1:-1].decode(), len(suffix))
        fields = pl.DataFrame(values, orient="row", schema=dict.fromkeys(_RIDE_FIELDS, pl.String)
                              | dict.fromkeys(_STOP_TIMES, pl.Int64) | {"confidence": pl.Float64})
        suffixes = pl.DataFrame([(service, *suffix) for service, suffix in services.items()], orient="row",
                                schema={"service": pl.String, "_suffix": pl.String, "_length": pl.Int64})
        distinct = pl.concat([distinct, fields.join(suffixes, on="service", how="left", maintain_order="left").select(
            "_suffix", "_length"), self._lines.rides(fields).alias("_shared").to_frame()], how="horizontal")
        runs = runs.join(distinct, on=["_pattern", "_run", "_b", "_a", "_events"])
        refused = runs.filter(pl.col("_shared").is_null())["_key"].unique().implode()
        runs = runs.filter(~pl.col("_key").is_in(refused))
        fitted = runs.group_by("_key").agg(pl.col("_events").first(), pl.col("_length").max().alias("_longest"))
        fitted = fitted.with_columns((pl.col("_events") == 1).alias("_sure"), pl.lit(False).alias("_ambiguous"),
                                     (pl.col("_events") > 1).alias("_unsure"))
        return (pl.concat([fitted, unfitted], how="diagonal").select(_FITTED.keys()), runs.select(_RIDES.keys()),
                keys.filter(pl.col("_key").is_in(overtaken)).select("_key", *_STATIONS, "_at_in", "_at"))

    def _placed(self, legs: pl.DataFrame) -> tuple[list[Pattern], pl.DataFrame]:
        """``Timetable.placed`` of each leg (``_day``, ``_line``, ``_board``, ``_alight``) a column at
        a time: the patterns of the legs' lines and days, numbered in ``Timetable.patterns``' order,
        and a row per leg and pattern that stops at ``_board`` and later at ``_alight`` (``_pattern``,
        ``_b`` and ``_a`` the first such stops, ``_place`` its place among the leg's patterns,
        ``_searchable`` by ``_bisect``)."""
        patterns: list[Pattern] = []
        stops = []
        for day, line in legs.select("_day", "_line").unique().iter_rows():
            for pattern in self._timetable.patterns(day, line):
                stops += [(day, line, len(patterns), station, position)
                          for position, station in enumerate(pattern.stations)]
                patterns.append(pattern)
        stops = pl.DataFrame(stops, orient="row", schema={"_day": pl.String, "_line": pl.String, "_pattern": pl.Int64,
                                                         "_board": pl.String, "_b": pl.Int64})
        leg = ["_day", "_line", "_board", "_alight"]
        boards = legs.join(stops, on=["_day", "_line", "_board"]).group_by(*leg, "_pattern").agg(pl.col("_b").min())
        alights = stops.select("_pattern", pl.col("_board").alias("_alight"), pl.col("_b").alias("_a"))
        placed = boards.join(alights, on=["_pattern", "_alight"]).filter(pl.col("_a") > pl.col("_b")).group_by(
            *leg, "_pattern", "_b").agg(pl.col("_a").min()).sort(*leg, "_pattern")
        used = placed["_pattern"].unique().to_list()  # the patterns of a line and day that no leg asks about: unread
        searchable = pl.DataFrame({"_pattern": used, "_searchable": [_searchable(patterns[at]) for at in used]},
                                  schema={"_pattern": pl.Int64, "_searchable": pl.Boolean})
        return patterns, placed.join(searchable, on="_pattern").select(
            *leg, pl.int_range(pl.len(), dtype=pl.Int64).over(leg).alias("_place"), "_pattern", "_b", "_a",
            "_searchable")

    def _one_by_one(self, keys: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """``_fitted`` of each key by ``fit``: journeys that change lines, or ride overtaking runs."""
        fitted: list[tuple[int, bool | None, bool | None, bool | None, int | None, int | None, str | None]] = []
        rides: list[tuple[int, int, str, str]] = []
        timetable, network, settings, lines = self._timetable, self._network, self._settings, self._lines
        for key, origin, destination, tap_in, tap_out in keys.select("_key", *_STATIONS, "_at_in", "_at").iter_rows():
            try:
                chosen, ambiguous = fit(origin, destination, tap_in, tap_out, timetable, network, settings)
            except Rejected as exc:
                fitted.append((key, None, None, None, None, None, str(exc)))
                continue
            shared = [lines.ride(candidate, confidence) for _, candidate, confidence in chosen]
            if None in shared:
                continue
            suffixes = [f":{number}:{candidate.run.service}" for number, candidate, _ in chosen]
            fitted.append((key, *caveats(chosen, ambiguous), len(chosen), max(map(len, suffixes)), None))
            rides += [(key, at, escape_line_breaks(orjson.dumps(suffix))[1:-1].decode(), part[:-1].decode())
                      for at, (suffix, part) in enumerate(zip(suffixes, shared, strict=True))]  # type: ignore[index]
        return pl.DataFrame(fitted, schema=_FITTED, orient="row"), pl.DataFrame(rides, schema=_RIDES, orient="row")

    def _settle_all(self, items: list[Settled]) -> dict[str, tuple[str, int]]:
        """``_settle`` each item in the reference's order (card, then order); where each note was first made."""
        report, firsts = self._context.report, {}
        for person, order, item in sorted(items, key=lambda entry: entry[:2]):
            noted = report.noted
            self._settle(item)
            if report.noted != noted:
                for note in report.notes:
                    firsts.setdefault(note, (person, order))
        return firsts

    def _noted(self, done: pl.DataFrame, firsts: dict[str, tuple[str, int]]) -> None:
        """The notes of the journeys written a column at a time, the report's notes in the order the
        reference makes them first (its counter lists ties in that order)."""
        report = self._context.report
        for note, flag in ((AMBIGUOUS, "_ambiguous"), (UNSURE, "_unsure")):
            flagged = done.filter(flag).sort("_pid", "_rank")
            if flagged.height:
                report.notes[note] += flagged.height
                report.noted += flagged.height
                first = (flagged["_pid"][0], flagged["_rank"][0])
                firsts[note] = min(firsts.get(note, first), first)
        order = (AMBIGUOUS, UNSURE)
        report.notes = Counter({note: report.notes[note] for note in sorted(
            report.notes, key=lambda note: (*firsts.get(note, ("", -1)), order.index(note) if note in order else -1))})

    def _settle(self, item: Journey | tuple[Tap, str] | Refused) -> None:
        """A tap that is no journey rejected, or a journey fitted and its rides written."""
        context = self._context
        if isinstance(item, Refused):
            context.report.reject(self._wheres[item.source](item.line), item.reason)
            return
        if isinstance(item, tuple):
            context.report.reject(item[0].where, item[1])
            return
        try:
            chosen, ambiguous = fits(item, self._timetable, self._network, self._settings)
        except Rejected as exc:
            context.report.reject(item.tap_in.where, str(exc))
            context.report.reject(item.tap_out.where, str(exc))
            return
        sure, too_ambiguous, unsure = caveats(chosen, ambiguous)
        if too_ambiguous:
            context.report.note(AMBIGUOUS)
        if unsure:
            context.report.note(UNSURE)
        encoded = self._lines.of(item.tap_in, chosen)
        if encoded is None:
            events = rides(item, self._timetable, self._network, self._settings)[0]
            context.emit(item.tap_in.line, events, clean=sure)
        else:
            context.written(item.tap_in.line, encoded, len(chosen), clean=sure)
        context.written(item.tap_out.line, b"", 0, clean=sure)

    def _source(self) -> int:
        """The index of the file being read (its ``Context.where``)."""
        where = self._context.where
        if not self._wheres or self._wheres[-1] is not where:
            self._wheres.append(where)
        return len(self._wheres) - 1

    def _tap(self, person: str, at: int, inward: bool, station: str, line: int, source: int) -> Tap:
        return Tap(person, at, inward, station, line, self._wheres[source](line))

    def _journey(self, row: dict[str, Any]) -> Journey:
        """A journey of ``_paired``'s columns as taps."""
        return Journey(self._tap(row["_pid"], row["_at_in"], True, row["_from"], row["_in_line"], row["_in_src"]),
                       self._tap(row["_pid"], row["_at"], False, row["_to"], row["line"], row["_src"]))


def settings_of(options: argparse.Namespace) -> TapSettings:
    defaults = TapSettings()
    return TapSettings(
        getattr(options, "walk_seconds", defaults.walk_seconds),
        getattr(options, "max_ride_hours", defaults.max_ride_hours),
        getattr(options, "duplicate_seconds", defaults.duplicate_seconds),
        getattr(options, "min_confidence", defaults.min_confidence),
    )


def bounded(kind: type, low: float, high: float) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` within ``[low, high]``, else a usage error saying so."""
    def read(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low:g} to {high:g}, got {text!r}")
        return value
    return read


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_timetable_argument(parser)
    defaults = TapSettings()
    parser.add_argument("--walk-seconds", type=bounded(int, 0, 3600), default=defaults.walk_seconds,
                        help=f"gate to platform, at least (default {defaults.walk_seconds})")
    parser.add_argument("--max-ride-hours", type=bounded(float, 0.1, 24), default=defaults.max_ride_hours,
                        help="a tap-out this long after a tap-in does not pair with it "
                        f"(default {defaults.max_ride_hours:g})")
    parser.add_argument("--duplicate-seconds", type=bounded(int, 0, 3600), default=defaults.duplicate_seconds,
                        help=f"the same tap again within this is one tap (default {defaults.duplicate_seconds})")
    parser.add_argument("--min-confidence", type=bounded(float, 0.01, 1), default=defaults.min_confidence,
                        help="a leg is traced when 1 / its fitting runs is at least this (default "
                        f"{defaults.min_confidence:g}: one run, or either of two); docs/rules.md")


def read_taps(path: str, kind: Kind) -> Iterator[tuple[int, dict[str, str]] | BadRow]:
    """Records of this tool's CSV, of Shenzhen Tong's CSV (told by its ``deal_type`` column), or of
    Shenzhen Tong's JSON (an array, ``{"data": [...]}``, or one object a line)."""
    form = tap_format(path)
    if form == "json":
        yield from _json_records(path)
    elif form == "shenzhen":
        yield from read_rows(path, SHENZHEN, SHENZHEN_OPTIONAL, "Shenzhen Tong tap data")
    else:
        yield from read_rows(path, kind.required, kind.optional, kind.what)


def tap_format(path: str) -> str:
    """``json``, ``shenzhen`` (Shenzhen Tong's CSV) or ``csv`` (this tool's), from the file's start."""
    with open(path, "rb") as stream:
        head = stream.read(65_536).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"[", b"{"):
        return "json"
    return "shenzhen" if b"deal_type" in head.split(b"\n", 1)[0] else "csv"


def _json_records(path: str) -> Iterator[tuple[int, dict[str, str]] | BadRow]:
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        whole: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and isinstance(whole.get("data"), list):
        whole = whole["data"]
    if isinstance(whole, list):
        for index, item in enumerate(whole, 1):
            yield _json_record(index, item)
        return
    for number, raw in enumerate(data.splitlines(), 1):
        if raw.strip():
            try:
                yield _json_record(number, orjson.loads(raw))
            except orjson.JSONDecodeError as exc:
                yield BadRow(number, f"broken JSON: {exc}")


def _json_record(line: int, item: Any) -> tuple[int, dict[str, str]] | BadRow:
    if not isinstance(item, dict):
        return BadRow(line, "not a JSON object")
    if any(isinstance(value, dict | list) for value in item.values()):
        return BadRow(line, "a field holds a list or an object, not a value")
    if "deal_type" not in item:
        return BadRow(line, "not a Shenzhen Tong record (no deal_type)")
    record = {name: "" if item.get(name) is None else str(item[name]) for name in (*SHENZHEN, *SHENZHEN_OPTIONAL)}
    return line, record


KIND = Kind(
    name="taps",
    help="metro card taps (AFC; or Shenzhen Tong CSV/JSON) -> journeys -> rides on the runs a GTFS --timetable allows",
    what="a metro tap export",
    required=REQUIRED,
    optional=OPTIONAL,
    start=Taps,
    arguments=add_arguments,
    read=read_taps,
    cards=True,
    plain=lambda path: tap_format(path) == "csv",
)
