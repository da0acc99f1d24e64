"""The chunked line splitter of the file source: every byte accounted for, long lines bounded."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.files import _split, read_lines

LIMIT = 100


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"x")), max_size=8), st.booleans())
def test_split_accounts_for_every_byte(lines, final_newline):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    expected = data.split(b"\n")
    if expected and expected[-1] == b"":
        expected.pop()
    got = list(_split(io.BytesIO(data), LIMIT))
    assert [line for line, _, _ in got] == [line[:LIMIT] for line in expected]
    assert [long for _, _, long in got] == [len(line) > LIMIT for line in expected]
    assert sum(size for _, size, _ in got) == len(data)


def test_a_line_longer_than_a_chunk(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"a" * 3_000_000 + b"\nshort\n")
    lines = list(read_lines(str(path), 0, 0, LIMIT))
    assert [(line.number, line.too_long, len(line.data)) for line in lines] == [(1, True, LIMIT), (2, False, 5)]
    assert lines[-1].end == path.stat().st_size
    resumed = list(read_lines(str(path), lines[0].end, 1, LIMIT))
    assert [line.data for line in resumed] == [b"short"]
