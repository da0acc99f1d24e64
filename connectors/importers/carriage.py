"""Carriage codes (车厢码) -> metro rides in a named carriage, without any timetable.

From February 2020 Shanghai's metro riders scanned a code inside the carriage. The code names the
train set and the carriage, so two riders who scanned codes of one carriage were in it together
while their rides overlapped: the ride's ``service`` is the train set, its ``carriage`` the
carriage, its ``date`` the local date of the scan (docs/rules.md, "Metro rides from carriage
codes"). A ride starts at the scan and ends at the rider's next tap-out (from ``--taps``) less the
walk from the platform to the gate, or, with no tap-out within ``default_ride_minutes``, that long
after the scan. These are close-contact rides (``metro.same_carriage``): the carriage is known.

A code is ``TRAIN_SET:CARRIAGE`` (``L2-T03:5``), or the file has ``train_set`` and ``carriage``
columns. The rider is ``card``, or ``id_type`` and ``id_number``.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from connectors.importers.taps import Problem, local_seconds
from tracer.analysis.question import read_carriage
from tracer.errors import InputError
from tracer.events import format_time


@dataclass(frozen=True, slots=True)
class CarriageSettings:
    default_ride_minutes: int = 30  # a scan with no tap-out after it: the ride is taken to last this long
    walk_seconds: int = 60  # platform to gate: a tap-out is this long after the rider left the carriage


def read_code(record: dict[str, Any]) -> tuple[str, str]:
    """(train set, carriage) of a scan, or ``Problem``."""
    if record.get("train_set") is not None:
        train_set, carriage = str(record["train_set"]), str(record.get("carriage") or "")
    else:
        train_set, _, carriage = str(record.get("code") or "").strip().rpartition(":")
    train_set = train_set.strip()
    if not train_set or not carriage.strip():
        raise Problem(f"carriage code {str(record.get('code') or '')[:40]!r} is not TRAIN_SET:CARRIAGE")
    if len(train_set) > 64 or not train_set.isprintable():
        raise Problem("train set is longer than 64 characters or holds control characters")
    try:
        label = read_carriage(carriage)
    except InputError as exc:
        raise Problem(str(exc)) from None
    if label is None:
        raise Problem("no carriage")
    return train_set, label


def rider(record: dict[str, Any], person_id: Callable[[str, str], str]) -> tuple[str, str | None]:
    """(person id, card or None) of a scan: by card when it has one, else by ID."""
    card = str(record.get("card") or "").strip()
    if card:
        return person_id("card", card), card
    id_type, number = str(record.get("id_type") or "").strip(), str(record.get("id_number") or "").strip()
    if not id_type or not number:
        raise Problem("no card and no id_type and id_number")
    return person_id(id_type, number), None


class TapOuts:
    """Each card's tap-outs, sorted, to end the rides of its scans."""

    def __init__(self, taps: dict[str, list[int]]) -> None:
        self._taps = {card: sorted(times) for card, times in taps.items()}

    def after(self, card: str | None, moment: int, within: int) -> int | None:
        times = self._taps.get(card or "")
        if not times:
            return None
        at = bisect_right(times, moment)
        return times[at] if at < len(times) and times[at] - moment <= within else None


def scan_trip(
    record: dict[str, Any], zone: ZoneInfo, taps: TapOuts, settings: CarriageSettings,
    person_id: Callable[[str, str], str],
) -> dict[str, Any]:
    """The trip event of one scan, or ``Problem``."""
    train_set, carriage = read_code(record)
    scanned = local_seconds(str(record.get("time") or ""), zone)
    person, card = rider(record, person_id)
    longest = settings.default_ride_minutes * 60
    out = taps.after(card, scanned, 4 * 3600)
    end = out - settings.walk_seconds if out is not None and out - settings.walk_seconds > scanned else None
    if end is None:
        end = scanned + longest
    board = format_time(scanned * 1_000_000, zone)
    return {
        "type": "trip",
        "trip_id": "scan:" + hashlib.sha256(f"{person}\x1f{train_set}\x1f{carriage}\x1f{scanned}".encode())
        .hexdigest()[:20],
        "person_id": person,
        "mode": "metro",
        "service": train_set,
        "date": board[:10],
        "board_time": board,
        "alight_time": format_time(end * 1_000_000, zone),
        "carriage": carriage,
    }
