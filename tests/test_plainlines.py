"""The fast lane for plain lines (tracer/plainlines.py) only ever accepts what the full parser accepts,
as the same event; every other line goes the full way, so a run's outputs do not depend on it."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.embedded import run_embedded
from tests.builders import person, trip
from tracer.errors import InvalidEvent
from tracer.events import parse_line
from tracer.intake import Intake
from tracer.plainlines import plain_events
from tracer.settings import Settings
from tracer.simulate import generate

MAX_RIDE = 72 * 3_600_000_000
CODES = frozenset({"310101002", "310115131"})
FIELDS = ("type", "trip_id", "person_id", "mode", "service", "date", "board_time", "alight_time", "carriage",
          "seat", "berth", "compartment", "sealed", "role", "crew_rows", "board_station", "alight_station",
          "subdistrict", "other")
# Values a hostile or sloppy feed puts where a plain line has its own: each kind of JSON value, the
# edges of the checks (lengths, blanks, integer sizes), escapes and text that is not ASCII.
SPECIAL: list[Any] = [
    None, True, False, 0, -1, 6, 1.5, 2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, [], [1], {}, {"a": 1e300},
    "", " ", "6", "  6 ", "x" * 128, "x" * 129, "h:abc", "a\x7fb", "é", "a\\b", "a\u00e9", "metro", "train", "flight",
    "bus", "seat", "hard_sleeper", "crew", "passenger", "2020-01-20", "2020-02-30", "310101002", "310101999",
    "25-40", "2020-01-20T08:00:00+08:00", "2020-01-20T10:00:00+08:00", "2020-01-25T10:00:00+08:00",
    "2020-01-20T08:00:00", "mu 5101", "MU5101", "g7", "G7", "2020/1/20", "2020-1-20",
]
ODD = st.one_of(st.sampled_from(SPECIAL), st.text(max_size=8), st.integers(), st.floats(allow_nan=False))
BASES = [
    trip("P1", carriage=3, board_station="A", alight_station="B"),
    trip("P2", trip_id="T9", seat="32C", mode="flight", service="MU5101"),
    trip("P3", trip_id="T10", mode="train", carriage=5, seat="12", berth="soft_sleeper", compartment=2, sealed=False),
    person("P4", "310101002"),
    person("P5", "310101999"),
]


def _lane_and_parser(raw: bytes) -> tuple[Any, Any]:
    """What the lane and ``parse_line`` make of a line (None: the lane passes it on, the parser refuses it)."""
    try:
        full = parse_line(raw, MAX_RIDE)  # first: it fills the caches the lane reads
    except InvalidEvent:
        full = None
    return plain_events([raw], MAX_RIDE, CODES)[0], full


def test_every_odd_value_in_every_field():
    """Each value of SPECIAL in each field of each base line, and each field left out."""
    accepted = 0
    for base in BASES:
        for name in FIELDS:
            for value in [*SPECIAL, ...]:
                event = {k: v for k, v in base.items() if k != name or value is not ...}
                if value is not ...:
                    event[name] = value
                fast, full = _lane_and_parser(_json(event))
                assert fast is None or fast == full, event
                accepted += fast is not None
    assert accepted > 500


def _json(event: dict[str, Any]) -> bytes:
    """A line as a feed writes it; the standard library's encoder, as orjson refuses integers beyond 64 bits."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def _text_mutations(raw: bytes, rnd: random.Random) -> bytes:
    """Damage at the byte level: cut, a byte in, a duplicated key, spaces."""
    choice = rnd.randrange(5)
    at = rnd.randrange(len(raw) + 1)
    if choice == 0:
        return raw[:at]
    if choice == 1:
        return raw[:at] + bytes([rnd.randrange(256)]) + raw[at:]
    if choice == 2:
        return raw[:-1] + b',"mode":"bus"}'
    if choice == 3:
        return b" " + raw + b"\t"
    return raw + b"x"


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(BASES), st.lists(st.tuples(st.sampled_from(FIELDS), st.one_of(ODD, st.just(...))),
                                        max_size=3), st.integers(0, 2**32), st.booleans())
def test_the_lane_accepts_only_what_the_full_parser_gives_alike(base, changes, seed, damaged):
    """Each line the lane accepts, ``parse_line`` accepts too, as an equal event (``...``: the field
    is left out). The caches of times and dates are warm, as they are after a run's first lines."""
    event = dict(base)
    for name, value in changes:
        if value is ...:
            event.pop(name, None)
        else:
            event[name] = value
    raw = _json(event)
    if damaged:
        raw = _text_mutations(raw, random.Random(seed))
    fast, full = _lane_and_parser(raw)
    assert fast is None or fast == full


def _decoded(intake: Intake, data: bytes) -> tuple[Any, str | None]:
    try:
        return intake.decode(data)
    except InvalidEvent as exc:
        return None, exc.reason


def test_decode_many_is_decode_line_by_line(tmp_path):
    """Over a generated city with its malformed lines and hostile variants of its lines, in batches."""
    lines = _messy_city(tmp_path).read_bytes().splitlines()
    intake = Intake(Settings())
    expected = [_decoded(intake, data) for data in lines]
    got = [d for i in range(0, len(lines), 97) for d in intake.decode_many([(data, False) for data in lines[i:i + 97]])]
    assert got == expected
    assert sum(event is not None for event, _ in expected) > len(lines) / 2


def _messy_city(root: Path) -> Path:
    """A generated city (malformed lines included), with a hostile variant of every 20th line
    (a field given another JSON value, padded, escaped, not ASCII, a huge integer) mixed in."""
    generate(persons=3000, days=2, cases=12, seed=5, out_dir=root / "city", truth=False)
    rnd = random.Random(7)
    odd: list[Any] = [None, True, 1.5, 2**64, -(2**63), 7, "", "  7 ", "x" * 129, "é", "a\\u00e9", "h:0", [1],
                      {"a": 1e300}, "mu 5101", "g7", "G 7", "2020/1/20", "2020-1-20"]
    out = []
    for raw in (root / "city" / "events.jsonl").read_bytes().splitlines():
        out.append(raw)
        if rnd.randrange(20) == 0:
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict):
                if event.get("mode") in ("flight", "train") and isinstance(event.get("service"), str):
                    out.append(_json({**event, "service": event["service"].lower()}))  # rewritten to canonical
                event[rnd.choice(FIELDS)] = rnd.choice(odd)
                out.append(_json(event))
    path = root / "messy.jsonl"
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def test_a_messy_city_gives_the_same_outputs_with_and_without_the_lane(tmp_path):
    """contacts, queues, status and dead letters, byte for byte, with batches of 1 and 1,000."""
    events = _messy_city(tmp_path)
    outputs = []
    for plain, batch in ((True, 1000), (False, 1000), (True, 1), (False, 1)):
        base = Settings()
        config = replace(base, runtime=replace(base.runtime, plain_lines=plain, batch_events=batch, commit_every=700))
        out = tmp_path / f"out-{plain}-{batch}"
        run_embedded([str(events)], out, config, tmp_path / f"state-{plain}-{batch}")
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.jsonl"))})
    assert outputs[0] == outputs[1] and outputs[2] == outputs[3]
    assert outputs[0]["dead-letter.jsonl"] and outputs[0]["contacts.jsonl"]
