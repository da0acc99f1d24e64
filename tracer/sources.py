"""Sources: whoever exposes others, and the rides through which they do.

Three kinds share one tracing path in the engine:
- a **case** (``c:`` key): its person's rides in its window; levels close and general;
- a **via** source (``v:`` key), for secondary contacts (次密接): a close contact X of a case, whose
  rides from X's first exposure until X's isolation expose others; only close-rule matches
  count, and they become ``secondary``; depth stops there;
- a published **exposure** (``e:`` key): a case trip without a person id; its rides are made
  from the published service, times, carriages and seats.
Each is stored as a tagged JSON list under its key in the C family of the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import orjson

from graph.keys import CASE, EXPOSURE
from tracer.events import Case, Exposure, Trip
from tracer.rules import Level, Window, case_window
from tracer.settings import RuleSettings

FAR = 1 << 62  # "no bound" for open windows and exposures without times


@dataclass(frozen=True, slots=True)
class Source:
    key: str
    case_id: str  # the case (or exposure id) that alerts name
    case_person_id: str | None
    person_id: str | None  # whose stored rides expose others; None for a published exposure
    via_person_id: str | None
    window: Window | None  # None: not traced (an excluded case)
    reported_at: int | None = None  # cases only: the default isolation of their close contacts
    exposure: Exposure | None = None
    onset: str | None = None  # cases only

    @property
    def reach(self) -> tuple[object, ...]:
        """What the alerts depend on: two versions with the same reach trace the same contacts.
        ``case_person_id`` is part of it for via sources: their alerts name the case's person and
        exclude them, so a case moved to another person must retrace them."""
        return (self.person_id, self.case_person_id, self.window, self.exposure)

    def level(self, rule_level: str) -> str | None:
        """The alert level a rule's level gives through this source (None: no alert)."""
        if self.via_person_id is None:
            return rule_level
        return Level.SECONDARY if rule_level == Level.CLOSE else None

    def excludes(self, person_id: str) -> bool:
        """People who are never contacts of this source: the case person, and X for X's own source."""
        return person_id in (self.person_id, self.case_person_id)

    @property
    def truncatable(self) -> bool:
        return self.exposure is None

    @property
    def kind(self) -> str:
        """``case`` or ``exposure``: with ``case_id`` it names the source of an alert."""
        return CASE if self.exposure is None else EXPOSURE


def encode_case(case: Case) -> bytes:
    return orjson.dumps(
        ["c", case.case_id, case.person_id, case.status, case.onset, case.isolated_at, case.reported_at]
    )


def encode_via(case: Source, via_person_id: str, start: int, end: int) -> bytes:
    return orjson.dumps(["v", case.case_id, case.case_person_id, via_person_id, start, end])


def encode_exposure(exposure: Exposure) -> bytes:
    return orjson.dumps(["e", *(getattr(exposure, name) for name in Exposure.__slots__)])


def decode_source(key: str, data: bytes, rules: RuleSettings) -> Source:
    row = orjson.loads(data)
    kind = row[0]
    if kind == "c":
        case = Case(*row[1:])
        window = case_window(case, rules) if case.traced else None
        return Source(
            key, case.case_id, case.person_id, case.person_id, None, window, case.reported_at, onset=case.onset
        )
    if kind == "v":
        _, case_id, case_person_id, via, start, end = row
        return Source(key, case_id, case_person_id, via, via, Window(start, end) if end > start else None)
    return exposure_source(key, _exposure(row))


def exposure_source(key: str, exposure: Exposure) -> Source:
    """The source a published exposure is traced as (``key``: its ``e:`` source key)."""
    window = Window(-FAR if exposure.start is None else exposure.start, FAR if exposure.end is None else exposure.end)
    return Source(key, exposure.exposure_id, None, None, None, window, exposure=exposure)


def decode_exposure(data: bytes) -> Exposure:
    """An exposure as ``encode_exposure`` wrote it."""
    return _exposure(orjson.loads(data))


def _exposure(row: list) -> Exposure:
    fields = row[1:]
    for index in (6, 7):  # carriages, seats
        if fields[index] is not None:
            fields[index] = tuple(fields[index])
    return Exposure(*fields)


def exposure_rides(exposure: Exposure) -> list[Trip]:
    """The case rides a published exposure stands for: one per carriage and seat it names."""
    board = -FAR if exposure.start is None else exposure.start
    alight = FAR if exposure.end is None else exposure.end
    rides = []
    for carriage in exposure.carriages or (None,):
        for seat in exposure.seats or (None,):
            rides.append(
                Trip(
                    f"{exposure.exposure_id}#{len(rides)}",
                    "",
                    exposure.mode,
                    exposure.service,
                    exposure.date,
                    board,
                    alight,
                    carriage,
                    seat,
                    board_station=exposure.board_station,
                    alight_station=exposure.alight_station,
                )
            )
    return rides


def default_isolation(reported_at: int, rules: RuleSettings) -> int:
    """When a close contact counts as isolated without a quarantine event."""
    return reported_at + int(timedelta(hours=rules.contact_isolation_hours) / timedelta(microseconds=1))
