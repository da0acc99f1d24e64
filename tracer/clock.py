"""Event time (docs/rules.md, "Event time"): the ``event_time_quorum``-th latest board time of the
accepted trips, the retention horizon it sets, and the checks a ride's service date must pass.

One class, so that every process that needs the stream's time keeps it by the same rule: the engine
(tracer/engine.py), and Kafka's view process (streams/kafka/views.py), which reads the trips of
every events partition to give its views the time ``tracer run`` would have on the same events.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import orjson

from graph.keys import EXPOSURES_KEPT_FROM, LATEST_TIMES, META, TRIPS_KEPT_FROM, WATERMARK, group
from graph.store import Store
from tracer.errors import InvalidEvent
from tracer.events import Exposure, Trip, local_midnight, next_midnight
from tracer.rules import retention_horizon, service_date_bounds, service_date_problem
from tracer.settings import RuleSettings

_M = group(META)
_FAR = 1 << 62


class EventClock:
    """A stream's event time, kept in ``store``: ``META/<mark>`` (the watermark) and
    ``META/LATEST_TIMES`` (the latest board times), put into the batch of every commit.

    ``on_new_horizon(horizon)`` is called when a trip moves the retention horizon (the engine
    purges there; its purge may commit, which saves event time as it was before that trip)."""

    def __init__(self, store: Store, rules: RuleSettings, mark: str = WATERMARK,
                 on_new_horizon: Callable[[str], None] | None = None) -> None:
        self.store, self.rules, self._mark = store, rules, mark
        self._zone = rules.zone
        self._on_new_horizon = on_new_horizon
        saved = store.get(_M, mark)
        self._watermark = int(saved) if saved else -_FAR
        # The latest board times of accepted trips, a min-heap of at most ``event_time_quorum``;
        # put into the store by every commit (``_save``), not by every trip.
        self._latest: list[int] = orjson.loads(store.get(_M, LATEST_TIMES) or b"[]")
        self._changed = False
        self._before_trip: list[int] | None = None  # the heap to save while a trip's purge commits
        store.commit_hooks.append(self._save)
        self.horizon = ""  # the first service date kept: rides before it are refused
        self.exposure_horizon = ""  # the first date of a published exposure kept (``exposure_retention_days``)
        self.horizon_start = -_FAR  # its first microsecond
        self._next_day = -_FAR  # first microsecond of the day after the watermark's day
        self._bounds: dict[str, tuple[int, int]] = {}  # service date -> ``service_date_bounds``: every ride checks one
        if saved:
            self._set_horizon(self._watermark)

    @property
    def event_time(self) -> int | None:
        """The stream's event time, or None before it has one."""
        return self._watermark if self._watermark != -_FAR else None

    def check(self, event: Trip | Exposure) -> None:
        """A ride's board time (an exposure's start) must lie near its service date, which keys its
        state and its retention; and that date must not be behind the retention horizon (a
        published exposure's: the exposure retention horizon, docs/rules.md "Retention")."""
        name, moment = ("board_time", event.board) if type(event) is Trip else ("start", event.start)
        if moment is not None:
            bounds = self._bounds.get(event.date)
            if bounds is None:
                if len(self._bounds) >= 4096:  # bounded: hostile input may name every date
                    self._bounds.clear()
                bounds = self._bounds[event.date] = service_date_bounds(event.date, self.rules)
            first, last = bounds
            if not first <= moment < last:
                raise InvalidEvent(service_date_problem(event.date, moment, self.rules, name=name) or "")
        if type(event) is Trip:
            if event.date < self.horizon:
                raise InvalidEvent(f"trip date {event.date} is before the retention horizon {self.horizon}")
        elif event.date < self.exposure_horizon:  # a published fact: kept longer than the trips
            raise InvalidEvent(
                f"exposure date {event.date} is before the exposure retention horizon {self.exposure_horizon} "
                f"(exposure_retention_days {self.rules.exposure_retention_days})"
            )

    def advance(self, board: int, may_purge: bool = True) -> bool:
        """Count an accepted trip's board time toward event time. So no one trip, nor any few, can
        move it (and with it the retention horizon), and a stream that resumes after a gap moves
        it once that many trips show the new time. Cases, quarantines and exposures are reports
        made by people, after the fact: they are never counted.

        Returns False, changing nothing, when the trip would move event time into a new day (a
        new horizon) and ``may_purge`` is not set."""
        latest, popped = self._latest, None
        if len(latest) < self.rules.event_time_quorum:
            heapq.heappush(latest, board)
        elif board > latest[0]:
            popped = heapq.heapreplace(latest, board)
        else:
            return True
        self._changed = True
        if len(latest) < self.rules.event_time_quorum or latest[0] <= self._watermark:
            return True
        if latest[0] >= self._next_day:
            # A purge commits on its way, and a crash there re-reads this trip: those commits must
            # hold event time as it was before the trip, or the trip's board time would count twice.
            self._before_trip = _without(latest, board, popped)
            if not may_purge:
                self._latest, self._before_trip = self._before_trip, None
                return False
            self._set_horizon(latest[0], purge=True)
            self._before_trip = None
        # Set after the purge, for the same reason: the restarted run must purge again (deleting
        # is idempotent).
        self._watermark = latest[0]
        self._changed = True  # again: a commit during the purge saved the old one
        return True

    def _save(self) -> None:
        """Put event time into the batch a commit is about to write (a store commit hook)."""
        if self._changed:
            latest = self._before_trip if self._before_trip is not None else self._latest
            self.store.put(_M, LATEST_TIMES, orjson.dumps(latest))
            if self._watermark != -_FAR:
                self.store.put(_M, self._mark, str(self._watermark).encode())
            self._changed = False

    def _set_horizon(self, moment: int, purge: bool = False) -> None:
        self._next_day = next_midnight(moment, self._zone)
        # Never behind where a purge already cut (a retention lengthened since): those days are gone.
        horizon = max(retention_horizon(moment, self.rules), kept_from(self.store, TRIPS_KEPT_FROM))
        if horizon != self.horizon:
            self.horizon = horizon
            self.horizon_start = local_midnight(horizon, self._zone)
            self.exposure_horizon = max(retention_horizon(moment, self.rules, self.rules.exposure_retention_days),
                                        kept_from(self.store, EXPOSURES_KEPT_FROM))
            if purge and self._on_new_horizon is not None:
                self._on_new_horizon(horizon)


def _without(heap: list[int], board: int, popped: int | None) -> list[int]:
    """``heap`` as it was before ``board`` went in (and ``popped`` came out)."""
    before = list(heap)
    before.remove(board)
    if popped is not None:
        before.append(popped)
    heapq.heapify(before)
    return before


def purged_to(store: Store, name: str, horizon: str) -> None:
    """Record that a purge dropped the dates before ``horizon`` (``name``: ``TRIPS_KEPT_FROM`` or
    ``EXPOSURES_KEPT_FROM``); a retention lengthened later moves the record back never."""
    if horizon > kept_from(store, name):
        store.put(_M, name, horizon.encode())


def kept_from(store: Store, name: str) -> str:
    """The first date no purge has dropped ("" before any purge)."""
    saved = store.get(_M, name)
    return saved.decode() if saved is not None else ""
