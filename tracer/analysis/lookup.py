"""Same-trip lookup (同程排查): did a known case or published exposure ride this service that day?

Answers from the source rides stored for that service day: one group scan per mode, never a
scan of the whole state. Given the caller's carriage or seat, it also says which level the rules
would give them, or that it cannot tell.

A lookup must never be a false all-clear: an empty answer means "no case rode it". So a question
the engine would not take as a ride (a date not YYYY-MM-DD, an id it refuses) is an error with the
engine's own reason, and a date whose service days retention has dropped is an error too.
"""

from __future__ import annotations

from typing import Any

from graph.keys import META, WATERMARK, group
from graph.store import Store
from tracer.analysis.queries import rides_on, source
from tracer.errors import InputError, InvalidEvent, StateError
from tracer.events import Trip, format_time
from tracer.events import _date as _engine_date
from tracer.events import _id as _engine_id
from tracer.events import _label as _engine_label
from tracer.rules import Level, classify, retention_horizon, seat_row
from tracer.settings import RuleSettings
from tracer.sources import FAR


def check_question(
    date: str, service: str, carriage: str | None, seat: str | None
) -> tuple[str, str, str | None, str | None]:
    """The question's values as the engine reads a ride's (``tracer/events.py``'s validators), or
    InputError with the engine's reason, named by the command's option."""
    try:
        return (
            _engine_date({"--date": date}, "--date"),
            _engine_id({"--service": service}, "--service"),
            _engine_label({"--carriage": carriage}, "--carriage"),
            _engine_label({"--seat": seat}, "--seat"),
        )
    except InvalidEvent as exc:
        raise InputError(exc.reason) from None


def lookup(
    store: Store,
    rules: RuleSettings,
    date: str,
    service: str,
    carriage: str | None = None,
    seat: str | None = None,
    mode: str | None = None,
) -> list[dict[str, Any]]:
    date, service, carriage, seat = check_question(date, service, carriage, seat)
    _check_retained(store, rules, date)
    answers = []
    for key, ride in rides_on(store, date, service, mode):
        src = source(store, key, rules)
        if src is None or src.via_person_id is not None:
            continue  # secondary-tracing rides are about contacts, not cases
        answer: dict[str, Any] = {
            "kind": src.kind,
            "case_id": src.case_id,
            "mode": ride.mode,
            "service": ride.service,
            "date": ride.date,
            "carriage": ride.carriage,
            "seat": ride.seat,
            "board_station": ride.board_station,
            "alight_station": ride.alight_station,
            "board_time": format_time(ride.board, rules.zone) if abs(ride.board) < FAR else None,
            "alight_time": format_time(ride.alight, rules.zone) if abs(ride.alight) < FAR else None,
            "source": src.exposure.source if src.exposure is not None else None,
        }
        if carriage is not None or seat is not None:
            answer.update(_your_level(ride, carriage, seat, rules))
        answers.append(answer)
    return answers


def _check_retained(store: Store, rules: RuleSettings, date: str) -> None:
    """StateError when ``date`` is behind the state's retention horizon: its rides are purged, so
    an empty answer would be a false all-clear."""
    mark = store.get(group(META), WATERMARK)
    if mark is None:
        return
    horizon = retention_horizon(int(mark), rules)
    if date < horizon:
        raise StateError(
            f"cannot answer for {date}: the state keeps service days from {horizon} on "
            f"(retention_days {rules.retention_days} before its event time); earlier ones are dropped"
        )


def _your_level(ride: Trip, carriage: str | None, seat: str | None, rules: RuleSettings) -> dict[str, Any]:
    """The caller's level and rule against ``ride``; when the rules would say general only because
    the caller's place is unknown to them, no level but why (``cannot_tell``)."""
    caller = Trip("caller", "", ride.mode, ride.service, ride.date, ride.board, ride.alight, carriage, seat)
    level, rule = classify(ride, caller, rules)
    unknown = _unplaced(ride, carriage, seat) if level == Level.GENERAL else None
    if unknown is not None:
        return {"your_level": None, "rule": None, "cannot_tell": unknown}
    return {"your_level": level, "rule": rule, "cannot_tell": None}


def _unplaced(ride: Trip, carriage: str | None, seat: str | None) -> str | None:
    """Why the rules cannot place the caller near ``ride`` when the ride itself has a place: a
    flight's rules need a seat row, a train's and metro's a carriage."""
    if ride.mode == "flight":
        if (seat_row(ride.seat) is None and ride.crew_rows is None) or seat_row(seat) is not None:
            return None
        return f"cannot tell: seat {seat} is not a row and letter" if seat else "cannot tell: no --seat on a flight"
    if ride.carriage is None or carriage is not None:
        return None
    return "cannot tell: no --carriage on a train or metro"
