"""The close-contact rules of docs/rules.md as pure functions (no I/O, no state).

The embedded runner and the Kafka workers both call these, so a rule is written once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache, partial
from typing import Any, NamedTuple

from tracer.events import Case, Trip, format_time, local_midnight
from tracer.settings import RuleSettings


class Level(StrEnum):
    """How close a contact is: the one set of level names (alerts, queues, views, pictures)."""

    CLOSE = "close"  # 密切接触者: a rule of docs/rules.md, with a case
    SECONDARY = "secondary"  # 次密接: a close contact's close contact (through a via source)
    GENERAL = "general"  # 一般接触者: on the same service, not close


# A presymptomatic case is reported before its onset, but never by more than the longest incubation
# period the national editions use (14 days): a later onset is a typo, and would withdraw the case.
MAX_ONSET_AFTER_REPORT_DAYS = 14

# The members themselves, read once: ``Level.CLOSE`` is a lookup through the enum's metaclass (0.3 us
# in Python 3.11), and a case's recompute classifies every rider of its days.
CLOSE, SECONDARY, GENERAL = Level.CLOSE, Level.SECONDARY, Level.GENERAL
_RANK = {CLOSE: 2, GENERAL: 1}
_ROW = re.compile(r"\s*(\d{1,4})", re.ASCII)
_BAY = re.compile(r"-?[0-9]+")  # int() would also read "３", "+3" and "1_0"
_OPEN_END = 1 << 62  # an open window (not yet isolated) ends "never"
_DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class Window:
    """A case's exposure window ``[start, end)`` in epoch microseconds."""

    start: int
    end: int


class Match(NamedTuple):
    """The best reason a contact ride makes someone a contact of a case ride (a NamedTuple, as
    ``Change``: one per ride pair compared)."""

    level: str
    rule: str
    start: int
    end: int
    case_trip: Trip
    contact_trip: Trip

    def sort_key(self) -> tuple[int, int, int, str, str, str, str, str, str, str]:
        """Smaller is better: higher level, earlier start, later end; then the rest of what the
        alert shows (carriages, seats, rule), and only then the trip ids. Ids are made up for trips
        published without one (tracer/events.py), and the alert must not depend on how: an oracle
        run found two id-less rides of one person, tied, that its own ids ordered the other way."""
        case, contact = self.case_trip, self.contact_trip
        shown = (case.carriage or "", case.seat or "", contact.carriage or "", contact.seat or "", self.rule)
        return (-_RANK[self.level], self.start, -self.end, *shown, case.trip_id, contact.trip_id)


# ``Match(...)`` without the Python-level ``__new__`` a NamedTuple has: a recompute makes one a contact.
_new_match = partial(tuple.__new__, Match)


def case_window(case: Case, rules: RuleSettings) -> Window:
    first_day = (date.fromisoformat(case.onset) - timedelta(days=rules.lookback_days)).isoformat()
    start = local_midnight(first_day, rules.zone)
    return Window(start, _OPEN_END if case.isolated_at is None else case.isolated_at)


def service_date_problem(date: str, moment: int | None, rules: RuleSettings, *, name: str = "start") -> str | None:
    """Why a ride's board time (an exposure's start, named ``name``) cannot belong to service
    ``date``, or None when it can (or is unknown). The date keys the ride's state and its retention,
    so the time must lie from 00:00 of the day before the date to ``max_ride_hours`` after the end
    of the day after it (docs/rules.md, "Event time"): ``[midnight - 1 day, midnight + 2 days +
    max_ride_hours)``, days of 24 hours counted from the date's local midnight in ``rules.zone``."""
    if moment is None:
        return None
    first, last = service_date_bounds(date, rules)
    if first <= moment < last:
        return None
    return (
        f"{name} {format_time(moment, rules.zone)} is too far from service date {date} (allowed: "
        "from the day before it to max_ride_hours after the day after it)"
    )


def onset_problem(case: Case, zone: Any) -> str | None:
    """Why a case's onset is refused (None: it is not): the window starts from the onset, so an
    onset far after the report (a typo) would silently withdraw the case."""
    reported = date.fromisoformat(format_time(case.reported_at, zone)[:10])
    latest = (reported + timedelta(days=MAX_ONSET_AFTER_REPORT_DAYS)).isoformat()
    if case.onset <= latest:
        return None
    return (f"onset {case.onset} is more than {MAX_ONSET_AFTER_REPORT_DAYS} days after the case was reported "
            f"({reported})")


@lru_cache(maxsize=4096)  # feeds repeat a few service dates, and every trip's is checked
def service_date_bounds(date: str, rules: RuleSettings) -> tuple[int, int]:
    """``[first, last)``: the board times (epoch microseconds) a ride of service ``date`` may have."""
    first = local_midnight(date, rules.zone) - _DAY_US
    return first, first + 3 * _DAY_US + int(rules.max_ride_hours * 3_600_000_000)


def retention_horizon(watermark: int, rules: RuleSettings, days: int | None = None) -> str:
    """The first service date a state at event time ``watermark`` still holds: the watermark's
    local date minus ``retention_days`` (earlier days are purged); ``days`` instead, for what is
    kept longer (published exposures: ``exposure_retention_days``)."""
    today = date.fromisoformat(format_time(watermark, rules.zone)[:10])
    return (today - timedelta(days=rules.retention_days if days is None else days)).isoformat()


def rides_in_window(trip: Trip, window: Window) -> bool:
    """Whether a case ride can expose anyone: it must overlap the window."""
    return trip.board < window.end and trip.alight > window.start


def classify(case_trip: Trip, contact: Trip, rules: RuleSettings) -> tuple[str, str]:
    """Level and rule name for two rides of the same service and date that overlap."""
    if case_trip.mode == "flight":
        return _flight(case_trip, contact, rules.flight_row_span)
    if case_trip.mode == "train":
        return _train(case_trip, contact, rules.train_bay_span)
    if case_trip.carriage is not None and case_trip.carriage == contact.carriage:
        return CLOSE, "metro.same_carriage"
    return GENERAL, "metro.same_train"


def close_candidates(case_trip: Trip, riders: dict[str, list[Trip]], rules: RuleSettings) -> list[str]:
    """The riders (person -> their rides on ``case_trip``'s service day) with a ride that ``classify``
    calls close to ``case_trip``, time aside (``match`` checks the overlap). Secondary tracing counts
    close contacts only, so it skips every other rider of a run: on a flight, all but a few rows.
    On trains and metro every close rule needs the case's carriage (docs/rules.md), a cheap test first."""
    flight, carriage = case_trip.mode == "flight", case_trip.carriage
    if not flight and carriage is None:
        return []
    return [
        person
        for person, trips in riders.items()
        if any(
            (flight or trip.carriage == carriage) and classify(case_trip, trip, rules)[0] == CLOSE
            for trip in trips
        )
    ]


@lru_cache(maxsize=1 << 12)  # a flight has a few hundred seat labels, compared pairwise: 5% of a large case
def seat_row(seat: str | None) -> int | None:
    """``32C`` -> 32; None when there is no leading number."""
    match = _ROW.match(seat) if seat else None
    return int(match.group(1)) if match else None


def _flight(case_trip: Trip, contact: Trip, row_span: int) -> tuple[str, str]:
    case_crew = case_trip.role == "crew"
    contact_crew = contact.role == "crew"
    if case_crew and contact_crew:
        return CLOSE, "flight.crew_together"
    if case_crew:
        if _serves(case_trip.crew_rows, seat_row(contact.seat)):
            return CLOSE, "flight.case_crew_served_row"
        return GENERAL, "flight.same_flight"
    case_row = seat_row(case_trip.seat)
    if contact_crew:
        if _serves(contact.crew_rows, case_row):
            return CLOSE, "flight.crew_served_case_row"
        return GENERAL, "flight.same_flight"
    contact_row = seat_row(contact.seat)
    if case_row is not None and contact_row is not None and abs(case_row - contact_row) <= row_span:
        return CLOSE, "flight.rows_within_span"
    return GENERAL, "flight.same_flight"


def _serves(crew_rows: tuple[int, int] | None, row: int | None) -> bool:
    """Crew without served rows serve the whole cabin; otherwise the row must be known and covered."""
    if crew_rows is None:
        return True
    return row is not None and crew_rows[0] <= row <= crew_rows[1]


def _train(case_trip: Trip, contact: Trip, bay_span: int) -> tuple[str, str]:
    """The rows of the train tables in docs/rules.md, first matching row first."""
    carriage = case_trip.carriage
    if carriage is None or carriage != contact.carriage:
        return GENERAL, "train.same_train"
    if case_trip.berth == "soft_sleeper" and case_trip.compartment is not None:
        if case_trip.compartment == contact.compartment:
            return CLOSE, "train.same_compartment"
    elif case_trip.sealed or case_trip.berth == "soft_sleeper":
        return CLOSE, "train.same_carriage"
    else:
        case_bay, contact_bay = _bay(case_trip.compartment), _bay(contact.compartment)
        if case_bay is not None and contact_bay is not None and abs(case_bay - contact_bay) <= bay_span:
            return CLOSE, "train.bay_within_span"
    if contact.role == "crew":
        return CLOSE, "train.crew_of_carriage"
    return GENERAL, "train.same_train"


def _bay(compartment: str | None) -> int | None:
    """A non-sealed train's bay number: the compartment when it is an integer in ASCII digits."""
    return int(compartment) if compartment is not None and _BAY.fullmatch(compartment) else None


def match(
    case_trip: Trip, contact: Trip, window: Window, rules: RuleSettings, only_close: bool = False
) -> Match | None:
    """The exposure of ``contact`` to ``case_trip`` within ``window``, or None if there is none
    (or, with ``only_close``, if it is not close: secondary tracing counts nothing else)."""
    return _meet(case_trip, *_within(case_trip, window), contact, rules, only_close)


def _within(case_trip: Trip, window: Window) -> tuple[int, int]:
    """The part of a case ride inside the window: ``[start, end)``, maybe empty."""
    return max(case_trip.board, window.start), min(case_trip.alight, window.end)


def _meet(case_trip: Trip, start: int, end: int, contact: Trip, rules: RuleSettings, only_close: bool) -> Match | None:
    """``match`` of a case ride whose part inside the window is ``[start, end)``."""
    if contact.board > start:  # max() and min(): a call each, twice the cost of these
        start = contact.board
    if contact.alight < end:
        end = contact.alight
    if end - start <= rules.min_overlap_seconds * 1_000_000:
        return None
    level, rule = classify(case_trip, contact, rules)
    if only_close and level != CLOSE:
        return None
    return _new_match((level, rule, start, end, case_trip, contact))


def best_match(
    case_trips: list[Trip], contact_trips: list[Trip], window: Window, rules: RuleSettings, only_close: bool = False
) -> Match | None:
    """The one pair an alert describes when a case and a contact meet several times on a service day."""
    return meeting(case_trips, window, rules, only_close)(contact_trips)


def meeting(
    case_trips: list[Trip], window: Window, rules: RuleSettings, only_close: bool = False
) -> Callable[[list[Trip]], Match | None]:
    """``best_match`` of ``case_trips`` as a function of a contact's rides: each case ride is cut to
    the window once, for all the riders of its service day (a case's recompute meets hundreds)."""
    cut = [(trip, *_within(trip, window)) for trip in case_trips]

    def best(contact_trips: list[Trip]) -> Match | None:
        found = [
            m
            for case_trip, start, end in cut
            for contact in contact_trips
            if (m := _meet(case_trip, start, end, contact, rules, only_close)) is not None
        ]
        if len(found) == 1:
            return found[0]
        return min(found, key=Match.sort_key) if found else None

    if len(cut) != 1:
        return best
    case_trip, start, end = cut[0]

    def one(contact_trips: list[Trip]) -> Match | None:  # most pairs: one ride each
        if len(contact_trips) == 1:
            return _meet(case_trip, start, end, contact_trips[0], rules, only_close)
        return best(contact_trips)

    return one
