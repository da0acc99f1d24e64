"""One partition of the events topic: its own RocksDB store, engine, input position and outbox.

No Kafka client here (so it is tested without a broker); the worker feeds it records and delivers
what it returns. The contract with the worker:

* ``process(records)`` applies records in offset order and returns the output records of those at
  or after ``emit_from`` (earlier ones are being *rebuilt*: their outputs were delivered before).
  Outputs are alert changes of the days this partition owns, dead letters, and the copies of
  interesting persons' rides for the other partitions (connectors/kafka/routing.py).
* ``commit()`` is called once those outputs are acknowledged by the broker. Whenever the store
  commits (there, or mid-batch when retention cuts old days), a commit hook puts the
  input position and the *outbox* (outputs produced but not yet acknowledged) into the same
  RocksDB write batch as the engine state. A restart re-sends the outbox, then continues at the
  position: no output is lost, and none is computed twice from different states.
* Event time (docs/rules.md): a partition's is that of the trips it owns. Records placed on every
  partition, and worker-made copies, are applied with ``timed=False``, so every partition applies
  them alike whatever its own event time; one rejected by the engine is dead-lettered by one
  partition (``_reports``).
* A record the engine fails on with an unexpected exception (a poison message) is a dead letter:
  the uncommitted state is dropped, the records since the last commit are applied again and the
  poison one is skipped. The engine being deterministic, the same happens on every replay.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import orjson

from connectors.files import dead_letter
from connectors.kafka.routing import (
    COPY_HEADER,
    COPY_INTEREST,
    COPY_TRIP,
    interest_record,
    partition_of,
    partition_of_day,
    partitions_of,
    trip_record,
)
from connectors.kafka.settings import KafkaSettings
from graph.keys import INTEREST, ITINERARIES, KAFKA_POSITION, META, TRIPS, group, service_day
from graph.store import SEP, RocksStore
from tracer.alerts import CONTACTS, Change, alert_day, is_case_close, route
from tracer.engine import Engine
from tracer.errors import InvalidEvent, StateError
from tracer.events import Case, Event, Exposure, Trip, decode_trip
from tracer.intake import Intake
from tracer.privacy import Pseudonymizer
from tracer.progress import Progress
from tracer.settings import Settings

log = logging.getLogger(__name__)
_META = (group(META), KAFKA_POSITION)
_INTEREST = group(INTEREST)  # persons whose rides this partition copies to the others


class Record(Protocol):
    """What the partition needs of a consumer record (aiokafka's ``ConsumerRecord`` fits)."""

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class Output(NamedTuple):
    """An output record and the input offset that produced it.

    ``partition`` is set for records to the events topic (else the key decides); ``copy`` is the
    ``tracer-copy`` header of those records.
    """

    input_offset: int  # the events-topic offset whose processing made it
    topic: str
    key: bytes
    value: bytes
    partition: int | None = None
    copy: bytes | None = None


class _Poison(Exception):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


class PartitionTask:
    """State and progress of one input partition on this worker."""

    def __init__(self, state_dir: Path, topic: str, partition: int, partitions: int, settings: Settings,
                 kafka: KafkaSettings, pseudonyms: Pseudonymizer | None = None) -> None:
        self.topic, self.partition, self.partitions = topic, partition, partitions
        self._pseudonyms = pseudonyms
        self.path = state_dir / f"{topic}-{partition}"
        self._settings, self._kafka = settings, kafka
        self._zone = settings.rules.zone
        self._spread = settings.rules.trace_secondary  # without secondary contacts, no itineraries to copy
        self._intake = Intake(settings)
        self.emit_from = 0
        self.progress = Progress()  # lines: records applied; records: outputs sent on; silent: replayed
        self._poison: dict[int, str] = {}
        state_dir.mkdir(parents=True, exist_ok=True)
        self._open()

    # -- lifecycle -------------------------------------------------------------------------
    def _open(self) -> None:
        # One store per partition, several per worker: each gets the [kafka] partition budget
        # (block cache + two memtables), not the embedded runner's whole-process one.
        self.store = RocksStore(self.path, self._kafka.partition_store_options(self._settings.runtime))
        try:
            meta = orjson.loads(self.store.get(*_META) or b"null")
            if meta is not None and [meta["topic"], meta["partition"], meta["partitions"]] != [
                    self.topic, self.partition, self.partitions]:
                raise StateError(f"{self.path} holds {meta['topic']}[{meta['partition']}] of "
                                 f"{meta['partitions']} partitions: remove it to rebuild from the topic")
            self.position: int = meta["next"] if meta else 0
            self.unacked: list[Output] = [_decode_output(o) for o in meta["outbox"]] if meta else []
            self._handed = 0  # unacked[:_handed] were given to the worker to deliver
            self.engine = Engine(self.store, self._settings.rules, delivers=self._is_own_day)
        except BaseException:
            self.store.close()
            raise
        self.store.commit_hooks.append(self._checkpoint)

    def _checkpoint(self) -> None:
        outbox = [_encode_output(o) for o in self.unacked]
        meta = {"topic": self.topic, "partition": self.partition, "partitions": self.partitions,
                "next": self.position, "outbox": outbox}
        self.store.put(*_META, orjson.dumps(meta))

    def close(self) -> None:
        """Drop uncommitted work and release the store."""
        self.store.close()

    # -- work ------------------------------------------------------------------------------
    def resume(self, delivered: int | None) -> tuple[int, list[Output]]:
        """Plan after assignment, given the group's committed offset ``delivered``.

        Records below ``delivered`` had their outputs delivered by whoever owned the partition;
        they are applied silently. Returns the offset to fetch from and the outbox records to
        deliver again (only those at or after ``delivered``: older ones would arrive after newer
        alerts of another owner and undo them).
        """
        self.emit_from = delivered or 0
        self.unacked = [o for o in self.unacked if o.input_offset >= self.emit_from]
        self._handed = len(self.unacked)
        return self.position, list(self.unacked)

    def process(self, records: Sequence[Record]) -> list[Output]:
        """Apply records (in offset order) and return the outputs to deliver (in order)."""
        while True:
            try:
                self._apply(records)
                break
            except _Poison as poison:
                self._poison[poison.offset] = poison.reason
                self.store.close()  # drops the half-applied writes
                self._open()  # back to the last commit; its outbox is handed out again
                log.error("%s[%d] offset %d: %s; dead-lettered, redoing from offset %d",
                          self.topic, self.partition, poison.offset, poison.reason, self.position)
                if records and self.position < records[0].offset:
                    raise StateError(f"{self.path}: cannot redo {self.position}..{records[0].offset}") from None
        fresh = self.unacked[self._handed:]
        self._handed = len(self.unacked)
        return fresh

    def commit(self) -> None:
        """Outputs so far are acknowledged: write state, position and an empty outbox atomically."""
        self.unacked, self._handed = [], 0
        self.store.commit()

    def _apply(self, records: Sequence[Record]) -> None:
        for record in records:
            if record.offset < self.position:
                continue  # applied already (fetched again after a seek or a redo)
            outputs = self._one(record)
            self.progress.lines += 1
            if record.offset >= self.emit_from:
                self.unacked += outputs
                self.progress.records += len(outputs)
            else:
                self.progress.silent += 1
            self.position = record.offset + 1

    def _one(self, record: Record) -> list[Output]:
        poison = self._poison.get(record.offset)
        if poison is not None:
            return [self._dead(record, f"engine error: {poison}")]
        copy = dict(record.headers or ()).get(COPY_HEADER)
        event: Event | None = None
        try:
            if copy == COPY_INTEREST:
                return self._mark(record.offset, orjson.loads(record.value)["person_id"])
            event = self._intake.decode(record.value).event  # its warning: tracer publish reports it
            rider_before = self._rider_before(event) if self._spread and copy is None else None
            changes = self.engine.process(event, timed=copy is None and type(event) is Trip)
        except InvalidEvent as exc:
            return [self._dead(record, exc.reason)] if copy is None and self._reports(event) else []
        except Exception as exc:  # a bug met on this record: do not let it stop the partition
            raise _Poison(record.offset, f"{type(exc).__name__}: {exc}") from exc
        self.progress.events["copy" if copy else type(event).__name__.lower()] += 1
        outputs = self._alerts(record.offset, changes)
        if self._spread:
            outputs += self._spread_itineraries(record.offset, event, copy is not None, changes, rider_before)
        return outputs

    def _spread_itineraries(
        self, offset: int, event: Event, is_copy: bool, changes: list[Change], rider_before: str | None
    ) -> list[Output]:
        """Keep the itineraries of case persons and close contacts complete in every partition.

        A case marks its person here (cases reach every partition); a close contact found here is
        marked here and announced to the others; a ride of a marked person on this partition's
        days is copied to the others (connectors/kafka/routing.py says why), and so is a correction
        of a ride that was copied (``rider_before`` was marked), whoever rides it now: else the
        other partitions would keep the old copy.
        """
        outputs = []
        if not is_copy:
            if isinstance(event, Case):
                outputs += self._mark(offset, event.person_id)
            elif isinstance(event, Trip) and (self._marked(event.person_id) or self._marked(rider_before)):
                outputs += self._copies(offset, [event])
        for person in _close_contacts(changes):
            if not self._marked(person):
                outputs += self._mark(offset, person)
                value = interest_record(person)
                outputs += [Output(offset, self.topic, person.encode(), value, p, COPY_INTEREST)
                            for p in range(self.partitions) if p != self.partition]
        return outputs

    def _alerts(self, offset: int, changes: list[Change]) -> list[Output]:
        """Output records of the changes to alerts on this partition's days."""
        outputs = []
        for change in changes:
            alert = change.after or change.before
            assert alert is not None
            if partition_of_day(alert_day(alert), self.partitions) != self.partition:
                continue  # computed here for via windows only; its owner delivers it
            contact = alert["contact_person_id"]
            view = self._pseudonyms.alert if self._pseudonyms else None
            for destination, value in route(change, view):
                if destination == CONTACTS:
                    name = self._pseudonyms.person(contact) if self._pseudonyms else contact
                    outputs.append(Output(offset, self._kafka.contacts_topic, name.encode(), value))
                else:
                    outputs.append(Output(offset, self._kafka.queue_topic(destination), contact.encode(), value))
        return outputs

    def _reports(self, event: Event | None) -> bool:
        """Whether this partition writes the dead letter of a record the engine rejects, so that a
        record placed on every partition gets one, not one per partition. A trip reaches one
        partition. A published exposure is reported by the owner of its service day, the only
        partition whose verdict decides alerts (the others hold none of its riders); a case, person
        or quarantine by the partition of its key. (A record that does not parse has no known
        routing: each partition that holds it reports it.)"""
        if event is None or type(event) is Trip:
            return True
        if isinstance(event, Exposure):
            return self._is_own_day(service_day(event.date, event.mode, event.service))
        return partition_of(partitions_of(event, self.partitions)[0], self.partitions) == self.partition

    def _is_own_day(self, day: str) -> bool:
        """Whether this partition delivers the alerts of a service day (``date|mode|service``)."""
        return partition_of_day(day, self.partitions) == self.partition

    def _rider_before(self, event: Event) -> str | None:
        """Whose ride a trip event replaces (None: a new trip, or not a trip)."""
        if type(event) is not Trip:
            return None
        stored = self.store.get(group(TRIPS), event.trip_id)
        return decode_trip(stored).person_id if stored is not None else None

    def _marked(self, person: str | None) -> bool:
        return person is not None and self.store.get(_INTEREST, person) is not None

    def _mark(self, offset: int, person: str) -> list[Output]:
        """Make ``person`` interesting here: copy their rides on this partition's days to the others."""
        if self._marked(person):
            return []
        self.store.put(_INTEREST, person, b"")
        trips = []
        for suffix, _ in self.store.scan(group(ITINERARIES, person)):
            data = self.store.get(group(TRIPS), suffix.split(SEP, 1)[1])
            if data is not None:
                trips.append(decode_trip(data))
        return self._copies(offset, trips)

    def _copies(self, offset: int, trips: list[Trip]) -> list[Output]:
        outputs = []
        for trip in trips:
            if partition_of_day(trip.service_day, self.partitions) != self.partition:
                continue  # a copy received from its owner
            value, key = trip_record(trip, self._zone), trip.service_day.encode()
            outputs += [Output(offset, self.topic, key, value, p, COPY_TRIP)
                        for p in range(self.partitions) if p != self.partition]
        self.progress.copies += len(outputs)
        return outputs

    def _dead(self, record: Record, reason: str) -> Output:
        self.progress.dead_letters += 1
        source = f"{self.topic}/{self.partition}"
        value = dead_letter(source, record.offset + 1, record.value, reason, offset=record.offset)
        return Output(record.offset, self._kafka.dead_letter_topic, source.encode(), value)


def _close_contacts(changes: list[Change]) -> set[str]:
    """Persons who are (or were) close contacts of a case in these changes: potential via persons."""
    found = set()
    for change in changes:
        for alert in (change.before, change.after):
            if is_case_close(alert):
                found.add(alert["contact_person_id"])
    return found


def _encode_output(output: Output) -> list[object]:
    copy = None if output.copy is None else output.copy.decode()
    return [output.input_offset, output.topic, output.key.decode(), output.value.decode(), output.partition, copy]


def _decode_output(row: list) -> Output:
    source, topic, key, value, partition, copy = row
    return Output(source, topic, key.encode(), value.encode(), partition, None if copy is None else copy.encode())
