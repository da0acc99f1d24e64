"""The tracing engine: applies the rules to each event against the co-travel store.

It has no I/O of its own: the runner hands it parsed events and receives alert changes.
Every event is handled as incremental view maintenance on one key, ``(case, contact, service
day)``: find which keys the event can affect, recompute each from the store, and report the
difference from the alert stored under that key. That is what makes the result independent of
arrival order (late trips, corrections, case updates all land on the same function).

Store layout (groups end with SEP ``\\x1f``; dates first where retention must cut):
    T|trip_id                      -> trip (encoded)          redelivery and corrections
    R|date|mode|service|person|trip -> trip                    riders of a service day
    I|person|date|trip_id          -> b""                      a person's itinerary
    P|date|mode|service|case|trip  -> case trip                probes: case rides, met by late riders
    C|case_id                      -> case                     the last version of each case
    K|person|case_id               -> b""                      traced cases of a person
    A|case_id|alert_id             -> alert JSON               what is live for each case
    X|person|alert_id              -> case_id                  a contact's live alerts (re-routing)
    S|person                       -> subdistrict              the registry
    M|name                         -> value                    watermark (the runner adds its own)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

import orjson

from graph.store import SEP, Store
from tracer.alerts import Alert, Change, alert_id, build_alert
from tracer.errors import InvalidEvent
from tracer.events import Case, Event, Person, Trip, decode_trip, format_time, local_midnight
from tracer.rules import best_match, case_window, rides_in_window
from tracer.settings import RuleSettings

T, S, C, M = "T" + SEP, "S" + SEP, "C" + SEP, "M" + SEP


def _group(family: str, *parts: str) -> str:
    return family + SEP + SEP.join(parts) + SEP


def _encode_case(case: Case) -> bytes:
    return orjson.dumps(
        [case.case_id, case.person_id, case.status, case.onset, case.isolated_at, case.reported_at]
    )


def _decode_case(data: bytes) -> Case:
    return Case(*orjson.loads(data))


class Engine:
    """Turns events into alert changes; all state lives in ``store``."""

    def __init__(self, store: Store, rules: RuleSettings) -> None:
        self.store = store
        self.rules = rules
        self._zone = rules.zone
        self._probed: Counter[str] = Counter()  # service day -> probes on it
        self._case_persons: Counter[str] = Counter()  # person -> traced cases
        for key, _ in store.items("P" + SEP):
            self._probed[key[2:].rsplit(SEP, 2)[0]] += 1
        for key, _ in store.items("K" + SEP):
            self._case_persons[key[2:].split(SEP, 1)[0]] += 1
        mark = store.get(M, "watermark")
        self._watermark = int(mark) if mark else -(1 << 62)
        self._horizon = ""  # service dates below this were dropped
        self._horizon_start = -(1 << 62)
        self._next_day = -(1 << 62)  # first microsecond of the day after the watermark's day
        if mark:
            self._set_horizon(self._watermark)

    # -- entry point -----------------------------------------------------------------------
    def process(self, event: Event) -> list[Change]:
        """Apply one event. Raises ``InvalidEvent`` for events that cannot be applied."""
        if isinstance(event, Trip):
            return self._on_trip(event)
        if isinstance(event, Case):
            return self._on_case(event)
        return self._on_person(event)

    # -- trips -----------------------------------------------------------------------------
    def _on_trip(self, trip: Trip) -> list[Change]:
        self._advance(trip.board)
        if trip.date < self._horizon:
            raise InvalidEvent(f"trip date {trip.date} is before the retention horizon {self._horizon}")
        data = trip.encode()
        old_data = self.store.get(T, trip.trip_id)
        if old_data == data:
            return []  # redelivery
        old = decode_trip(old_data) if old_data is not None else None
        if old is not None:
            self._remove_trip(old)
        self._add_trip(trip, data)
        affected: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for version in (old, trip):
            if version is not None:
                self._affected_by_trip(version, version is trip, affected)
        return self._recompute(affected)

    def _add_trip(self, trip: Trip, data: bytes) -> None:
        day = trip.service_day
        self.store.put(T, trip.trip_id, data)
        self.store.put("R" + SEP + day + SEP, trip.person_id + SEP + trip.trip_id, data)
        self.store.put(_group("I", trip.person_id), trip.date + SEP + trip.trip_id, b"")

    def _remove_trip(self, trip: Trip) -> None:
        self.store.delete(T, trip.trip_id)
        self.store.delete("R" + SEP + trip.service_day + SEP, trip.person_id + SEP + trip.trip_id)
        self.store.delete(_group("I", trip.person_id), trip.date + SEP + trip.trip_id)

    def _affected_by_trip(self, trip: Trip, present: bool, out: dict[str, set[tuple[str, str]]]) -> None:
        """Keys a trip's arrival (``present``) or removal can change, added to ``out``."""
        day = trip.service_day
        if day in self._probed:  # the rider may meet stored case rides
            for suffix, _ in self.store.scan("P" + SEP + day + SEP):
                out[day].add((suffix.split(SEP, 1)[0], trip.person_id))
        if trip.person_id not in self._case_persons:
            return
        for suffix, _ in self.store.scan(_group("K", trip.person_id)):
            case = self._load_case(suffix)
            probe = ("P" + SEP + day + SEP, case.case_id + SEP + trip.trip_id)
            if present and rides_in_window(trip, case_window(case, self.rules)):
                if self.store.get(*probe) is None:
                    self._probed[day] += 1
                self.store.put(*probe, trip.encode())
            elif self.store.get(*probe) is not None:
                self.store.delete(*probe)
                self._unprobe(day)
            out[day].update((case.case_id, p) for p in self._riders(day))

    # -- cases -----------------------------------------------------------------------------
    def _on_case(self, case: Case) -> list[Change]:
        self._advance(case.reported_at)
        data = _encode_case(case)
        old_data = self.store.get(C, case.case_id)
        if old_data == data:
            return []  # repeated report
        self.store.put(C, case.case_id, data)
        old = _decode_case(old_data) if old_data is not None else None
        if (
            old is not None
            and (old.person_id, old.traced) == (case.person_id, case.traced)
            and (not case.traced or case_window(old, self.rules) == case_window(case, self.rules))
        ):
            return []  # nothing the alerts depend on has changed (say, only reported_at)
        old_trips = self._case_trips(old) if old is not None and old.traced else []
        new_trips = self._case_trips(case) if case.traced else []
        if old is not None and old.traced:
            self.store.delete(_group("K", old.person_id), case.case_id)
            self._case_persons[old.person_id] -= 1
            if not self._case_persons[old.person_id]:
                del self._case_persons[old.person_id]
        if case.traced:
            self.store.put(_group("K", case.person_id), case.case_id, b"")
            self._case_persons[case.person_id] += 1
        affected: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for trip in old_trips:
            self.store.delete("P" + SEP + trip.service_day + SEP, case.case_id + SEP + trip.trip_id)
            self._unprobe(trip.service_day)
        for trip in new_trips:
            self.store.put(
                "P" + SEP + trip.service_day + SEP, case.case_id + SEP + trip.trip_id, trip.encode()
            )
            self._probed[trip.service_day] += 1
        for trip in old_trips + new_trips:
            affected[trip.service_day].update((case.case_id, p) for p in self._riders(trip.service_day))
        for _, value in self.store.scan(_group("A", case.case_id)):
            alert = orjson.loads(value)
            day = SEP.join((alert["date"], alert["mode"], alert["service"]))
            affected[day].add((case.case_id, alert["contact_person_id"]))
        return self._recompute(affected)

    def _case_trips(self, case: Case) -> list[Trip]:
        """The case person's stored rides that overlap the case window."""
        window = case_window(case, self.rules)
        trips = []
        for suffix, _ in self.store.scan(_group("I", case.person_id)):
            data = self.store.get(T, suffix.split(SEP, 1)[1])
            if data is not None and rides_in_window(trip := decode_trip(data), window):
                trips.append(trip)
        return trips

    def _load_case(self, case_id: str) -> Case:
        data = self.store.get(C, case_id)
        assert data is not None, "a K or P entry points at a missing case"
        return _decode_case(data)

    # -- registry ----------------------------------------------------------------------------
    def _on_person(self, person: Person) -> list[Change]:
        old = self.store.get(S, person.person_id)
        new = person.subdistrict.encode()
        if old == new:
            return []
        self.store.put(S, person.person_id, new)
        changes = []
        for suffix, case_id in self.store.scan(_group("X", person.person_id)):
            group = _group("A", case_id.decode())
            before = orjson.loads(self.store.get(group, suffix) or b"null")
            after = {**before, "subdistrict": person.subdistrict}
            self.store.put(group, suffix, orjson.dumps(after))
            changes.append(Change(before, after))
        return changes

    # -- the one recompute -------------------------------------------------------------------
    def _recompute(self, affected: dict[str, set[tuple[str, str]]]) -> list[Change]:
        """Recompute every ``(case, contact)`` key on each service day; report what changed."""
        changes: list[Change] = []
        cases: dict[str, Case] = {}
        for day in sorted(affected):
            probes = self._trips_by_owner("P" + SEP + day + SEP)
            riders = self._trips_by_owner("R" + SEP + day + SEP)
            for case_id, contact in sorted(affected[day]):
                if case_id not in cases:
                    cases[case_id] = self._load_case(case_id)
                case = cases[case_id]
                after = None
                if case.traced and contact != case.person_id and case_id in probes and contact in riders:
                    window = case_window(case, self.rules)
                    found = best_match(probes[case_id], riders[contact], window, self.rules)
                    if found is not None:
                        subdistrict = self.store.get(S, contact)
                        truncated = window.start < self._horizon_start
                        after = build_alert(
                            case, found, subdistrict.decode() if subdistrict else None, self._zone, truncated
                        )
                mode, service = day.split(SEP)[1:]
                change = self._store_alert(
                    case_id, contact, alert_id(case_id, contact, mode, service, day[:10]), after
                )
                if change is not None:
                    changes.append(change)
        return changes

    def _store_alert(self, case_id: str, contact: str, key: str, after: Alert | None) -> Change | None:
        group = _group("A", case_id)
        old = self.store.get(group, key)
        new = orjson.dumps(after) if after is not None else None
        if old == new:
            return None
        if new is None:
            self.store.delete(group, key)
            self.store.delete(_group("X", contact), key)
        else:
            self.store.put(group, key, new)
            self.store.put(_group("X", contact), key, case_id.encode())
        return Change(orjson.loads(old) if old is not None else None, after)

    def _trips_by_owner(self, group: str) -> dict[str, list[Trip]]:
        """Trips of a P or R group by their first key part (case id or person id)."""
        owners: dict[str, list[Trip]] = defaultdict(list)
        for suffix, data in self.store.scan(group):
            owners[suffix.split(SEP, 1)[0]].append(decode_trip(data))
        return owners

    def _riders(self, day: str) -> Iterable[str]:
        return {suffix.split(SEP, 1)[0] for suffix, _ in self.store.scan("R" + SEP + day + SEP)}

    def _unprobe(self, day: str) -> None:
        self._probed[day] -= 1
        if not self._probed[day]:
            del self._probed[day]

    # -- event time and retention ------------------------------------------------------------
    def _advance(self, moment: int) -> None:
        if moment <= self._watermark:
            return
        self._watermark = moment
        self.store.put(M, "watermark", str(moment).encode())
        if moment >= self._next_day:
            self._set_horizon(moment, purge=True)

    def _set_horizon(self, moment: int, purge: bool = False) -> None:
        today = date.fromisoformat(format_time(moment, self._zone)[:10])
        self._next_day = local_midnight((today + timedelta(days=1)).isoformat(), self._zone)
        horizon = (today - timedelta(days=self.rules.retention_days)).isoformat()
        if horizon != self._horizon:
            self._horizon = horizon
            self._horizon_start = local_midnight(horizon, self._zone)
            if purge:
                self._purge(horizon)

    def _purge(self, horizon: str) -> None:
        """Drop service days before ``horizon``, and cases over before it."""
        for key, _ in self.store.purge_groups("R" + SEP, horizon):
            day, person, trip_id = key[2:].rsplit(SEP, 2)
            self.store.delete(T, trip_id)
            self.store.delete(_group("I", person), day[:10] + SEP + trip_id)
        for key, _ in self.store.purge_groups("P" + SEP, horizon):
            self._unprobe(key[2:].rsplit(SEP, 2)[0])
        for _, value in list(self.store.items(C)):
            case = _decode_case(value)
            ended = case.isolated_at is not None and case.isolated_at < self._horizon_start
            if case.reported_at < self._horizon_start and (ended or not case.traced):
                self._forget_case(case)

    def _forget_case(self, case: Case) -> None:
        self.store.delete(C, case.case_id)
        if case.traced:
            self.store.delete(_group("K", case.person_id), case.case_id)
            self._case_persons[case.person_id] -= 1
            if not self._case_persons[case.person_id]:
                del self._case_persons[case.person_id]
        for suffix, value in self.store.scan(_group("A", case.case_id)):
            self.store.delete(_group("A", case.case_id), suffix)
            self.store.delete(_group("X", orjson.loads(value)["contact_person_id"]), suffix)
