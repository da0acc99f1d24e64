"""The key layout of the co-travel store, in one place (the engine writes it; queries read it).

Groups end with SEP ``\\x1f``; dates come first where retention must cut:
    T|trip_id                         -> trip                 redelivery and corrections
    R|date|mode|service|person|trip   -> trip                 riders of a service day
    I|person|date|trip_id             -> b""                  a person's itinerary
    P|date|mode|service|source|trip   -> source ride          probes, met by late riders
    C|source                          -> source record        last version of each source
    K|person|source                   -> b""                  traced sources riding as a person
    A|source|alert_id                 -> alert JSON           live alerts of each source
    X|person|alert_id                 -> source               a contact's live alerts
    S|person                          -> subdistrict          the registry
    Q|person                          -> time                 quarantine (isolation) of a person
    M|watermark, M|position           -> ...                  event-time watermark; runner checkpoint
    M|first_times                     -> JSON list            event times before the first corroborated one
    W|person, M|kafka                 -> ...                  Kafka partition stores only (streams/kafka_partition.py)
A service day is ``date|mode|service``; a source key is ``c:<case>``, ``v:<case>\\x1e<person>`` or
``e:<exposure>`` (tracer/sources.py).
"""

from __future__ import annotations

from graph.store import SEP

TRIPS, SOURCES, REGISTRY, QUARANTINES, META = (f + SEP for f in "TCSQM")


def group(family: str, *parts: str) -> str:
    """The group of ``family`` under ``parts``: ``group("A", "c:C1")`` -> ``A|c:C1|``."""
    return family + SEP + SEP.join(parts) + SEP


def service_day(date: str, mode: str, service: str) -> str:
    return SEP.join((date, mode, service))
