"""Published exposures as facts about the past, kept for the lookup (docs/rules.md, "Retention").

A health commission's notice that a case rode MU5101 on 15 January stays true, and a person may ask
about it, long after tracer has dropped that day's trips: tracing needs the riders, the lookup only
the notice. So every accepted exposure is written here, in its own key families (graph/keys.py):
``EXPOSURES`` by service day, the lookup's one group scan, and ``EXPOSURE_DAYS`` by id, so that a
corrected notice replaces its earlier version wherever that one was. They are purged by their own
horizon (``exposure_retention_days``), never by the trips'. The tracing copy of an exposure (its
source and probes) lives and goes with the trips, in the engine.
"""

from __future__ import annotations

from collections.abc import Iterator

from graph.keys import EXPOSURE_DAYS, EXPOSURES, group, service_day
from graph.store import SEP, Store
from tracer.events import Exposure
from tracer.sources import decode_exposure, encode_exposure

_DAYS = group(EXPOSURE_DAYS)


def keep(store: Store, exposure: Exposure) -> None:
    """Store ``exposure`` as the version of its id, replacing the one before (another day, another
    service) if any."""
    day = service_day(exposure.date, exposure.mode, exposure.service)
    before = store.get(_DAYS, exposure.exposure_id)
    if before is not None and before.decode() != day:
        store.delete(group(EXPOSURES, before.decode()), exposure.exposure_id)
    store.put(group(EXPOSURES, day), exposure.exposure_id, encode_exposure(exposure))
    store.put(_DAYS, exposure.exposure_id, day.encode())


def purge(store: Store, horizon: str) -> None:
    """Forget the exposures of service dates before ``horizon`` (``purge_groups`` commits first)."""
    for key, _ in store.purge_groups(group(EXPOSURES), horizon):
        store.delete(_DAYS, key.rsplit(SEP, 1)[1])


def published(store: Store, prefix: str) -> Iterator[Exposure]:
    """The exposures under ``prefix``: ``group(EXPOSURES, date, mode)`` followed by a service, or
    by the start of one (a metro line's runs)."""
    for _, value in store.items(prefix):
        yield decode_exposure(value)
