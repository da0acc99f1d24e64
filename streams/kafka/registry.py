"""The registry as a global table: each worker reads the whole registry topic into one store that
all its partitions share (Kafka Streams' global tables), instead of every events partition holding
a copy of every person.

No Kafka client here (tested without a broker, as ``PartitionTask``); the worker feeds it records.
The contract with the worker:

* ``apply(partition, records, tasks)`` writes the homes of registry records (in offset order) into
  the store, hands them to every task as person events, so that the live alerts of a person who
  moved move with them (``PartitionTask.move``), and returns the outputs the tasks add to their outboxes.
* The worker commits the tasks (their outboxes with them), then ``commit()``: the homes and the
  position in each registry partition go into one RocksDB write batch; then it sends the outboxes.
  A crash before the table's commit re-reads the records, whose moves are then no-ops; a restarted
  worker continues from its position.
* Alerts always name their contact's current home (each recompute reads it here, each move writes
  it), so the final alerts do not depend on how registry and events records interleave.

A record that is not a valid person keyed by its id (another producer's) is logged and skipped:
every worker reads every registry record, so no one of them owns its dead letter. A tombstone
(a key without a value, as compaction keeps for a while) removes the person: no known home.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import orjson

from connectors.kafka.settings import KafkaSettings
from graph.keys import HOMES, KAFKA_POSITION, META, group
from graph.store import RocksStore
from tracer.errors import InvalidEvent, StateError
from tracer.events import Person
from tracer.intake import Intake
from tracer.progress import Progress
from tracer.settings import Settings

if TYPE_CHECKING:
    from streams.kafka.outbox import Output
    from streams.kafka.partition import PartitionTask

log = logging.getLogger(__name__)
_META = (group(META), KAFKA_POSITION)
_HOMES = group(HOMES)


class RegistryRecord(Protocol):
    """What the table needs of a registry record (aiokafka's ``ConsumerRecord`` fits)."""

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


class RegistryTable:
    """The homes of every person, and how far each registry partition has been read."""

    def __init__(self, state_dir: Path, partitions: int, settings: Settings, kafka: KafkaSettings) -> None:
        self.topic, self.partitions = kafka.registry_topic, partitions
        self.path = state_dir / self.topic
        self._intake = Intake(settings)
        self.progress = Progress()  # lines: records read; events: persons; dead_letters: skipped
        state_dir.mkdir(parents=True, exist_ok=True)
        self.store = RocksStore(self.path, kafka.partition_store_options(settings.runtime))
        try:
            meta = orjson.loads(self.store.get(*_META) or b"null")
            if meta is not None and [meta["topic"], meta["partitions"]] != [self.topic, partitions]:
                raise StateError(f"{self.path} holds {meta['topic']} of {meta['partitions']} partitions, not "
                                 f"{self.topic} of {partitions}: remove it to read the registry again")
        except BaseException:
            self.store.close()
            raise
        self.positions: dict[int, int] = {int(p): n for p, n in meta["next"].items()} if meta else {}
        self.store.commit_hooks.append(self._checkpoint)

    def _checkpoint(self) -> None:
        meta = {"topic": self.topic, "partitions": self.partitions,
                "next": {str(p): n for p, n in sorted(self.positions.items())}}
        self.store.put(*_META, orjson.dumps(meta))

    def position(self, partition: int) -> int:
        """The next offset to read in a registry partition."""
        return self.positions.get(partition, 0)

    def apply(self, partition: int, records: Sequence[RegistryRecord],
              tasks: Iterable[PartitionTask] = ()) -> list[Output]:
        """Write the homes of ``records`` and move the alerts of those persons in every task;
        returns the outputs the tasks add to their outboxes."""
        persons = []
        position = self.position(partition)
        for record in records:
            if record.offset < position:
                continue  # read already (fetched again after a seek)
            person = self._person(partition, record)
            if person is not None:
                persons.append(person)
                # b"": registered with no known home (the engine's own convention); None: removed
                home = person.subdistrict.encode() if person.subdistrict else (b"" if record.value else None)
                self.store.put(_HOMES, person.person_id, home)
            position = record.offset + 1
            self.progress.lines += 1
        self.positions[partition] = position
        self.progress.events["person"] += len(persons)
        return [output for task in tasks for output in task.move(persons)] if persons else []

    def _person(self, partition: int, record: RegistryRecord) -> Person | None:
        key = (record.key or b"").decode("utf-8", errors="replace")
        try:
            if record.value is None:
                if not key:
                    raise InvalidEvent("a tombstone without a key")
                return Person(key, None)
            event = self._intake.decode(record.value).event  # its warning: tracer publish reports it
            if type(event) is not Person:
                raise InvalidEvent(f"a {type(event).__name__.lower()} record, not a person")
            if event.person_id != key:
                raise InvalidEvent(f"key {key!r} is not the person id: compaction would keep the wrong record")
            return event
        except InvalidEvent as exc:
            self.progress.dead_letters += 1
            log.warning("%s[%d] offset %d skipped: %s", self.topic, partition, record.offset, exc.reason)
            return None

    def commit(self) -> None:
        """Homes and positions so far, in one write batch."""
        self.store.commit()

    def close(self) -> None:
        """Drop uncommitted work and release the store."""
        self.store.close()
