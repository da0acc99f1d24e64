"""One partition of the events topic: its own RocksDB store, engine, input position and outbox.

No Kafka client here (so it is tested without a broker); the worker feeds it records and sends
what its outbox holds. The contract with the worker:

* ``process(records)`` applies records in offset order and adds to the *outbox* the output records
  of those at or after ``emit_from`` (earlier ones are being *rebuilt*: their outputs were
  delivered before). Outputs are alert changes of the days this partition owns, dead letters, and
  the copies of interesting persons' rides for the other partitions (connectors/kafka/routing.py).
* Records go to the engine in runs (``Engine.apply``): consecutive published records as one
  batch, consecutive ride copies as another; interest notes, records that do not decode and
  poison records are handled alone, between runs. A run never spans ``emit_from``, so a
  record's outputs are delivered or rebuilt with it.
* ``move(persons)`` and ``refresh()``: the worker's registry (streams/kafka/registry.py) is shared
  by all its partitions; when it reads a person, each partition moves that person's live alerts
  to the new home, and a store opened again moves all of its alerts to the homes read meanwhile.
* Commit, then send (streams/kafka/outbox.py): ``commit()`` writes the engine state, the input
  position, the outbox and the group offset known to the worker in one RocksDB write batch (so
  does every commit of the store: mid-batch, retention commits too); the worker sends the outbox
  only then, calls ``delivered()``, and commits the group offset. (A retention purge starts a new
  engine batch, so the position a purge commits is exactly after the records applied before it.)
* ``resume(delivered)`` after an assignment: a restart on this store sends its outbox again and
  continues at its position. Where another worker may have sent outputs past the group offset
  (its last batch, sent but not yet marked delivered when it died), the records from there are
  applied one at a time for a fetch's length, so every change of every alert follows whatever it
  sent, from coarser or finer runs.
* Event time (docs/rules.md): a partition's is that of the trips it owns. Worker-made copies are
  applied with ``timed=False``, so every partition applies them alike whatever its own event
  time; a record placed on every partition and rejected by the engine is dead-lettered by one
  partition (``_reports``).
* A record the engine fails on with an unexpected exception (a poison message) is a dead letter:
  the uncommitted state is dropped, the records since the last commit are applied again, the run
  that failed one at a time, and the poison one is skipped. The engine being deterministic, the
  same happens on every replay.
* A person in the events topic (the layout before the registry topic) is refused: a dead letter,
  written by one partition, that says where persons go now.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

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
from graph.keys import CONTACT_ALERTS, HOMES, INTEREST, ITINERARIES, KAFKA_POSITION, META, TRIPS, group, service_day
from graph.store import SEP, RocksStore, Store
from streams.kafka.outbox import Output, outputs, rows
from tracer.alerts import CONTACTS, Change, alert_day, is_case_close, record_of, route
from tracer.engine import Engine
from tracer.errors import InvalidEvent, StateError
from tracer.events import Case, Event, Exposure, Followup, Person, Trip, decode_trip
from tracer.intake import Intake
from tracer.privacy import Pseudonymizer
from tracer.progress import Progress
from tracer.settings import Settings

log = logging.getLogger(__name__)
_META = (group(META), KAFKA_POSITION)
_INTEREST = group(INTEREST)  # persons whose rides this partition copies to the others
_CONTACT_ALERTS, _HOMES = group(CONTACT_ALERTS), group(HOMES)
_KINDS = {kind: kind.__name__.lower() for kind in (Trip, Case, Exposure, Followup)}
_PERSON_REFUSED = ("a person in the events topic (the layout before the registry topic): persons go to "
                   "the registry topic {}, where tracer publish puts them; publish the registry again")


class Record(Protocol):
    """What the partition needs of a consumer record (aiokafka's ``ConsumerRecord`` fits)."""

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class _Redo(Exception):
    """The engine failed on a run of records: redo from the last commit, skipping the poison record
    (``reason`` set) or applying the run's records one at a time to find it (``reason`` None)."""

    def __init__(self, offset: int, reason: str | None) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


class PartitionTask:
    """State and progress of one input partition on this worker. ``registry`` is the worker's
    registry store (streams/kafka/registry.py), shared by all its partitions."""

    def __init__(self, state_dir: Path, topic: str, partition: int, partitions: int, settings: Settings,
                 kafka: KafkaSettings, registry: Store, pseudonyms: Pseudonymizer | None = None) -> None:
        self.topic, self.partition, self.partitions = topic, partition, partitions
        self.registry = registry
        self._pseudonyms = pseudonyms
        self.path = state_dir / f"{topic}-{partition}"
        self._settings, self._kafka = settings, kafka
        self._zone = settings.rules.zone
        self._spread = settings.rules.trace_secondary  # without secondary contacts, no itineraries to copy
        self._intake = Intake(settings)
        self.emit_from = 0
        self.progress = Progress()  # lines: records applied; records: outputs sent on; silent: replayed
        self._poison: dict[int, str] = {}
        self._one_by_one = -1  # records up to this offset are applied alone (a poison record is among them)
        self._fine_until = 0  # so are those from emit_from up to here: another owner may have sent theirs
        self._sent = False  # the outbox of the store's last commit has been delivered
        state_dir.mkdir(parents=True, exist_ok=True)
        meta = self._open()
        self.group_offset: int = meta.get("delivered", 0) if meta else 0  # as the worker knew it at the commit

    # -- lifecycle -------------------------------------------------------------------------
    def _open(self) -> dict[str, Any] | None:
        """Open the store at its last commit; returns its meta record.

        One store per partition, several per worker: each gets the [kafka] partition budget
        (block cache + two memtables), not the embedded runner's whole-process one."""
        self.store = RocksStore(self.path, self._kafka.partition_store_options(self._settings.runtime))
        try:
            meta = orjson.loads(self.store.get(*_META) or b"null")
            if meta is not None and [meta["topic"], meta["partition"], meta["partitions"]] != [
                    self.topic, self.partition, self.partitions]:
                raise StateError(f"{self.path} holds {meta['topic']}[{meta['partition']}] of "
                                 f"{meta['partitions']} partitions: remove it to rebuild from the topic")
            self.position: int = meta["next"] if meta else 0
            self.outbox = outputs(meta["outbox"]) if meta and not self._sent else []
            self._interesting = {person for person, _ in self.store.scan(_INTEREST)}  # read on every ride
            self.engine = Engine(self.store, self._settings.rules, delivers=self._is_own_day, registry=self.registry)
        except BaseException:
            self.store.close()
            raise
        self.store.commit_hooks.append(self._checkpoint)
        return meta  # type: ignore[no-any-return]

    def _checkpoint(self) -> None:
        meta = {"topic": self.topic, "partition": self.partition, "partitions": self.partitions,
                "next": self.position, "outbox": rows(self.outbox), "delivered": self.group_offset}
        self.store.put(*_META, orjson.dumps(meta))
        self._sent = False

    def close(self) -> None:
        """Drop uncommitted work and release the store."""
        self.store.close()

    # -- work ------------------------------------------------------------------------------
    def resume(self, delivered: int | None) -> int:
        """Plan after assignment, given the group's committed offset ``delivered``; returns the
        offset to fetch from.

        Records below ``delivered`` had their outputs delivered by whoever owned the partition;
        they are applied silently. The outbox is sent again if the group offset is still the one
        this store's last commit knew. Else whoever moved it has sent the outbox's equivalent, and
        a store ahead of ``delivered`` (committed, not marked delivered, and then another worker
        went on from ``delivered``) is dropped and rebuilt: its state cannot go back to where the
        other one went on from. From ``delivered`` on, the records the last owner may have sent
        outputs for (one fetched batch) are applied one at a time, unless this store is past them.
        """
        delivered = delivered or 0
        if delivered != self.group_offset:
            self.outbox = []
            if self.position > delivered:
                log.warning("%s[%d]: the store is at %d, another worker went on from %d: rebuilding it",
                            self.topic, self.partition, self.position, delivered)
                self.store.close()
                shutil.rmtree(self.path)
                self._open()
        self.emit_from = self.group_offset = delivered
        self._fine_until = delivered + self._kafka.batch_max_records if self.position <= delivered else 0
        return self.position

    def process(self, records: Sequence[Record]) -> list[Output]:
        """Apply records (in offset order); returns the outputs they add to the outbox."""
        kept = len(self.outbox)  # after a redo the outbox starts the same (``_sent``)
        while True:
            try:
                self._apply([record for record in records if record.offset >= self.position])
                break
            except _Redo as redo:
                if redo.reason is not None:
                    self._poison[redo.offset] = redo.reason
                self.store.close()  # drops the half-applied writes
                self._open()  # back to the last commit, and its outbox unless delivered
                what = f"{redo.reason}; dead-lettered" if redo.reason else "engine error in a run; one by one"
                log.error("%s[%d] offset %d: %s, redoing from offset %d",
                          self.topic, self.partition, redo.offset, what, self.position)
                if records and self.position < records[0].offset:
                    raise StateError(f"{self.path}: cannot redo {self.position}..{records[0].offset}") from None
        return self.outbox[kept:]

    def move(self, persons: list[Person]) -> list[Output]:
        """Registry records the worker read: move the live alerts of these persons to the home each
        names (the registry store has it already); returns the outputs added to the outbox. Silent
        while the partition is being rebuilt."""
        kept = len(self.outbox)
        self._keep(self.position, 0, self._alerts(self.engine.apply(persons).changes))
        return self.outbox[kept:]

    def refresh(self) -> list[Output]:
        """Move every live alert of this partition to its contact's home in the registry store: a
        store opened again has missed the registry records read while it was closed."""
        alerted = sorted({suffix.split(SEP, 1)[0] for suffix, _ in self.store.scan(_CONTACT_ALERTS)})
        homes = self.registry.get_many(_HOMES, alerted)
        return self.move([Person(person, (homes[person] or b"").decode() or None) for person in alerted])

    def commit(self) -> None:
        """State, position and outbox so far, in one write batch: the outbox may be sent now."""
        self.store.commit()

    def delivered(self) -> None:
        """The outbox is acknowledged; the next commit writes it empty."""
        self.outbox, self._sent = [], True

    def _keep(self, offset: int, count: int, outputs: list[Output]) -> None:
        """``count`` records up to ``offset`` are applied: keep their outputs, unless they are rebuilt."""
        self.progress.lines += count
        if offset >= self.emit_from:
            self.outbox += outputs
            self.progress.records += len(outputs)
        else:
            self.progress.silent += count

    def _apply(self, records: Sequence[Record]) -> None:
        """Apply records in runs: consecutive published records (or consecutive ride copies) go to
        the engine as one batch; interest notes, poison records and records that do not decode are
        handled alone, between runs. A run also ends where outputs start (``emit_from``), and is
        one record long up to ``_one_by_one`` and from ``emit_from`` up to ``_fine_until``."""
        run: list[tuple[Record, Event]] = []
        kind: bytes | None = None  # the copy header of the run's records
        for record in records:
            copy = _copy_header(record)
            event = None if record.offset in self._poison or copy == COPY_INTEREST else self._decode(record)
            last = run[-1][0].offset if run else -1
            alone = last <= self._one_by_one or (self.emit_from <= record.offset and last < self._fine_until)
            if run and (event is None or copy != kind or run[0][0].offset < self.emit_from <= record.offset or alone):
                self._run(run, kind)
                run = []
            if event is None:
                self._keep(record.offset, 1, self._alone(record, copy))
                self.position = record.offset + 1
            else:
                run.append((record, event))
                kind = copy
        if run:
            self._run(run, kind)

    def _decode(self, record: Record) -> Event | None:
        """The event of a record to apply in a run, or None (then ``_alone`` handles it)."""
        try:
            event = self._intake.decode(record.value).event  # its warning: tracer publish reports it
        except InvalidEvent:
            return None
        return None if type(event) is Person else event

    def _alone(self, record: Record, copy: bytes | None) -> list[Output]:
        """The outputs of a record applied outside a run."""
        poison = self._poison.get(record.offset)
        if poison is not None:
            return [self._dead(record, f"engine error: {poison}")]
        if copy == COPY_INTEREST:
            try:
                return self._mark(orjson.loads(record.value)["person_id"])
            except Exception as exc:  # a bug met on this record: do not let it stop the partition
                raise _Redo(record.offset, f"{type(exc).__name__}: {exc}") from exc
        if copy is not None:
            return []  # a copy that does not decode: its owner reported the original
        try:
            event = self._intake.decode(record.value).event
        except InvalidEvent as exc:
            return [self._dead(record, exc.reason)]
        assert type(event) is Person
        return [self._dead(record, _PERSON_REFUSED.format(self._kafka.registry_topic))] if self._reports(event) else []

    def _run(self, run: list[tuple[Record, Event]], copy: bytes | None) -> None:
        """Apply a run of records as engine batches (a retention purge starts a new one)."""
        while run:
            events = [event for _, event in run]
            before = self._riders_before(events) if self._spread and copy is None else []
            try:
                applied = self.engine.apply(events, timed=copy is None)
            except Exception as exc:  # a bug met in this run: do not let it stop the partition
                last = run[-1][0].offset
                if len(run) == 1:
                    raise _Redo(last, f"{type(exc).__name__}: {exc}") from exc
                self._one_by_one = max(self._one_by_one, last)
                raise _Redo(last, None) from exc
            done, run = run[:applied.consumed], run[applied.consumed:]
            offset = done[-1][0].offset
            outputs = [self._dead(done[i][0], reason) for i, reason in sorted(applied.refused.items())
                       if copy is None and self._reports(done[i][1])]
            kept = list(zip([event for _, event in done], before or [None] * len(done), strict=False))
            if applied.refused:
                kept = [pair for i, pair in enumerate(kept) if i not in applied.refused]
            if copy:
                self.progress.events["copy"] += len(kept)
            else:
                self.progress.events.update(_KINDS[type(event)] for event, _ in kept)
            outputs += self._alerts(applied.changes)
            if self._spread:
                outputs += self._spread_itineraries(kept, copy is not None, applied.changes)
            self._keep(offset, len(done), outputs)
            self.position = offset + 1

    def _spread_itineraries(
        self, events: list[tuple[Event, str | None]], is_copy: bool, changes: list[Change]
    ) -> list[Output]:
        """Keep the itineraries of case persons and close contacts complete in every partition.

        A case marks its person here (cases reach every partition); a close contact found here is
        marked here and announced to the others; a ride of a marked person on this partition's
        days is copied to the others (connectors/kafka/routing.py says why), and so is a correction
        of a ride that was copied (its rider before was marked), whoever rides it now: else the
        other partitions would keep the old version. ``events`` are a run's applied events with
        the rider each trip replaced; the rides to copy are chosen before this run marks anyone,
        since marking copies the person's stored rides, this run's included.
        """
        outputs = []
        if not is_copy:
            copies = [event for event, before in events if type(event) is Trip
                      and (self._marked(event.person_id) or self._marked(before))]
            outputs += self._copies(copies)  # type: ignore[arg-type]
            for event, _ in events:
                if isinstance(event, Case):
                    outputs += self._mark(event.person_id)
        for person in sorted(_close_contacts(changes)):
            if not self._marked(person):
                outputs += self._mark(person)
                value = interest_record(person)
                outputs += [Output(self.topic, person.encode(), value, p, COPY_INTEREST)
                            for p in range(self.partitions) if p != self.partition]
        return outputs

    def _alerts(self, changes: list[Change]) -> list[Output]:
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
                    outputs.append(Output(self._kafka.contacts_topic, name.encode(), value))
                    if self._pseudonyms:  # the views need real ids (streams/kafka/views.py)
                        real = orjson.dumps(record_of(change))
                        outputs.append(Output(self._kafka.private_contacts_topic, contact.encode(), real))
                else:
                    outputs.append(Output(self._kafka.queue_topic(destination), contact.encode(), value))
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

    def _riders_before(self, events: list[Event]) -> list[str | None]:
        """Whose ride each trip of a run replaces, as if the run were applied one event at a time
        (None: a new trip, or not a trip)."""
        trips = {event.trip_id for event in events if type(event) is Trip}  # type: ignore[union-attr]
        riders = {trip_id: decode_trip(data).person_id
                  for trip_id, data in self.store.get_many(group(TRIPS), trips).items() if data is not None}
        before: list[str | None] = []
        for event in events:
            if type(event) is Trip:
                before.append(riders.get(event.trip_id))
                riders[event.trip_id] = event.person_id
            else:
                before.append(None)
        return before

    def _marked(self, person: str | None) -> bool:
        return person in self._interesting

    def _mark(self, person: str) -> list[Output]:
        """Make ``person`` interesting here: copy their rides on this partition's days to the others."""
        if self._marked(person):
            return []
        self.store.put(_INTEREST, person, b"")
        self._interesting.add(person)
        trips = []
        for suffix, _ in self.store.scan(group(ITINERARIES, person)):
            data = self.store.get(group(TRIPS), suffix.split(SEP, 1)[1])
            if data is not None:
                trips.append(decode_trip(data))
        return self._copies(trips)

    def _copies(self, trips: list[Trip]) -> list[Output]:
        outputs = []
        for trip in trips:
            if partition_of_day(trip.service_day, self.partitions) != self.partition:
                continue  # a copy received from its owner
            value, key = trip_record(trip, self._zone), trip.service_day.encode()
            outputs += [Output(self.topic, key, value, p, COPY_TRIP)
                        for p in range(self.partitions) if p != self.partition]
        self.progress.copies += len(outputs)
        return outputs

    def _dead(self, record: Record, reason: str) -> Output:
        self.progress.dead_letters += 1
        source = f"{self.topic}/{self.partition}"
        value = dead_letter(source, record.offset + 1, record.value, reason, offset=record.offset)
        return Output(self._kafka.dead_letter_topic, source.encode(), value)


def _copy_header(record: Record) -> bytes | None:
    for name, value in record.headers or ():
        if name == COPY_HEADER:
            return value
    return None


def _close_contacts(changes: list[Change]) -> set[str]:
    """Persons who are (or were) close contacts of a case in these changes: potential via persons."""
    found = set()
    for change in changes:
        for alert in (change.before, change.after):
            if is_case_close(alert):
                found.add(alert["contact_person_id"])
    return found
