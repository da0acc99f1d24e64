"""The tracing engine: applies the rules to each event against the co-travel store.

It has no I/O of its own: the runner hands it parsed events and receives alert changes.
Every event is handled as incremental view maintenance on one key, ``(source, contact, service
day)``: find which keys the event can affect, recompute each from the store, and report the
difference from the alert stored under that key. That is what makes the result independent of
arrival order (late trips, corrections, case updates all land on the same function).
A source is a case, a close contact of a case (for secondary contacts) or a published exposure
(``tracer/sources.py``).

The store's key layout is described in ``graph/keys.py``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from itertools import repeat
from typing import NamedTuple

import orjson

from graph.keys import (
    ALERTS,
    CONTACT_ALERTS,
    HOMES,
    ITINERARIES,
    PROBES,
    QUARANTINES,
    REMOTE_CONTACTS,
    REMOTE_STARTS,
    RIDERS,
    RIDING,
    SOURCES,
    TRIPS,
    TRIPS_KEPT_FROM,
    case_key,
    exposure_key,
    group,
    is_case_key,
    key_parts,
    service_days,
    via_key,
)
from graph.store import SEP, Store
from tracer import published
from tracer.alerts import Alert, AlertIds, AlertMaker, Change, alert_day, alert_maker, is_case_close, new_change
from tracer.clock import EventClock, purged_to
from tracer.errors import InvalidEvent
from tracer.events import (
    QUARANTINED,
    Case,
    Event,
    Exposure,
    Followup,
    Person,
    Trip,
    decode_trip,
    decode_trips,
    encode_trips,
    parse_time,
)
from tracer.rules import (
    CLOSE,
    GENERAL,
    Level,
    Match,
    close_candidates,
    meeting,
    onset_problem,
    rides_in_window,
)
from tracer.settings import RuleSettings
from tracer.sources import (
    Source,
    decode_source,
    default_isolation,
    encode_case,
    encode_exposure,
    encode_via,
    exposure_rides,
)

# Flat families' prefixes, read on every trip.
T, C, S, Q = (group(family) for family in (TRIPS, SOURCES, HOMES, QUARANTINES))
_PURGE_BATCH = 50_000  # deletes per commit while retention drops a day
_NARROW_READS = 8  # up to this many persons (or sources), read their rides of a day one by one, not the whole day
Affected = dict[str, dict[str, set[str]]]  # service day -> source key -> contact persons


def _affected() -> Affected:
    return defaultdict(lambda: defaultdict(set))


class Applied(NamedTuple):
    """What ``Engine.apply`` did with a batch of events."""

    changes: list[Change]  # every alert change, in a deterministic order
    refused: dict[int, str]  # the index of each event refused (nothing of it written) -> the reason
    consumed: int  # how many events were applied or refused: the rest start the next batch


# A contact, how they met a source at best (``rules.Match``) and the alert level that gives (both
# None: no alert): a plain tuple, one per contact of a recompute (a NamedTuple's constructor is a
# Python call).
Hit = tuple[str, Match | None, str | None]


class Engine:
    """Turns events into alert changes; all state lives in ``store``.

    ``delivers`` says which service days the caller delivers alerts of (None: all of them). A Kafka
    partition delivers only its own days; on the others it traces the copied rides of case persons
    and close contacts only to derive secondary tracing (connectors/kafka/routing.py), for which the
    close alerts of cases are all it needs, so there the engine makes no other.
    """

    def __init__(
        self,
        store: Store,
        rules: RuleSettings,
        delivers: Callable[[str], bool] | None = None,
        registry: Store | None = None,
    ) -> None:
        self.store = store
        # Homes (HOMES) live in ``registry``: by default this store, which the engine then writes;
        # a registry shared by several engines is written by its owner, and each engine only moves
        # its alerts when a person moves (``_on_persons``).
        self.registry = registry if registry is not None else store
        self._owns_registry = registry is None
        self.rules = rules
        self._delivers = delivers
        self._zone = rules.zone
        # Derived from the store, kept in memory so that a trip meeting no source costs no scan.
        self._probed: Counter[str] = Counter()  # service day -> probes on it
        self._riding_sources: Counter[str] = Counter()  # person -> traced sources riding as them
        for key, _ in store.items(group(PROBES)):
            self._probed[key[2:].rsplit(SEP, 2)[0]] += 1
        for key, _ in store.items(group(RIDING)):
            self._riding_sources[key[2:].split(SEP, 1)[0]] += 1
        self._alerted: Counter[str] = Counter()  # person -> their live alerts (CONTACT_ALERTS entries)
        for key, _ in store.items(group(CONTACT_ALERTS)):
            self._alerted[key[2:].split(SEP, 1)[0]] += 1
        # Riders of each service day read during one event (riders only change at its start).
        self._riders_of: dict[str, dict[str, list[Trip]]] = {}
        self._homes: dict[str, str | None] = {}  # person -> subdistrict (None: none known), read during one event
        # Event time and the retention horizon; a trip that moves the horizon purges (``_purge``).
        self.clock = EventClock(store, rules, on_new_horizon=self._purge)

    # -- entry points ----------------------------------------------------------------------
    @property
    def event_time(self) -> int | None:
        """The stream's event time (docs/rules.md), or None before it has one."""
        return self.clock.event_time

    def has_live_alerts(self, person_id: str | None = None) -> bool:
        """Whether anyone (or ``person_id``) has a live alert here."""
        return bool(self._alerted) if person_id is None else person_id in self._alerted

    def process(self, event: Event, timed: bool = True) -> list[Change]:
        """Apply one event: the batch of one. Raises ``InvalidEvent`` (before any write) for an
        event it cannot apply.

        ``timed=False``: a trip that takes no part in this engine's event time. Kafka partitions
        apply so the rides other partitions copy to them (streams/kafka/partition.py).
        """
        applied = self.apply((event,), timed)
        if applied.refused:
            raise InvalidEvent(applied.refused[0])
        return applied.changes

    def apply(self, events: Sequence[Event], timed: bool = True) -> Applied:
        """Apply a batch of events as one step; see ``Applied`` for what comes back.

        Consecutive trips (and consecutive persons) are applied together: their writes first,
        then every ``(source, contact, service day)`` key they can affect is recomputed once. The
        stored alerts are those of applying the events one at a time (the recompute is a function
        of the stored rides and sources, whatever their order); only the change stream is coarser:
        an alert made and retracted within one batch is never reported. Other events are rare and
        are applied one by one, in their place.

        A trip that moves event time into a new day purges the days retention drops, and a purge
        commits on its way; so such a trip is applied only as the first event of a batch, and the
        batch before it ends there (``consumed``). The caller's commit then holds exactly the events
        before it, and a crash re-reads the same batches.
        """
        if events and type(events[0]) is Person and list(map(type, events)).count(Person) == len(events):
            # a registry's block: one run, nothing to check (the loop below costs 0.1 us a resident)
            return Applied(self._apply_run(list(events)), {}, len(events))
        changes: list[Change] = []
        refused: dict[int, str] = {}
        run: list[Trip] | list[Person] = []
        started = False  # something of this batch reached the store (or waits in ``run`` to)
        for index, event in enumerate(events):
            if type(event) is Person and (not run or type(run[0]) is Person):
                run.append(event)  # type: ignore[arg-type]  # a registry's millions: nothing to check
                started = True
                continue
            try:
                moment = self._validate(event, timed)
            except InvalidEvent as exc:
                refused[index] = exc.reason
                continue
            if moment is not None and not self.clock.advance(moment, may_purge=not started):
                return Applied(changes + self._apply_run(run), refused, index)
            started = True
            if run and type(event) is not type(run[0]):
                changes += self._apply_run(run)
                run = []
            if type(event) is Trip or type(event) is Person:
                run.append(event)  # type: ignore[arg-type]
            else:
                changes += self._apply_one(event)
        return Applied(changes + self._apply_run(run), refused, len(events))

    def _forget_reads(self) -> None:
        """Empty the caches of reads made while one run or event is applied: the next changes them."""
        self._riders_of.clear()
        self._homes.clear()

    def _apply_run(self, run: list[Trip] | list[Person]) -> list[Change]:
        if not run:
            return []
        self._forget_reads()
        changes = self._on_trips(run) if type(run[0]) is Trip else self._on_persons(run)  # type: ignore[arg-type]
        return changes + self._follow(changes) if changes else changes

    def _apply_one(self, event: Event) -> list[Change]:
        self._forget_reads()
        if isinstance(event, Case):
            changes = self._replace_source(case_key(event.case_id), encode_case(event))
        elif isinstance(event, Followup):
            changes = self._on_quarantine(event) if event.outcome == QUARANTINED else []
        else:
            assert isinstance(event, Exposure)
            changes = self._on_exposure(event)
        return changes + self._follow(changes) if changes else changes

    def _validate(self, event: Event, timed: bool) -> int | None:
        """Every check of an event against the rules and the state, made before anything is
        written. Returns the board time of a trip that counts toward event time (None: no trip)."""
        kind = type(event)
        if kind is Trip or kind is Exposure:
            self.clock.check(event)  # type: ignore[arg-type]
        elif kind is Case:
            problem = onset_problem(event, self._zone)  # type: ignore[arg-type]
            if problem is not None:
                raise InvalidEvent(problem)
        return event.board if timed and kind is Trip else None  # type: ignore[union-attr]

    # -- trips -----------------------------------------------------------------------------
    def _on_trips(self, trips: list[Trip]) -> list[Change]:
        """Store a run of trips (the last version of each trip id wins), then recompute what they
        can affect, once.

        An alert ``(source, contact, day)`` can change only where the contact's rides on that day
        changed or the source's probes (its rides in its window) on that day did. So the keys are:
        every probe on a day, before or after the run, with every person whose rides changed on
        it; and every rider of a day, after the run, with every source whose probes changed on it
        (narrowed to those the changed ride can meet). A rider gone in the run is in the first set:
        a source probing its day before the run either still does or lost a probe there.
        """
        latest = {trip.trip_id: trip for trip in trips}
        stored = self.store.get_many(T, latest.keys())
        changed: dict[str, set[str]] = defaultdict(set)  # service day -> persons whose rides changed
        source_rides: list[tuple[Trip, bool]] = []  # rides of persons riding as a source; present?
        riding = self._riding_sources
        new = [trip for trip_id, trip in latest.items() if stored[trip_id] is None and trip.person_id not in riding]
        if len(new) < len(latest):
            for trip_id, trip in latest.items():
                old_data = stored[trip_id]
                if old_data is None and trip.person_id not in riding:
                    continue  # in ``new``
                data = trip.encode()
                if old_data == data:
                    continue  # redelivery
                if old_data is not None:
                    old = decode_trip(old_data)
                    self._remove_trip(old)
                    changed[old.service_day].add(old.person_id)
                    if old.person_id in riding:
                        source_rides.append((old, False))
                self._add_trips((trip_id,), (trip.person_id,), (trip.date,), (trip.service_day,), (data,))
                changed[trip.service_day].add(trip.person_id)
                if trip.person_id in riding:
                    source_rides.append((trip, True))
        new_days = self._add_new_trips(new)
        affected = _affected()
        unprobed = self._move_probes(source_rides, affected)
        if self._probed or unprobed:  # on other days, a new ride changes no alert
            for day, trip in zip(new_days, new, strict=True):
                if day in self._probed or day in unprobed:
                    changed[day].add(trip.person_id)
        for day, persons in changed.items():
            gone = unprobed.get(day, ())
            if day in self._probed or gone:
                keys = {suffix.split(SEP, 1)[0] for suffix, _ in self.store.scan(group(PROBES, day))}
                keys.update(gone)
                delivered = self._delivered(day)
                for key in keys:
                    if delivered or is_case_key(key):
                        affected[day][key].update(persons)
        return self._recompute(affected) if affected else []

    def _add_new_trips(self, trips: list[Trip]) -> list[str]:
        """``_add_trips`` of trips of new ids whose persons ride as no source: almost every trip of a
        day, so their columns are taken at once, their keys built by the batch, and their rider and
        itinerary keys (new keys, in new groups) staged for the commit (``Store.stage``). Returns the
        service day of each."""
        if not trips:
            return []
        ids, persons, modes, services, dates = list(zip(*trips, strict=True))[:5]
        days = service_days(dates, modes, services)
        self._add_trips(ids, persons, dates, days, encode_trips(trips), stage=True)
        return days

    def _add_trips(self, ids: Sequence[str], persons: Sequence[str], dates: Sequence[str], days: Sequence[str],
                   values: Sequence[bytes], stage: bool = False) -> None:
        """Store trips, given by their ids, persons, dates, service days and encoded values: three
        keys a trip (graph/keys.py), its id, its ride among the riders of its service day, and its
        itinerary entry."""
        self.store.put_many(T, dict(zip(ids, values, strict=True)))
        riders, itineraries = group(RIDERS), group(ITINERARIES)
        rides = [(f"{riders}{day}{SEP}", f"{person}{SEP}{trip_id}", value)
                 for day, person, trip_id, value in zip(days, persons, ids, values, strict=True)]
        entries = [(f"{itineraries}{person}{SEP}", f"{date}{SEP}{trip_id}", b"")
                   for person, date, trip_id in zip(persons, dates, ids, strict=True)]
        if stage:
            self.store.stage(RIDERS, rides)
            self.store.stage(ITINERARIES, entries)
        else:
            self.store.put_each(rides + entries)

    def _remove_trip(self, trip: Trip) -> None:
        self.store.delete(T, trip.trip_id)
        self.store.delete(group(RIDERS, trip.service_day), trip.person_id + SEP + trip.trip_id)
        self.store.delete(group(ITINERARIES, trip.person_id), trip.date + SEP + trip.trip_id)

    def _move_probes(self, source_rides: list[tuple[Trip, bool]], affected: Affected) -> dict[str, set[str]]:
        """Add or remove the probes of rides of source persons (a removed version before the one
        that replaces it), and add to ``affected`` the riders each can meet. Returns the source
        keys of the probes removed, by service day."""
        removed: dict[str, set[str]] = defaultdict(set)
        for trip, present in source_rides:
            day = trip.service_day
            for key, _ in self.store.scan(group(RIDING, trip.person_id)):
                source = self._load_source(key)
                probe = (group(PROBES, day), key + SEP + trip.trip_id)
                if present and source.window is not None and rides_in_window(trip, source.window):
                    if self.store.get(*probe) is None:
                        self._probed[day] += 1
                    self.store.put(*probe, trip.encode())
                elif self.store.get(*probe) is not None:
                    self.store.delete(*probe)
                    self._unprobe(day)
                    removed[day].add(key)
                only_close = source.via_person_id is not None
                affected[day][key].update(self._exposed_by(key, trip, only_close))
        return removed

    # -- sources: cases, via contacts, published exposures -----------------------------------
    def _on_exposure(self, exposure: Exposure) -> list[Change]:
        """Keep the published fact (tracer/published.py); trace it only on a day whose trips are
        kept (an older version traced on a kept day is then removed with its alerts)."""
        published.keep(self.store, exposure)
        traced = exposure.date >= self.clock.horizon
        return self._replace_source(exposure_key(exposure.exposure_id), encode_exposure(exposure) if traced else None)

    def _replace_source(self, key: str, data: bytes | None) -> list[Change]:
        """Store a new version of a source (None: remove it) and recompute what it exposes."""
        old_data = self.store.get(C, key)
        if old_data == data:
            return []  # a repeated report
        old = decode_source(key, old_data, self.rules) if old_data is not None else None
        new = decode_source(key, data, self.rules) if data is not None else None
        if data is None:
            self.store.delete(C, key)
        else:
            self.store.put(C, key, data)
        same = old is not None and new is not None and old.reach == new.reach
        changes = [] if same else self._retrace(key, old, new)
        if old is not None and new is not None and old.reported_at != new.reported_at:
            changes += self._refresh_contacts_of(new)  # their default isolation moved
        return changes

    def _retrace(self, key: str, old: Source | None, new: Source | None) -> list[Change]:
        """Move a source's probes from its old rides to its new ones; recompute every key they touch."""
        old_rides, new_rides = self._rides(old), self._rides(new)
        if old is not None and old.person_id is not None and old.window is not None:
            self.store.delete(group(RIDING, old.person_id), key)
            self._riding_sources[old.person_id] -= 1
            if not self._riding_sources[old.person_id]:
                del self._riding_sources[old.person_id]
        if new is not None and new.person_id is not None and new.window is not None:
            self.store.put(group(RIDING, new.person_id), key, b"")
            self._riding_sources[new.person_id] += 1
        affected = _affected()
        for ride in old_rides:
            self.store.delete(group(PROBES, ride.service_day), key + SEP + ride.trip_id)
            self._unprobe(ride.service_day)
        for ride in new_rides:
            self.store.put(group(PROBES, ride.service_day), key + SEP + ride.trip_id, ride.encode())
            self._probed[ride.service_day] += 1
        # Whom the new rides may alert, and whom the source has alerts of: everyone else of an old
        # ride had no alert from it, and gets none from a ride the source no longer has.
        only_close = new is not None and new.via_person_id is not None
        for ride in new_rides:
            affected[ride.service_day][key].update(self._exposed_by(key, ride, only_close))
        known: dict[str, tuple[bytes, Alert]] = {}
        for suffix, value in self.store.scan(group(ALERTS, key)):
            alert = orjson.loads(value)
            known[suffix] = (value, alert)
            affected[alert_day(alert)][key].add(alert["contact_person_id"])
        return self._recompute(affected, (key, known))

    def _rides(self, source: Source | None) -> list[Trip]:
        """The rides through which a source exposes others (within its window)."""
        if source is None or source.window is None:
            return []
        if source.exposure is not None:
            return exposure_rides(source.exposure)
        itinerary = self.store.scan(group(ITINERARIES, source.person_id or ""))
        trip_ids = [suffix.split(SEP, 1)[1] for suffix, _ in itinerary]
        stored = self.store.get_many(T, trip_ids)  # one read: a case's report reads all its rides
        rides = []
        for trip_id in trip_ids:
            data = stored[trip_id]
            if data is not None and rides_in_window(trip := decode_trip(data), source.window):
                rides.append(trip)
        return rides

    def _find_source(self, key: str) -> Source | None:
        data = self.store.get(C, key)
        return decode_source(key, data, self.rules) if data is not None else None

    def _load_source(self, key: str) -> Source:
        source = self._find_source(key)
        assert source is not None, "a K, P or A entry points at a missing source"
        return source

    # -- secondary contacts ------------------------------------------------------------------
    def _follow(self, changes: list[Change]) -> list[Change]:
        """Re-derive the via source of every close contact whose close alerts just changed."""
        if not self.rules.trace_secondary:
            return []
        pairs = set()
        for change in changes:
            for alert in (change.before, change.after):  # close alerts of cases (not of exposures)
                if is_case_close(alert):
                    pairs.add((alert["case_id"], alert["contact_person_id"]))
        return [change for case_id, contact in sorted(pairs) for change in self._refresh_via(case_id, contact)]

    def _refresh_contacts_of(self, case: Source) -> list[Change]:
        """A case's report time moved: the default isolation of all its close contacts moves too
        (those known here, and those other workers reported: ``receive``)."""
        alerts = (orjson.loads(value) for _, value in self.store.scan(group(ALERTS, case.key)))
        contacts = {alert["contact_person_id"] for alert in alerts if alert["level"] == Level.CLOSE}
        contacts.update(suffix.split(SEP, 1)[0] for suffix, _ in self.store.scan(group(REMOTE_STARTS, case.case_id)))
        return [change for contact in sorted(contacts) for change in self._refresh_via(case.case_id, contact)]

    def _refresh_via(self, case_id: str, contact: str) -> list[Change]:
        """The via source of ``contact`` for ``case_id``: from their first close exposure (here or,
        as other workers reported it, on their days) to isolation."""
        if not self.rules.trace_secondary:
            return []  # no via sources at all: not from a quarantine, a re-report or another worker either
        case = self._find_source(case_key(case_id))
        if case is None:
            return []  # forgotten by retention
        local = self.close_start(case_id, contact)
        starts = [int(value) for _, value in self.store.scan(group(REMOTE_STARTS, case_id), contact + SEP)]
        if local is not None:
            starts.append(local)
        data = None
        if starts and case.window is not None and case.reported_at is not None:
            quarantine = self.store.get(Q, contact)
            end = int(quarantine) if quarantine else default_isolation(case.reported_at, self.rules)
            data = encode_via(case, contact, min(starts), end)
        return self._replace_source(via_key(case_id, contact), data)

    def close_start(self, case_id: str, contact: str) -> int | None:
        """The start of ``contact``'s earliest live close exposure to the case in this store, or None."""
        starts, key = [], case_key(case_id)
        for suffix, source in self.store.scan(group(CONTACT_ALERTS, contact)):
            if source.decode() == key:
                alert = orjson.loads(self.store.get(group(ALERTS, key), suffix) or b"null")
                if alert["level"] == Level.CLOSE:
                    starts.append(parse_time(alert["exposure_start"]))
        return min(starts) if starts else None

    def receive(self, sender: int, starts: Iterable[tuple[str, str, int | None]]) -> list[Change]:
        """``(case, close contact, close_start)`` as worker ``sender`` found them on its service days
        (None: none there any more), for ``tracer run --workers`` (streams/worker.py): each worker
        stores the rides of its own days, and a via source's window starts at the earliest close
        exposure on any day. Stored, then the via sources they concern are re-derived. They only
        move via sources, whose alerts are secondary: nothing received makes a worker send more."""
        self._forget_reads()
        pairs = set()
        worker = str(sender)
        for case_id, contact, start in starts:
            if self.store.get(C, case_key(case_id)) is None:
                continue  # forgotten here by retention (each worker keeps its own event time)
            entry = (group(REMOTE_STARTS, case_id), contact + SEP + worker)  # one group: scans see pending writes
            value = None if start is None else str(start).encode()
            if self.store.get(*entry) == value:
                continue
            self.store.put(*entry, value)
            self.store.put(group(REMOTE_CONTACTS, contact), case_id + SEP + worker, None if value is None else b"")
            pairs.add((case_id, contact))
        return [change for case_id, contact in sorted(pairs) for change in self._refresh_via(case_id, contact)]

    def _on_quarantine(self, event: Followup) -> list[Change]:
        """A ``quarantined`` follow-up: the person is isolated from the earliest of them on (an
        order-independent rule, docs/rules.md), which ends their secondary-exposure periods."""
        stored = self.store.get(Q, event.person_id)
        if stored is not None and int(stored) <= event.at:
            return []
        self.store.put(Q, event.person_id, str(event.at).encode())
        # Every case this person has a live alert of, not only their via sources riding now (K): a
        # via source whose period was empty (isolated before the first exposure) has no K entry,
        # and a later quarantine may open it. And the cases other workers found them close to.
        keys = {key.decode() for _, key in self.store.scan(group(CONTACT_ALERTS, event.person_id))}
        cases = {key_parts(key)[1] for key in keys if is_case_key(key)}
        cases.update(suffix.rsplit(SEP, 1)[0] for suffix, _ in self.store.scan(group(REMOTE_CONTACTS, event.person_id)))
        return [change for case_id in sorted(cases) for change in self._refresh_via(case_id, event.person_id)]

    # -- registry ----------------------------------------------------------------------------
    def _on_persons(self, persons: list[Person]) -> list[Change]:
        """A run of registry entries (the last of each person wins): write each home (unless the
        registry is shared, and kept by its owner), then move the live alerts of those who have
        any. Nothing is read for a person with no live alert: loading a city's registry is millions
        of these."""
        if self._owns_registry:  # no known home: stored empty
            homes = {person.person_id: (person.subdistrict or "").encode() for person in persons}
            self.registry.put_many(S, homes)
            residents = homes.keys()  # one pass over the run, not two (0.15 us a resident)
        else:
            residents = {person.person_id for person in persons}
        if residents.isdisjoint(self._alerted):
            return []  # a registry's block, read before any trip
        latest = {person.person_id: person.subdistrict for person in persons}
        return [change for person_id, home in latest.items() if person_id in self._alerted
                for change in self._move_alerts(person_id, home)]

    def _move_alerts(self, person_id: str, home: str | None) -> list[Change]:
        """Give the person's live alerts their home (each alert names its contact's current one)."""
        changes = []
        for suffix, key in self.store.scan(group(CONTACT_ALERTS, person_id)):
            alerts = group(ALERTS, key.decode())
            before = orjson.loads(self.store.get(alerts, suffix) or b"null")
            if before["subdistrict"] != home:
                after = {**before, "subdistrict": home}
                line = orjson.dumps(after)
                self.store.put(alerts, suffix, line)
                changes.append(Change(before, after, line))
        return changes

    # -- the one recompute -------------------------------------------------------------------
    def _recompute(self, affected: Affected, known: tuple[str, dict[str, tuple[bytes, Alert]]] | None = None
                   ) -> list[Change]:
        """Recompute every ``(source, contact)`` key on each service day; report what changed.

        ``known``: a source key and every alert stored of it (alert id -> its value and the alert),
        read just before: they are not read again, and when there are none (a source just created)
        its contacts with no hit are left out. The matches of every day come first (they read rides
        and sources, which nothing here writes), then the homes of everyone matched in one read,
        then each day's alerts, by source and contact.
        """
        known_key, known_alerts = known if known is not None else (None, {})
        fresh = known_key if known is not None and not known_alerts else None
        sources: dict[str, Source | None] = {}  # None: the source was just removed
        matched: list[str] = []  # contacts with a hit, whose homes their alerts show
        days = [(day, self._hits(day, affected[day], sources, fresh, matched)) for day in sorted(affected)]
        self._read_homes(matched)
        changes: list[Change] = []
        for day, runs in days:
            for key, source, pairs in runs:
                if pairs:
                    self._store_alerts(source, key, day, pairs, known_alerts if key == known_key else None, changes)
        return changes

    def _hits(
        self,
        day: str,
        by_source: dict[str, set[str]],
        sources: dict[str, Source | None],
        fresh: str | None,
        matched: list[str],
    ) -> list[tuple[str, Source | None, list[Hit]]]:
        """The hit of each source's contacts on a service day (None: no alert), by source and then
        contact in order; the ``fresh`` source's contacts without one are left out (it has no
        alert to retract). Each contact with a hit is appended to ``matched``. On a day the caller
        does not deliver, only the close hits of cases (see ``Engine``). Sources read are kept in
        ``sources`` for the caller's next days. What is the same for every contact of a source (its
        rides cut to its window, who it excludes, its levels) is looked up once. The day's probes
        and riders are read once a source can match (not for a source removed or ended)."""
        probes: dict[str, list[Trip]] | None = None
        riders: dict[str, list[Trip]] = {}
        delivered = self._delivered(day)
        runs = []
        for key in sorted(by_source):
            contacts = sorted(by_source[key])
            source = None
            if delivered or is_case_key(key):
                if key not in sources:
                    sources[key] = self._find_source(key)
                source = sources[key]
            rides = None
            if source is not None and source.window is not None:
                if probes is None:
                    probes = self._trips_by_owner(group(PROBES, day), by_source.keys())
                    riders = self._rides_on(day, by_source)
                rides = probes.get(key)
            if source is None or source.window is None or not rides:
                runs.append((key, source, [] if key == fresh else [(contact, None, None) for contact in contacts]))
                continue
            best = meeting(rides, source.window, self.rules, source.via_person_id is not None)
            excluded = (source.person_id, source.case_person_id)  # ``Source.excludes``
            # The alert level of each match level (none: no alert), on this day, as a plain string:
            # orjson reads an enum member's value through a Python property (0.3 us an alert).
            levels = {found: str(level) for found in (CLOSE, GENERAL)
                      if (level := source.level(found)) is not None and (delivered or level == CLOSE)}
            keeps_misses = key != fresh
            pairs: list[Hit] = []
            for contact in contacts:
                contact_rides = riders.get(contact)
                if (contact_rides and contact not in excluded and (found := best(contact_rides)) is not None
                        and (level := levels.get(found.level)) is not None):
                    pairs.append((contact, found, level))
                    matched.append(contact)
                elif keeps_misses:
                    pairs.append((contact, None, None))
            runs.append((key, source, pairs))
        return runs

    def _read_homes(self, contacts: list[str]) -> None:
        """Read into ``_homes`` the subdistricts of ``contacts`` not read yet during this event, in one
        batched read. A read per alert was 16% of a case lookup, and a large case alerts some people
        several times, through several close contacts (2,182 changes, 351 people)."""
        wanted = set(contacts)
        wanted.difference_update(self._homes)
        if wanted:
            self._homes.update({person: home.decode() if home else None
                                for person, home in self.registry.get_many(S, wanted).items()})

    def _store_alerts(self, source: Source | None, key: str, day: str, pairs: list[Hit],
                      known: dict[str, tuple[bytes, Alert]] | None, changes: list[Change]) -> None:
        """Compare the alerts of ``key`` on a service day (each contact's, from their hit) with those
        stored; store what changed and append it to ``changes``. The stored ones are read in one
        batched read (``known``: every one stored, read already), and written in one call."""
        date, mode, service = day.split(SEP)
        kind, source_id, via = key_parts(key)
        contacts = [contact for contact, _, _ in pairs]
        identities = AlertIds(kind, source_id, mode, service, date, via).many(contacts)
        alerts, by_contact, source_key = group(ALERTS, key), group(CONTACT_ALERTS), key.encode()
        if known is not None and not known:  # a new source: each pair is a hit, and each alert a new one
            make, homes = self._alert_maker(source, mode, service, date), self._homes  # type: ignore[arg-type]
            made = [make(identity, found, level, homes[contact])  # type: ignore[arg-type]
                    for (contact, found, level), identity in zip(pairs, identities, strict=True)]
            lines = list(map(orjson.dumps, made))
            self.store.put_many(alerts, dict(zip(identities, lines, strict=True)))
            self.store.put_each([(by_contact + contact + SEP, identity, source_key)  # group(CONTACT_ALERTS, contact)
                                 for contact, identity in zip(contacts, identities, strict=True)])
            self._alerted.update(contacts)  # Counter.update counts in C
            changes.extend(map(new_change, zip(repeat(None), made, lines)))
            return
        if known is None:
            stored = self.store.get_many(alerts, identities)
            known = {identity: (data, None) for identity, data in stored.items() if data is not None}  # type: ignore[misc]
        make, homes, written, dumps = None, self._homes, {}, orjson.dumps
        indexed: list[tuple[str, str, bytes | None]] = []  # CONTACT_ALERTS writes
        alerted: list[str] = []  # contacts of new alerts
        for (contact, found, level), identity in zip(pairs, identities, strict=True):
            old, before = known.get(identity, (None, None))
            if found is None:
                if old is None:
                    continue
                after, new = None, None
                indexed.append((by_contact + contact + SEP, identity, None))
                self._unalert(contact)
            else:
                if make is None:  # a hit has a source with a window
                    make = self._alert_maker(source, mode, service, date)  # type: ignore[arg-type]
                after = make(identity, found, level, homes[contact])  # type: ignore[arg-type]
                new = dumps(after)
                if old == new:
                    continue
                if old is None:
                    indexed.append((by_contact + contact + SEP, identity, source_key))
                    alerted.append(contact)
            written[identity] = new
            if old is not None and before is None:
                before = orjson.loads(old)
            changes.append(new_change((before, after, new)))
        self.store.put_each(indexed)
        self._alerted.update(alerted)
        if written:
            self.store.put_many(alerts, written)

    def _alert_maker(self, source: Source, mode: str, service: str, date: str) -> AlertMaker:
        """``alerts.alert_maker`` of a source with a window on one service day, at this event time."""
        truncated = source.truncatable and source.window.start < self.clock.horizon_start  # type: ignore[union-attr]
        return alert_maker(source, mode, service, date, truncated, self._zone)

    def _trips_by_owner(self, group: str, owners: Collection[str] | None = None) -> dict[str, list[Trip]]:
        """Trips of a P or R group by their first key part (source key or person id). Given a few
        ``owners``, only theirs, one narrowed read each: a busy service day holds thousands of
        riders, and in an outbreak, probes of hundreds of secondary-tracing sources."""
        trips: dict[str, list[Trip]] = defaultdict(list)
        if owners is not None and len(owners) <= _NARROW_READS:
            for owner in owners:
                for _, data in self.store.scan(group, owner + SEP):
                    trips[owner].append(decode_trip(data))
            return trips
        for suffix, data in self.store.scan(group):
            trips[suffix.split(SEP, 1)[0]].append(decode_trip(data))
        return trips

    def _rides_on(self, day: str, by_source: dict[str, set[str]]) -> dict[str, list[Trip]]:
        """The rides on a service day of the contacts of ``by_source``: read alone when they are few
        (a new ride on a day a case rode, the common case in an outbreak); the whole-day read on
        every such ride made an outbreak quadratic in the riders per day."""
        riders = self._riders_of.get(day)
        if riders is not None:
            return riders
        persons = set().union(*by_source.values())
        if len(persons) > _NARROW_READS:
            return self._riders_by_person(day)
        return self._trips_by_owner(group(RIDERS, day), persons)

    def _riders_by_person(self, day: str) -> dict[str, list[Trip]]:
        """Every rider of a service day (read once an event): the values alone, each trip's person
        being the first part of its key."""
        riders = self._riders_of.get(day)
        if riders is None:
            trips = decode_trips(self.store.values(group(RIDERS, day)))
            riders = {trip.person_id: [trip] for trip in trips}  # most ride once a day: 0.19 against 0.46 us
            if len(riders) < len(trips):  # someone rode twice
                riders = defaultdict(list)
                for trip in trips:
                    riders[trip.person_id].append(trip)
            self._riders_of[day] = riders
        return riders

    def _exposed_by(self, key: str, ride: Trip, only_close: bool) -> Iterable[str]:
        """Riders of ``ride``'s service day whose alert from source ``key`` may change: all of them;
        for a source that counts close contacts only (secondary tracing), those who could be close;
        on a day the caller does not deliver, only those close to a case (see ``Engine``). Their
        previous alerts need no listing here: each was close to one of the source's rides."""
        delivered = self._delivered(ride.service_day)
        if not delivered and not is_case_key(key):
            return ()
        riders = self._riders_by_person(ride.service_day)
        return close_candidates(ride, riders, self.rules) if only_close or not delivered else riders.keys()

    def _delivered(self, day: str) -> bool:
        return self._delivers is None or self._delivers(day)

    def _unalert(self, person: str) -> None:
        self._alerted[person] -= 1
        if not self._alerted[person]:
            del self._alerted[person]

    def _unprobe(self, day: str) -> None:
        self._probed[day] -= 1
        if not self._probed[day]:
            del self._probed[day]

    # -- retention ----------------------------------------------------------------------------
    def _purge(self, horizon: str) -> None:
        """Drop service days before ``horizon``, and sources that ended before it."""
        for key, _ in self.store.purge_groups(group(RIDERS), horizon):
            day, person, trip_id = key[2:].rsplit(SEP, 2)
            self.store.delete(T, trip_id)
            self.store.delete(group(ITINERARIES, person), day[:10] + SEP + trip_id)
            if self.store.pending_count >= _PURGE_BATCH:
                self.store.commit()  # a day of a city is millions of keys: bound the batch, not the day
        for key, _ in self.store.purge_groups(group(PROBES), horizon):
            self._unprobe(key[2:].rsplit(SEP, 2)[0])
        purged_to(self.store, TRIPS_KEPT_FROM, horizon)
        published.purge(self.store, self.clock.exposure_horizon)
        for key, value in self.store.items(C):  # a committed snapshot: the deletes below stay pending
            source = decode_source(key[2:], value, self.rules)
            if self._expired(source):
                self._forget_source(source)

    def _expired(self, source: Source) -> bool:
        if source.exposure is not None:
            return source.exposure.date < self.clock.horizon
        ended = source.window is None or source.window.end < self.clock.horizon_start
        reported = source.reported_at is None or source.reported_at < self.clock.horizon_start
        return ended and reported

    def _forget_source(self, source: Source) -> None:
        self.store.delete(C, source.key)
        if source.person_id is not None and source.window is not None:
            self.store.delete(group(RIDING, source.person_id), source.key)
            self._riding_sources[source.person_id] -= 1
            if not self._riding_sources[source.person_id]:
                del self._riding_sources[source.person_id]
        for suffix, value in self.store.scan(group(ALERTS, source.key)):
            contact = orjson.loads(value)["contact_person_id"]
            self.store.delete(group(ALERTS, source.key), suffix)
            self.store.delete(group(CONTACT_ALERTS, contact), suffix)
            self._unalert(contact)
        if is_case_key(source.key):  # what other workers reported of its close contacts
            for suffix, _ in self.store.scan(group(REMOTE_STARTS, source.case_id)):
                contact, worker = suffix.split(SEP)
                self.store.delete(group(REMOTE_STARTS, source.case_id), suffix)
                self.store.delete(group(REMOTE_CONTACTS, contact), source.case_id + SEP + worker)

