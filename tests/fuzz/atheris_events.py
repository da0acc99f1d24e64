"""Coverage-guided fuzzing of the parser and the engine together with atheris (libFuzzer).

    pip install atheris
    python -m tests.fuzz.atheris_events -atheris_runs=200000      # or -max_total_time=600

Seeded with real event shapes (written to a temporary corpus folder); each input is one line, fed
to a long-lived engine on an in-memory
store, so state built by earlier inputs meets later ones. Anything but success or ``InvalidEvent``
(a dead letter) is a crash, which atheris reports with the input that caused it. Not part of the
test suite (hypothesis covers that, tests/test_fuzz.py); run it when the parser or engine changes.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import atheris

from graph.store import MemoryStore
from tracer.engine import Engine
from tracer.errors import InvalidEvent
from tracer.events import parse_line
from tracer.settings import RuleSettings

ENGINE = Engine(MemoryStore(), RuleSettings())
SEEDS = [
    b'{"type":"trip","person_id":"P1","mode":"flight","service":"MU5101","date":"2020-01-20",'
    b'"board_time":"2020-01-20T08:00:00+08:00","alight_time":"2020-01-20T10:00:00+08:00","seat":"32C"}',
    b'{"type":"trip","person_id":"P2","mode":"train","service":"G7","date":"2020-01-20","carriage":"5",'
    b'"berth":"soft_sleeper","compartment":"3","sealed":false,"board_time":"2020-01-20T08:00:00+08:00",'
    b'"alight_time":"2020-01-20T10:00:00+08:00"}',
    b'{"type":"case","case_id":"C1","person_id":"P1","status":"confirmed","onset":"2020-01-21",'
    b'"isolated_at":null,"reported_at":"2020-01-22T12:00:00+08:00"}',
    b'{"type":"person","person_id":"P2","subdistrict":"310101002"}',
    b'{"type":"quarantine","person_id":"P2","at":"2020-01-21T08:00:00+08:00"}',
    b'{"type":"exposure","exposure_id":"X1","mode":"train","service":"G7","date":"2020-01-20","carriages":["5"]}',
]


def one_input(data: bytes) -> None:
    with contextlib.suppress(InvalidEvent):  # a dead letter: fine; anything else is a finding
        ENGINE.process(parse_line(data, 72 * 3_600_000_000))


def main() -> None:
    corpus = Path(tempfile.mkdtemp(prefix="tracer-fuzz-"))
    for number, seed in enumerate(SEEDS):
        (corpus / f"seed-{number}").write_bytes(seed)
    atheris.instrument_all()  # coverage of tracer's own code (and of what it calls)
    atheris.Setup([*sys.argv, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
