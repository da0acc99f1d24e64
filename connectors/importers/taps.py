"""Metro card taps (AFC gate records) -> journeys -> metro rides on the runs the timetable allows.

A tap says card, time, in or out, line and station: no train, no carriage. Taps are paired per
card in time order (an in, then the next out within ``max_ride_hours``); what does not pair is
reported: a tap-in with no tap-out, a tap-out with no tap-in, the same tap twice within
``duplicate_seconds`` (a gate read twice), an exit at the station of entry (no ride). Each journey
is routed and its runs inferred (``connectors/importers/journeys.py``).

How an uncertain ride is traced (docs/rules.md, "Metro rides inferred from card taps"): each run
that fits a leg gets ``confidence`` = 1 / the number of runs that fit it; the runs of a leg are
written when that share is at least ``min_confidence`` (default 0.5: one run, or either of two),
else the leg is reported as ambiguous and not traced. An inferred ride never has a carriage, so it
can only make or be a general contact (``metro.same_train``), never a close one.

Two formats are read: this tool's CSV (``card,time,direction,line,station``) and the Shenzhen Tong
open data as published (CSV or JSON, ``deal_date``, ``card_no``, ``deal_type`` ``地铁入站`` /
``地铁出站`` / ``巴士``, ``company_name`` ``地铁五号线``, ``station``); a bus tap is counted as not
traced. Times without an offset are local time in the timetable's zone.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from connectors.importers.gtfs import Timetable, line_name
from connectors.importers.journeys import Network, fitting_runs
from tracer.events import format_time

DIRECTIONS = {"in": True, "entry": True, "进站": True, "地铁入站": True, "out": False, "exit": False,
              "出站": False, "地铁出站": False}
NOT_TRACED = {"巴士": "bus tap: buses are not traced"}
_LOCAL_TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})")


@dataclass(frozen=True, slots=True)
class TapSettings:
    walk_seconds: int = 60  # gate to platform (and platform to platform at a transfer), at least
    max_ride_hours: float = 4.0  # a tap-out later than this after the tap-in does not pair with it
    duplicate_seconds: int = 60  # the same card, direction and station again within this: one tap
    min_confidence: float = 0.5  # a leg whose fitting runs are fewer than 1 / this is not traced


@dataclass(frozen=True, slots=True)
class Tap:
    card: str
    at: int  # epoch seconds
    inward: bool
    station: str  # station key
    name: str  # station as written
    where: str  # source and line, for the report


@dataclass(frozen=True, slots=True)
class Journey:
    card: str
    tap_in: Tap
    tap_out: Tap


class Problem(Exception):
    """A record or journey that gives no ride: ``reason`` for the report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_tap(record: dict[str, Any], where: str, timetable: Timetable) -> Tap:
    """One record (either format) as a tap, or ``Problem``."""
    shenzhen = "deal_type" in record
    kind = _text(record, "deal_type" if shenzhen else "direction")
    if kind in NOT_TRACED:
        raise Problem(NOT_TRACED[kind])
    inward = DIRECTIONS.get(kind.strip().lower())
    if inward is None:
        raise Problem(f"direction {kind!r} is neither a tap-in nor a tap-out")
    card = _text(record, "card_no" if shenzhen else "card").strip()
    if not card:
        raise Problem("no card number")
    name = _text(record, "station").strip()
    station = timetable.station(name)
    if station is None:
        raise Problem(f"station {name!r} is not in the timetable")
    line = _text(record, "company_name" if shenzhen else "line")
    if line.strip() and line_name(line) is None:
        raise Problem(f"line {line!r} names no numbered line")
    return Tap(card, local_seconds(_text(record, "deal_date" if shenzhen else "time"), timetable.zone), inward,
               station, name, where)


def _text(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        raise Problem(f"missing {name}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or len(value) > 256:
        raise Problem(f"{name} is not a short text")
    return value


def local_seconds(text: str, zone: ZoneInfo) -> int:
    """Epoch seconds of ``2018-08-31 22:14:50`` (local time in ``zone``) or of an ISO 8601 time with
    an offset; ``Problem`` for anything else."""
    found = _LOCAL_TIME.fullmatch(text.strip())
    if found:
        minute = _minute(found[1], int(found[2]), int(found[3]), zone)
        if minute is not None and int(found[4]) < 60:
            return minute + int(found[4])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None or not 1970 <= moment.year < 2100:
        raise Problem(f"time {text[:40]!r} is not 'YYYY-MM-DD HH:MM:SS' (local) or ISO 8601 with an offset")
    return int(moment.timestamp())


@lru_cache(maxsize=1 << 16)  # a day of taps has 1,440 distinct minutes
def _minute(day: str, hour: int, minute: int, zone: ZoneInfo) -> int | None:
    try:
        moment = datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=zone)
    except ValueError:
        return None
    return int(moment.timestamp()) if 1970 <= moment.year < 2100 else None


def pair(taps: Iterable[Tap], settings: TapSettings) -> Iterator[Journey | tuple[Tap, str]]:
    """Journeys, and ``(tap, reason)`` for every tap that is not part of one, per card in time
    order (ties in file order)."""
    by_card: dict[str, list[Tap]] = defaultdict(list)
    for tap in taps:
        by_card[tap.card].append(tap)
    longest = settings.max_ride_hours * 3600
    for card in sorted(by_card):
        opened: Tap | None = None
        last: Tap | None = None
        for tap in sorted(by_card[card], key=lambda tap: tap.at):
            if (last is not None and last.inward == tap.inward and last.station == tap.station
                    and tap.at - last.at <= settings.duplicate_seconds):
                yield tap, "duplicate tap: the same card, direction and station again"
                continue
            last = tap
            if tap.inward:
                if opened is not None:
                    yield opened, "tap-in without a tap-out"
                opened = tap
            elif opened is None:
                yield tap, "tap-out without a tap-in"
            elif tap.at - opened.at > longest:
                yield opened, "tap-in without a tap-out"
                yield tap, f"tap-out more than max_ride_hours ({settings.max_ride_hours:g}) after the tap-in"
                opened = None
            elif tap.station == opened.station:
                yield tap, "tap-out at the station of the tap-in: no ride"
                opened = None
            else:
                yield Journey(card, opened, tap)
                opened = None
        if opened is not None:
            yield opened, "tap-in without a tap-out"


def rides(
    journey: Journey, timetable: Timetable, network: Network, settings: TapSettings, person_id: Callable[[], str]
) -> list[dict[str, Any]]:
    """The trip events of a journey (``person_id`` is called once, when there is one), or ``Problem``."""
    legs = network.route(journey.tap_in.station, journey.tap_out.station)
    if legs is None:
        raise Problem(f"no route from {journey.tap_in.name!r} to {journey.tap_out.name!r}")
    found = fitting_runs(timetable, legs, journey.tap_in.at, journey.tap_out.at, settings.walk_seconds)
    if found is None:
        raise Problem(f"no run fits the taps from {journey.tap_in.name!r} to {journey.tap_out.name!r}")
    shares = [1 / len(fits) for fits in found]
    if min(shares) < settings.min_confidence:
        raise Problem(f"ambiguous: {max(len(fits) for fits in found)} runs fit a leg (min_confidence "
                      f"{settings.min_confidence:g})")
    person, zone = person_id(), timetable.zone
    events = []
    for number, (fits, share) in enumerate(zip(found, shares, strict=True)):
        for candidate in fits:
            run = candidate.run
            events.append({
                "type": "trip",
                "trip_id": _trip_id(person, journey.tap_in.at, number, run.service),
                "person_id": person,
                "mode": "metro",
                "service": run.service,
                "date": run.date,
                "board_time": format_time(run.depart[candidate.board] * 1_000_000, zone),
                "alight_time": format_time(run.arrive[candidate.alight] * 1_000_000, zone),
                "board_station": run.names[candidate.board],
                "alight_station": run.names[candidate.alight],
                "confidence": round(share, 4),
            })
    return events


def _trip_id(person: str, tap_in: int, leg: int, service: str) -> str:
    """Stable over re-imports of the same taps, so a re-import replaces rather than adds."""
    return "tap:" + hashlib.sha256(f"{person}\x1f{tap_in}\x1f{leg}\x1f{service}".encode()).hexdigest()[:20]
