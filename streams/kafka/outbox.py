"""The outbox: what a Kafka process sends is committed first, with the store's state that made it,
and sent only after that commit (docs/kafka.md, "Crash safety"). One concept for the worker's
partitions (streams/kafka/partition.py) and the view process (streams/kafka/views.py): a task keeps
``outbox`` (a list of ``Output``), its store's commit hook writes ``rows(outbox)`` in the same
write batch as the state and input positions, opening reads it back (``outputs``), and the process
calls ``send`` after each commit; the next commit writes the outbox empty.

Why commit first: a step's change stream is coarser than its events' (docs/architecture.md,
"Batches"). Sent before the commit, a step that adds an alert sends the add; if the process dies
before the commit, the restart fetches that step's records again, maybe together with a later
one that retracts the alert, as one step that changes nothing and sends nothing: the add stays the
alert's last record. Committed first, every record sent comes from a committed state, and the
restart continues from that state instead of applying the records again. A crash mid-send sends
some records twice, whole and identical: the alert, queue and status topics are changelogs keyed
by alert id or person and fold them away, a ride copy or interest note applied twice changes
nothing, and a dead letter names its source offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

from aiokafka import AIOKafkaProducer

from connectors.kafka.routing import COPY_HEADER
from connectors.kafka.topics import Topics
from streams.kafka.clients import deliver


class Output(NamedTuple):
    """A record to send. ``partition`` is set for the worker's records to the events topic (else
    the key decides); ``copy`` is the ``tracer-copy`` header of those records."""

    topic: str
    key: bytes
    value: bytes
    partition: int | None = None
    copy: bytes | None = None

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return [] if self.copy is None else [(COPY_HEADER, self.copy)]


class Sender(Protocol):
    """A task with an outbox its store has committed (``PartitionTask``, ``ViewTask``)."""

    outbox: list[Output]

    def delivered(self) -> None:
        """The outbox is acknowledged: empty it (the next commit writes it empty)."""


def rows(outbox: Iterable[Output]) -> list[list[object]]:
    """The outbox as JSON for the store's meta record. A value met before is written as the index
    of its first row: an alert change goes to the contacts topic and its street office's queue
    alike, a ride copy to every other partition (half the bytes of an outbreak's outbox)."""
    first: dict[bytes, int] = {}
    found: list[list[object]] = []
    for index, o in enumerate(outbox):
        at = first.setdefault(o.value, index)
        found.append([o.topic, o.key.decode(), o.value.decode() if at == index else at, o.partition,
                      None if o.copy is None else o.copy.decode()])
    return found


def outputs(stored: Iterable[list]) -> list[Output]:
    """The outbox read back from ``rows``."""
    found: list[Output] = []
    for *_, topic, key, value, partition, copy in stored:  # a partition's rows once began with an input offset
        found.append(Output(topic, key.encode(), found[value].value if isinstance(value, int) else value.encode(),
                            partition, None if copy is None else copy.encode()))
    return found


async def send(producer: AIOKafkaProducer, topics: Topics, tasks: Sequence[Sender]) -> int:
    """Send the committed outboxes of ``tasks`` (acknowledged by every in-sync replica), then empty
    them; returns how many records they held."""
    outbox = [output for task in tasks for output in task.outbox]
    await deliver(producer, topics, outbox)
    for task in tasks:
        task.delivered()
    return len(outbox)
