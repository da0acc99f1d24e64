"""The key layout of the co-travel store: every family, every metadata key, and the source-key
codec, named here once (the engine writes them; queries, runners and Kafka partitions read them).

A key is ``family|part|...|last`` with SEP ``\\x1f`` between parts; ``group(family, *parts)`` is
the prefix that a scan reads. Dates come first where retention must cut:

    family          key                               value
    TRIPS           T|trip_id                         trip              redelivery and corrections
    RIDERS          R|date|mode|service|person|trip   trip              riders of a service day
    ITINERARIES     I|person|date|trip_id             b""               a person's itinerary
    PROBES          P|date|mode|service|source|trip   source ride       met by late riders
    SOURCES         C|source                          source record     last version of each source
    RIDING          K|person|source                   b""               traced sources riding as a person
    ALERTS          A|source|alert_id                 alert JSON        live alerts of each source
    CONTACT_ALERTS  X|person|alert_id                 source key        a contact's live alerts
    HOMES           S|person                          subdistrict       the registry (b"": no known home)
    QUARANTINES     Q|person                          time              quarantine (isolation) of a person
    INTEREST        W|person                          b""               Kafka partitions: persons whose rides are copied
    EXPOSURES       E|date|mode|service|exposure      exposure record   published exposures, the lookup's facts,
                                                                        kept for exposure_retention_days
    EXPOSURE_DAYS   N|exposure                        date|mode|service the E entry of each exposure id
    REMOTE_STARTS   V|case|contact|worker             time              `tracer run --workers`: another worker's
                                                                        earliest close exposure of a close contact
    REMOTE_CONTACTS U|contact|case|worker             b""               the same entries by contact (quarantines)

  The views (tracer/views/): follow-ups, health status and call lists, derived from the above.
    OBSERVED        O|person                          facts JSON        a person's live alerts (summaries), the
                                                                        cases they are the person of, their
                                                                        release and their status as last emitted
    FOLLOWUPS       F|person|at|digest                follow-up JSON    what offices did, by time
    OFFICES         L|office|person                   b""               residents with a live alert, by office
    CASE_FACTS      Z|case                            case JSON         each case's person, status, report time
    META            M|name                            ...               the names below

A service day is ``date|mode|service`` (``service_day``). A source key is ``c:<case>``,
``v:<case>\\x1e<person>`` (a close contact's via source, for secondary contacts) or
``e:<exposure>``; ids hold no control characters, so the ``\\x1e`` splits a via key unambiguously.
"""

from __future__ import annotations

from collections.abc import Iterable

from graph.store import SEP

TRIPS, RIDERS, ITINERARIES, PROBES, SOURCES, RIDING = "T", "R", "I", "P", "C", "K"
ALERTS, CONTACT_ALERTS, HOMES, QUARANTINES, INTEREST, META = "A", "X", "S", "Q", "W", "M"
REMOTE_STARTS, REMOTE_CONTACTS = "V", "U"
EXPOSURES, EXPOSURE_DAYS = "E", "N"
OBSERVED, FOLLOWUPS, OFFICES, CASE_FACTS = "O", "F", "L", "Z"

# Names under META.
WATERMARK = "watermark"  # the engine's event time (epoch microseconds)
LATEST_TIMES = "latest_times"  # the latest trip board times, of which event time is the oldest (tracer/engine.py)
POSITION = "position"  # the embedded runner's checkpoint: input position and output sizes
STATE_ID = "state-id"  # the embedded runner's state identity, named by the output folder it owns
EPOCH = "epoch"  # `tracer run --workers`: the coordinator's epoch and the messages it delivers next
WORKER = "worker"  # `tracer run --workers`: a worker's epoch and its answer to it (streams/workers.py)
KAFKA_POSITION = "kafka"  # a Kafka partition store's topic, partition and offset
VIEW_TIME = "view-time"  # the views' event time where no engine shares their store (Kafka's view worker)
# The first service date each retention purge kept (ISO date): a lookup under a longer retention
# set later must not answer for days already dropped (tracer/analysis/lookup.py).
TRIPS_KEPT_FROM, EXPOSURES_KEPT_FROM = "trips-kept-from", "exposures-kept-from"

# The source kinds that alerts name (a via source is its case's) and the key prefixes they take.
CASE, EXPOSURE = "case", "exposure"
_CASE_PREFIX, _VIA_PREFIX, _EXPOSURE_PREFIX = "c:", "v:", "e:"
_VIA_SEP = "\x1e"


def group(family: str, *parts: str) -> str:
    """The prefix of ``family``'s keys under ``parts``: ``group(ALERTS, "c:C1")`` -> ``A|c:C1|``,
    ``group(TRIPS)`` -> ``T|``."""
    return SEP.join((family, *parts)) + SEP


def service_day(date: str, mode: str, service: str) -> str:
    """The key of a service run: riders with equal service days can meet."""
    return f"{date}{SEP}{mode}{SEP}{service}"


def service_days(dates: Iterable[str], modes: Iterable[str], services: Iterable[str]) -> list[str]:
    """``service_day`` of each ``(date, mode, service)`` (a batch's trips), with no call per trip."""
    return [f"{date}{SEP}{mode}{SEP}{service}" for date, mode, service in zip(dates, modes, services, strict=True)]


def case_key(case_id: str) -> str:
    return _CASE_PREFIX + case_id


def via_key(case_id: str, via_person_id: str) -> str:
    return _VIA_PREFIX + case_id + _VIA_SEP + via_person_id


def exposure_key(exposure_id: str) -> str:
    return _EXPOSURE_PREFIX + exposure_id


def is_case_key(key: str) -> bool:
    """A case's own source key (not a close contact's via source, nor an exposure)."""
    return key.startswith(_CASE_PREFIX)


def key_parts(key: str) -> tuple[str, str, str | None]:
    """``(kind, case or exposure id, via person)`` of a source key: the inverse of the key builders."""
    prefix, rest = key[:2], key[2:]
    if prefix == _VIA_PREFIX:
        case_id, via = rest.split(_VIA_SEP, 1)
        return CASE, case_id, via
    return (EXPOSURE if prefix == _EXPOSURE_PREFIX else CASE), rest, None
