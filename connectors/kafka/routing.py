"""Where a published event goes, which partition of the events topic owns what, and the records
workers add to that topic.

Persons go to the registry topic, once (keyed by person id): every worker reads it whole into one
store that all its partitions share (streams/kafka/registry.py). Ownership of the rest follows the
engine's alert key ``(source, contact, service day)``: the partition of a service day
(``date\\x1fmode\\x1fservice``, Kafka's murmur2 partitioner) owns every alert on that day. Its store
holds all rides of its days; cases, exposures and quarantines reach every partition.

That alone covers direct contacts. Secondary contacts (docs/rules.md) need more: the window of a
via source X depends on X's close alerts on *any* day, and X's rides on any day expose others.
So every partition also keeps the complete itineraries of *interesting* persons (case persons and
close contacts of cases), and on days it does not own computes only the close alerts of cases, from
which the via windows derive (``Engine(delivers=...)``); it delivers only the alerts of its own days.
Itineraries spread by two worker-made records, both in the events topic (so a replay of a partition
sees exactly what its owner saw):

* ``interest``: "person X became a close contact somewhere": each partition then copies X's rides
  on its own days to all the others, and keeps copying X's later rides;
* ``trip`` copies of those rides (the stored ride, re-encoded exactly), and of corrections of
  copied rides, whoever rides them now.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson
from kafka.partitioner.default import murmur2

from connectors.kafka.settings import KafkaSettings
from tracer.events import Case, Event, Exposure, Followup, Person, Trip, format_time

SEQ_HEADER = "tracer-seq"  # publish run and line number: the replay order
COPY_HEADER = "tracer-copy"  # on worker-made records: b"trip" or b"interest"
COPY_TRIP, COPY_INTEREST = b"trip", b"interest"


@lru_cache(maxsize=1 << 16)  # murmur2 is pure Python in kafka-python: 6 us, for every alert change
def partition_of(key: bytes, partitions: int) -> int:
    """The partition of a record key: Kafka's default partitioner (murmur2, as the Java client), so
    any producer can match it. Every other question of "which partition" comes down to this."""
    if partitions == 1:
        return 0  # a registry of one partition: no murmur2 for each of millions of persons
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partition_of_day(day: str, partitions: int) -> int:
    """The partition that owns a service day (``graph.keys.service_day``): its trips, its alerts."""
    return partition_of(day.encode(), partitions)


def partitions_of(event: Event, partitions: int) -> tuple[bytes, Sequence[int]]:
    """The record key of an event in the events topic and the partitions it goes to (a person: the
    layout before the registry topic, which workers refuse)."""
    if isinstance(event, Trip):
        key = event.service_day.encode()
        return key, (partition_of(key, partitions),)
    if isinstance(event, Exposure):
        # Everywhere, as cases: a replacement under the same exposure_id may name another service day,
        # and the partition of the old day must see it to retract. Only the owner of the day has its
        # riders, so only it makes alerts there (exposures are rare: 1,740 in the real 2020 feed).
        return event.exposure_id.encode(), range(partitions)
    if isinstance(event, Case):
        return event.case_id.encode(), range(partitions)
    assert isinstance(event, Person | Followup)
    return event.person_id.encode(), range(partitions)


def placement(event: Event, kafka: KafkaSettings, events: int, registry: int) -> tuple[str, bytes, Sequence[int]]:
    """The topic, record key and partitions of a published event (``events`` and ``registry``: the
    partition counts of the two topics)."""
    if type(event) is Person:
        key = event.person_id.encode()
        return kafka.registry_topic, key, (partition_of(key, registry),)
    key, targets = partitions_of(event, events)
    return kafka.events_topic, key, targets


def trip_record(trip: Trip, zone: Any) -> bytes:
    """A stored ride as an input line that ``parse_line`` turns back into the same ``Trip``."""
    return orjson.dumps({
        "type": "trip", "trip_id": trip.trip_id, "person_id": trip.person_id, "mode": trip.mode,
        "service": trip.service, "date": trip.date, "board_time": format_time(trip.board, zone),
        "alight_time": format_time(trip.alight, zone), "carriage": trip.carriage, "seat": trip.seat,
        "berth": trip.berth, "compartment": trip.compartment, "sealed": trip.sealed, "role": trip.role,
        "crew_rows": None if trip.crew_rows is None else f"{trip.crew_rows[0]}-{trip.crew_rows[1]}",
        "board_station": trip.board_station, "alight_station": trip.alight_station,
    })


def interest_record(person_id: str) -> bytes:
    return orjson.dumps({"type": "interest", "person_id": person_id})
