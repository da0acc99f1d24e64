"""What a run has done so far: one record for every runner, and one printer.

``tracer run`` (streams/embedded.py), ``tracer publish`` (connectors/kafka/publish.py) and each Kafka
partition (streams/kafka/partition.py) count into a ``Progress``, so a count means the same thing
whoever made it; ``report`` prints one for a person. (The worker's ``Stats`` are not progress but
its own latency measurement, kept beside it in streams/kafka/worker.py.)
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Progress:
    lines: int = 0  # input lines (or records) read
    events: Counter[str] = field(default_factory=Counter)  # accepted, by type; a partition: "copy" too
    alerts: Counter[str] = field(default_factory=Counter)  # alert changes by level, and "retract"
    statuses: Counter[str] = field(default_factory=Counter)  # health status changes by new colour
    dead_letters: int = 0  # lines rejected, each in the dead letters with its reason
    warnings: int = 0  # lines applied, and reported in the dead letters with a warning
    records: int = 0  # records written onward: published (publish), outputs (a Kafka partition)
    copies: int = 0  # a Kafka partition: ride copies sent to the other partitions
    silent: int = 0  # a Kafka partition: records applied again after a restart, their outputs already sent
    seconds: float = 0.0
    state_memory_mb: float = 0.0  # RocksDB's own accounting, as of the last progress call
    held_back: tuple[str, int] | None = None  # the last input's unterminated last line: (input, bytes)

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


def report(progress: Progress, outputs: dict[str, str], stream: TextIO | None = None) -> None:
    """Print ``progress`` as aligned lines; ``outputs`` names where each kind of output went
    (``records``, ``dead letters``, ``outputs``), for the lines that have one."""
    stream = stream or sys.stdout
    events = ", ".join(f"{n} {kind}" for kind, n in sorted(progress.events.items())) or "none"
    rows = [
        ("lines read", f"{progress.lines:,} ({progress.lines_per_second:,.0f}/s in {progress.seconds:.2f} s)"),
        ("events", events),
    ]
    if progress.alerts or "records" not in outputs:
        rows.append(("alert changes", ", ".join(f"{n} {level}" for level, n in sorted(progress.alerts.items()))
                     or "none"))
    if progress.statuses:
        rows.append(("status changes", ", ".join(f"{n} {color}" for color, n in sorted(progress.statuses.items()))))
    if "records" in outputs:
        rows.append(("records", f"{progress.records:,} to {outputs['records']}"))
    where = f" to {outputs['dead letters']}" if "dead letters" in outputs else ""
    rows.append(("dead letters", f"{progress.dead_letters:,}{where}"))
    rows.append(("warnings", f"{progress.warnings:,}{where} (applied; in the dead letters with their reason)"))
    if progress.held_back:
        name, size = progress.held_back
        rows.append(("held back", f"the last {size:,} bytes of {name}: a line without its newline yet"))
    if "outputs" in outputs:
        rows.append(("outputs", outputs["outputs"]))
    for name, text in rows:
        print(f"{name:<14} {text}", file=stream)
