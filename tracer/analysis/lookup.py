"""Same-trip lookup (同程排查): did a known case or published exposure ride this service that day?

Answers from the source rides stored for that service day: one group scan, never a scan of the
whole state. Given the asker's carriage or seat, it also says which level the rules would give
them, or that it cannot tell. The metro is asked by line and board time (no rider knows a run id):
the runs of that line whose id says they left by the end of the asker's window, with a case aboard
after its start (docs/rules.md, "Same-trip lookup").

A lookup must never be a false all-clear. The question is read by ``tracer.analysis.question``
(messy input normalised; what cannot be read is an error), and ``Answer.known`` says whether the
state holds any ride of the service (or any run of the line) that day: "no known case" on a service
tracer never saw is no answer at all. Published exposures are answered from their own families
(tracer/published.py) for ``exposure_retention_days``, longer than the trips are kept: on a day
whose trips are gone, ``Answer.rides_kept`` is False and the answer says that only published
exposures answer; a date before both horizons is an error.

``Answer.rides`` is the staff form (case ids included); ``tracer.analysis.public`` makes the
public one from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from graph.keys import EXPOSURE, EXPOSURES, META, PROBES, RIDERS, WATERMARK, exposure_key, group, key_parts, service_day
from graph.store import SEP, Store
from tracer import canonical
from tracer.analysis.export import shown
from tracer.analysis.queries import rides_on, source
from tracer.analysis.question import Question, clock
from tracer.errors import StateError
from tracer.events import Exposure, Trip, decode_trip, format_time
from tracer.published import published
from tracer.rules import Level, classify, retention_horizon, seat_row
from tracer.settings import RuleSettings
from tracer.sources import FAR, Source, exposure_rides, exposure_source

# How tracer's simulator names a metro run: line, service date, departure from the first station
# (tracer/simulate/rides.py). The lookup by line needs the line first; the departure narrows.
METRO_RUN = re.compile(r"(L[0-9]+)-([0-9]{8})-([0-9]{2})([0-9]{2})")
# An asker who gives no alight time rode at most this long after their latest board time: no metro
# ride in Shanghai takes two hours end to end (docs/rules.md, "Same-trip lookup").
LONGEST_RIDE = 2 * 3600 * 1_000_000
# How far from the asker's boarding window a run may have been seen at their station (a rider
# boarding or alighting there) and still be the run they boarded: a train stands a minute or two.
STATION_SLACK = 2 * 60 * 1_000_000


@dataclass(frozen=True, slots=True)
class Answer:
    question: Question
    rides: list[dict[str, Any]]  # one per source ride aboard, staff form (case and exposure ids)
    known: bool  # the state holds a ride of the service, or a run of the line, that day
    rides_kept: bool = True  # the state keeps that day's trips (False: only published exposures answer)


def lookup(store: Store, rules: RuleSettings, question: Question) -> Answer:
    rides_kept = _retained(store, rules, question.date)
    if question.line is not None:
        found = _line_rides(store, rules, question)
        known = bool(found) or _any(store, group(RIDERS, question.date, "metro") + question.line + "-")
    else:
        assert question.service is not None
        day = service_day(question.date, question.mode, question.service)
        exposures = published(store, group(EXPOSURES, day))
        found = _sources(store, rules, rides_on(store, question.date, question.service, question.mode), exposures)
        known = bool(found) or _any(store, group(RIDERS, day))
    rides = []
    for src, ride in found:
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
            "rides_kept": rides_kept,
        }
        if question.carriage is not None or question.seat is not None:
            answer.update(_your_level(ride, question.carriage, question.seat, rules))
        rides.append(answer)
    return Answer(question, rides, known, rides_kept)


def _sources(
    store: Store, rules: RuleSettings, probes: Iterable[tuple[str, Trip]], exposures: Iterable[Exposure]
) -> list[tuple[Source, Trip]]:
    """``(source, ride)`` aboard, in the probes' key order: cases from their probes, published
    exposures from their own family, which outlives the trips (a probe of an exposure missing there,
    in a state written before that family was, still answers). Secondary-tracing rides are about
    contacts, not cases: left out."""
    found, published_ids = [], set()
    for exposure in exposures:
        published_ids.add(exposure.exposure_id)
        key = exposure_key(exposure.exposure_id)
        found += [(exposure_source(key, exposure), ride) for ride in exposure_rides(exposure)]
    for key, ride in probes:
        kind, source_id, via = key_parts(key)
        if via is None and not (kind == EXPOSURE and source_id in published_ids):
            src = source(store, key, rules)
            if src is not None:
                found.append((src, ride))
    return sorted(found, key=lambda pair: (pair[1].service, pair[0].key, pair[1].trip_id))


def summary(answer: Answer) -> str:
    """The answer in one line, as the command says it and the public page heads it."""
    question, what = answer.question, asked(answer.question)
    if not answer.rides_kept:
        gone = "tracer no longer keeps that day's trips, so only published exposures answer"
        if answer.rides:
            return f"a published exposure was aboard {what} on {question.date} ({gone})"
        return f"no published exposure aboard {what} on {question.date}; {gone}: a case's own ride is not checked"
    if answer.rides:
        return f"a known case or published exposure was aboard {what} on {question.date}"
    if answer.known:
        return f"no known case or published exposure aboard {what} on {question.date}"
    if question.line is not None:
        return (
            f"tracer holds no run of metro line {question.line} on {question.date}: runs are found by ids that "
            f"begin with their line ({question.line}-{question.date.replace('-', '')}-0734, as tracer's simulator "
            "names them); a feed whose run ids do not name their line cannot be asked by line: ask by the run id"
        )
    return f"tracer holds no ride of {what} on {question.date}: check the number and the date (no known case either)"


def asked(question: Question) -> str:
    """``flight MU5101``, or ``a run of metro line L2 boarded 08:00-08:20``."""
    if question.line is None:
        return f"{question.mode} {shown(question.service or '')}"
    at = f" at {shown(question.station)}" if question.station is not None else ""
    return f"a run of metro line {question.line} boarded{at} {boarded(question)}"


def boarded(question: Question) -> str:
    """When a metro rider asking by line boarded: ``08:00`` or ``08:00-08:20``."""
    assert question.boarded is not None
    first, last = map(clock, question.boarded)
    return first if first == last else f"{first}-{last}"


def run_departure(service: str, day: str) -> int | None:
    """The minute of ``day`` a metro run left its first station, when its id says so."""
    found = METRO_RUN.fullmatch(service)
    if not found or found[2] != day.replace("-", "") or int(found[3]) > 23 or int(found[4]) > 59:
        return None
    return int(found[3]) * 60 + int(found[4])


def _line_rides(store: Store, rules: RuleSettings, question: Question) -> list[tuple[Source, Trip]]:
    """``(source, ride)`` of the source rides on the line's runs that the asker could have shared:
    the run left (by its id, when it says) no later than the end of the boarding window, and the
    ride ends after its start and begins before the asker alighted (their alight time, else
    ``LONGEST_RIDE`` after the window's end). Both directions: a run id does not say which way it
    runs, so the answer may list a run the asker did not take, never leave out one they did."""
    assert question.line is not None and question.boarded is not None
    base = group(PROBES, question.date, "metro")
    first, last = (_moment(question.date, minute, rules) for minute in question.boarded)
    until = _moment(question.date, question.alighted, rules) if question.alighted is not None else last + LONGEST_RIDE

    def fits(ride: Trip) -> bool:
        departure = run_departure(ride.service, question.date)
        left_in_time = departure is None or departure <= question.boarded[1]  # type: ignore[index]
        return left_in_time and ride.alight > first and ride.board < until

    probes = []
    for key, value in store.items(base + question.line + "-"):
        ride = decode_trip(value)
        if fits(ride):
            probes.append((key[len(base) :].split(SEP, 2)[1], ride))
    exposures = published(store, group(EXPOSURES, question.date, "metro") + question.line + "-")
    found = [(src, ride) for src, ride in _sources(store, rules, probes, exposures) if fits(ride)]
    return _at_station(store, question, found, first, last) if question.station is not None else found


def _at_station(
    store: Store, question: Question, found: list[tuple[Source, Trip]], first: int, last: int
) -> list[tuple[Source, Trip]]:
    """``found`` without the runs that were elsewhere when the asker boarded at their station: a
    run seen at that station that day (a rider, or the case, boarded or alighted there: station
    names compared in ``canonical.station_key``'s form), but never within ``STATION_SLACK`` of the
    boarding window. A run never seen there is kept: nothing says it was not there."""
    names: dict[str, str] = {}
    asked = canonical.station_key(question.station or "")

    def stops(rides: Iterable[Trip]) -> list[int]:
        """When ``rides`` boarded or alighted at the asker's station."""
        found = []
        for ride in rides:
            for moment, name in ((ride.board, ride.board_station), (ride.alight, ride.alight_station)):
                if name is not None and abs(moment) < FAR:
                    if name not in names:
                        names[name] = canonical.station_key(name)
                    if names[name] == asked:
                        found.append(moment)
        return found

    seen = {}
    for service in {ride.service for _, ride in found}:
        riders = store.scan(group(RIDERS, service_day(question.date, "metro", service)))
        seen[service] = stops(decode_trip(value) for _, value in riders)
        seen[service] += stops(ride for _, ride in found if ride.service == service)
    low, high = first - STATION_SLACK, last + STATION_SLACK
    return [(src, ride) for src, ride in found
            if not seen[ride.service] or any(low <= moment <= high for moment in seen[ride.service])]


def _moment(day: str, minute: int, rules: RuleSettings) -> int:
    """Epoch microseconds of ``minute`` on ``day`` in the rules' zone."""
    local = datetime.combine(date.fromisoformat(day), time(minute // 60, minute % 60), tzinfo=rules.zone)
    return round(local.timestamp()) * 1_000_000


def _any(store: Store, prefix: str) -> bool:
    """Whether any key starts with ``prefix``: one seek, not a scan."""
    return next(store.items(prefix), None) is not None


def _retained(store: Store, rules: RuleSettings, date: str) -> bool:
    """Whether the state keeps the trips of ``date`` (False: only its published exposures). A
    StateError when it keeps neither: an empty answer would be a false all-clear."""
    mark = store.get(group(META), WATERMARK)
    if mark is None or date >= (horizon := retention_horizon(int(mark), rules)):
        return True
    kept = retention_horizon(int(mark), rules, rules.exposure_retention_days)
    if date < kept:
        raise StateError(
            f"cannot answer for {date}: the state keeps published exposures from {kept} on (exposure_retention_days "
            f"{rules.exposure_retention_days}) and trips from {horizon} on (retention_days {rules.retention_days}), "
            "before its event time; earlier ones are dropped"
        )
    return False


def _your_level(ride: Trip, carriage: str | None, seat: str | None, rules: RuleSettings) -> dict[str, Any]:
    """The asker's level and rule against ``ride``; when the rules would say general only because
    the asker's place is unknown to them, no level but why (``cannot_tell``). A carriage number
    that equals the ride's as a number is the ride's (``5`` asks for a stored ``05``: no rider
    knows how a feed padded it)."""
    if carriage is not None and ride.carriage is not None and _same_number(carriage, ride.carriage):
        carriage = ride.carriage
    asker = Trip("asker", "", ride.mode, ride.service, ride.date, ride.board, ride.alight, carriage, seat)
    level, rule = classify(ride, asker, rules)
    unknown = _unplaced(ride, carriage, seat) if level == Level.GENERAL else None
    if unknown is not None:
        return {"your_level": None, "rule": None, "cannot_tell": unknown}
    return {"your_level": level, "rule": rule, "cannot_tell": None}


def _same_number(a: str, b: str) -> bool:
    return a.isdecimal() and b.isdecimal() and int(a) == int(b)


def _unplaced(ride: Trip, carriage: str | None, seat: str | None) -> str | None:
    """Why the rules cannot place the asker near ``ride`` when the ride itself has a place: a
    flight's rules need a seat row, a train's and metro's a carriage, and in the case's carriage of
    a soft sleeper or an open (not sealed) train the compartment or bay, which the lookup does not ask."""
    if ride.mode == "flight":
        if (seat_row(ride.seat) is None and ride.crew_rows is None) or seat_row(seat) is not None:
            return None
        return f"cannot tell: seat {seat} is not a row and letter" if seat else "cannot tell: no seat given on a flight"
    if ride.carriage is None:
        return None
    if carriage is None:
        return "cannot tell: no carriage given on a train or metro"
    divided = ride.compartment is not None and (ride.berth == "soft_sleeper" or not ride.sealed)
    if ride.mode == "train" and carriage == ride.carriage and divided:
        return "cannot tell: in the case's carriage the compartment or bay decides, which the lookup does not ask"
    return None
