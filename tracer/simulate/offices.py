"""Street offices (街道) following up the outbreak's contacts: ``followup`` events (docs/rules.md,
"Follow-up and health status").

As each service is written, ``Contacts`` says who met a case, or a close contact, aboard. The office
of each resident contact calls them once their alert can be worked (the later of the exposure's end
and the case's report), at its own pace: most offices within a few hours, a few (``SLOW_SHARE``) a
day or more later, so the tracing KPIs have a slowest office to show; now and then a contact is
left a day or more (``P_LATE``). Most are reached or quarantined at the first call; some are
unreachable, half of them found on a call a day or two later. A close contact quarantined by the
office is isolated from then on for secondary tracing (else ``contact_isolation_hours`` after the
report), so their own contacts are looked for until then. Observation ends ``OBSERVATION_DAYS``
after a contact's latest exposure: a ``released`` follow-up then, when that falls within the
simulated span.

A contact under observation is not called again for another alert; one released, or whose calls
were about a case excluded since, is. Visitors have no office (their alerts go to the unassigned
queue) and get no follow-up. Calls after a case's exclusion are not made; those before it stay,
naming people whose alerts are gone. Follow-ups wait in the stream's minute buckets like case
reports; a release is written only once the stream reaches it, when no later exposure can move it.
"""

from __future__ import annotations

import random
from array import array
from collections import Counter
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import Any

from tracer.rules import Level
from tracer.simulate.city import Population
from tracer.simulate.clock import DAY, Clock
from tracer.simulate.contacts import RULES, Contacts, Exposure
from tracer.simulate.outbreak import HOUR, Traced
from tracer.simulate.stream import EventStream

SLOW_SHARE = 0.05  # of offices
PACE_HOURS, SLOW_PACE_HOURS = (1.5, 8.0), (18.0, 40.0)  # an office's typical delay, uniform in the range
SPREAD = 0.6  # sigma of the lognormal factor around the office's pace
P_LATE, LATE_HOURS = 0.05, (24, 72)
P_UNREACHABLE, P_FOUND_LATER, FOUND_HOURS = 0.05, 0.5, (12, 48)
P_QUARANTINED = {Level.CLOSE: 0.8, Level.SECONDARY: 0.4}  # else reached (home observation)
OBSERVATION_DAYS = 14
ISOLATION = int(RULES.contact_isolation_hours * HOUR)  # a close contact not quarantined counts as isolated then
OUTCOMES = ("reached", "quarantined", "unreachable", "released")  # docs/rules.md's order
NOTES = {
    "reached": ("by phone", "at home", None),
    "quarantined": ("central quarantine hotel", "home quarantine", None),
    "unreachable": ("no answer after three calls", "number not in service", None),
    "released": ("14 days of observation ended",),
}


@dataclass(slots=True)
class _Followed:
    """A resident under an office's observation: their office, the case the calls were about, when
    quarantined (None: not), whether answered, and the end of their latest exposure (a stamp) with its
    release (a second; None: none pending)."""

    office: str
    case: Traced
    quarantined: int | None
    answered: bool
    end: str = ""
    release: int | None = None


class Offices:
    def __init__(
        self,
        stream: EventStream,
        clock: Clock,
        population: Population,
        cases: list[Traced],
        rng: random.Random,
    ) -> None:
        self._stream, self._clock, self._population, self._rng = stream, clock, population, rng
        self._following = bool(cases)
        self._position = {code: position for position, code in enumerate(population.codes)}
        self._homes = array("H")  # each resident's office, a position in population.codes (2 bytes each)
        self._contacts = Contacts(cases, clock)
        slow = [rng.random() < SLOW_SHARE for _ in population.codes]
        self._pace = {
            code: rng.uniform(*(SLOW_PACE_HOURS if late else PACE_HOURS))
            for code, late in zip(population.codes, slow, strict=True)
        }
        self._slow = [code for code, late in zip(population.codes, slow, strict=True) if late and self._following]
        self._followed: dict[str, _Followed] = {}
        self._releases: list[tuple[int, str]] = []  # (second, person), a heap; stale entries are skipped
        self._counts: Counter[str] = Counter()  # follow-ups by outcome
        self._offices: set[str] = set()  # those that wrote one

    def summary(self) -> dict[str, Any]:
        """Follow-ups by outcome, how many offices wrote them, and which offices are slow."""
        return {
            "outcomes": {outcome: self._counts[outcome] for outcome in OUTCOMES},
            "offices": len(self._offices),
            "slow_offices": self._slow,
        }

    def settle(self, homes: list[str]) -> None:
        """Where each resident (by index) lives: their office. Not kept when no case is followed."""
        if self._following:
            self._homes = array("H", map(self._position.__getitem__, homes))

    def move(self, index: int, home: str) -> None:
        if self._following:
            self._homes[index] = self._position[home]

    def service(self, rides: list[dict]) -> None:
        """Follow up the contacts the rides of one service make: those of the sources aboard, then
        those of the close contacts found among them (secondary: no third round). In a crowded
        carriage the second round meets the same riders through every close contact: each is
        followed through the first only (the same call; an exposure ends with the ride)."""
        exposures = self._contacts.exposed(rides)
        sources = {exposure.person for exposure in exposures if self._follow(exposure)}
        if sources:
            seen = {exposure.person for exposure in exposures}
            for exposure in self._contacts.exposed(rides, sources):
                if exposure.person not in seen:
                    seen.add(exposure.person)
                    self._follow(exposure)

    def release_before(self, minute: int) -> None:
        """Write the releases due before ``minute``: called before the stream moves there, as no
        exposure found later can postpone them."""
        releases = self._releases
        while releases and releases[0][0] < minute * 60:
            second, person = heappop(releases)
            followed = self._followed.get(person)
            if followed is not None and followed.release == second:
                del self._followed[person]  # observation is over: a later exposure is called anew
                self._write(person, followed.office, "released", second)

    def _follow(self, exposure: Exposure) -> bool:
        """Call a contact unless under observation already (for a case not excluded since) and plan
        their release; whether they became a source of their own."""
        case, level, person = exposure.source.case, exposure.source.level, exposure.person
        followed = self._followed.get(person)
        if followed is None or (followed.case is not case and followed.case.excluded is not None):
            followed = self._calls(person, level, case, exposure.end)
        if followed is not None and followed.answered and case.excluded is None and exposure.end > followed.end:
            followed.end = exposure.end
            followed.release = self._clock.second(exposure.end) + OBSERVATION_DAYS * DAY
            if followed.release < self._clock.end:
                heappush(self._releases, (followed.release, person))
        if level != Level.CLOSE:
            return False
        isolated = followed.quarantined if followed is not None else None
        if isolated is None:
            isolated = case.reported + ISOLATION
        return self._contacts.watch(person, case, exposure.start, isolated)

    def _calls(self, person: str, level: Level, case: Traced, end: str) -> _Followed | None:
        """The office's calls to a contact whose exposure ended at ``end``; None when none is made
        in time, or ``person`` is a visitor (no office)."""
        index = self._population.index(person)
        if index is None:
            return None
        rng, office = self._rng, self._population.codes[self._homes[index]]
        hours = self._pace[office] * rng.lognormvariate(0, SPREAD)
        if rng.random() < P_LATE:
            hours += rng.uniform(*LATE_HOURS)
        first = max(self._clock.second(end), case.reported) + int(hours * HOUR)
        calls, answer = [], first
        if rng.random() < P_UNREACHABLE:
            calls.append((first, "unreachable"))
            answer = first + int(rng.uniform(*FOUND_HOURS) * HOUR) if rng.random() < P_FOUND_LATER else -1
        if answer >= 0:
            calls.append((answer, "quarantined" if rng.random() < P_QUARANTINED[level] else "reached"))
        limit = self._clock.end if case.excluded is None else min(case.excluded, self._clock.end)
        made = [(at, outcome) for at, outcome in calls if at < limit]
        if not made:
            return None
        for at, outcome in made:
            self._write(person, office, outcome, at)
        quarantined = next((at for at, outcome in made if outcome == "quarantined"), None)
        followed = _Followed(office, case, quarantined, made[-1][1] != "unreachable")
        self._followed[person] = followed
        return followed

    def _write(self, person: str, office: str, outcome: str, second: int) -> None:
        record = {"type": "followup", "person_id": person, "outcome": outcome, "at": self._clock.stamp(second),
                  "by": office}
        note = self._rng.choice(NOTES[outcome])
        if note is not None:
            record["note"] = note
        self._stream.at(second // 60, record)
        self._counts[outcome] += 1
        self._offices.add(office)
