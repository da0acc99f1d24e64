"""The chunked line splitter of the file source: every byte accounted for, long lines bounded."""

from __future__ import annotations

import io
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.files import LineReader

LIMIT = 100


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"x")), max_size=8),
    st.booleans(),
    st.sampled_from([LIMIT, 1 << 20]),
)
def test_read_lines_accounts_for_every_byte(tmp_path_factory, lines, final_newline, chunk):
    """Every line comes back (blank ones counted, not returned), cut to the limit, with the offset
    after it; lines span reads of ``chunk`` bytes."""
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    path = tmp_path_factory.mktemp("lines") / "in.jsonl"
    path.write_bytes(data)
    expected, end = [], 0
    for number, line in enumerate(data.split(b"\n")[: len(lines)], 1):
        end = min(end + len(line) + 1, len(data))
        line = line[:-1] if line.endswith(b"\r") else line
        if len(line) > LIMIT or (line and not line.isspace()):
            expected.append((number, end, line[:LIMIT], len(line) > LIMIT))
    with patch("connectors.files._READ_SIZE", chunk):
        assert list(LineReader(str(path), 0, 0, LIMIT)) == expected
        for number, end, _, _ in expected:  # resumed after any line: the rest
            assert list(LineReader(str(path), end, number, LIMIT)) == [e for e in expected if e[0] > number]


def test_a_line_longer_than_a_chunk(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"a" * 3_000_000 + b"\nshort\n")
    lines = list(LineReader(str(path), 0, 0, LIMIT))
    assert [(number, too_long, len(data)) for number, _, data, too_long in lines] == [(1, True, LIMIT), (2, False, 5)]
    assert lines[-1][1] == path.stat().st_size
    resumed = list(LineReader(str(path), lines[0][1], 1, LIMIT))
    assert [data for _, _, data, _ in resumed] == [b"short"]


def test_a_carriage_return_inside_a_long_line_is_no_line_end(tmp_path):
    """A line that spans reads is kept to two bytes past the limit: a CR there is not its end."""
    path = tmp_path / "cr.jsonl"
    path.write_bytes(b"a" * LIMIT + b"\rbbbb\n" + b"a" * LIMIT + b"\r\n")
    with patch("connectors.files._READ_SIZE", 50):
        lines = list(LineReader(str(path), 0, 0, LIMIT))
    got = [(number, too_long, len(data)) for number, _, data, too_long in lines]
    assert got == [(1, True, LIMIT), (2, False, LIMIT)]


def test_stdin_resumes_by_skipping_and_numbers_lines_from_the_start(monkeypatch):
    """Stdin cannot seek: it resumes by reading the consumed bytes again (and checking their hash)."""
    data = b"".join(b"line %d\n" % n for n in range(1, 7))
    monkeypatch.setattr("sys.stdin", type("Stdin", (), {"buffer": io.BytesIO(data)})())
    assert [(number, line) for number, _, line, _ in LineReader("-", 21, 3, LIMIT)] == [
        (4, b"line 4"), (5, b"line 5"), (6, b"line 6")]
