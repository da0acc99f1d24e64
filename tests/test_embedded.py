"""`tracer run`: the embedded runner end to end, through the CLI entry point."""

from __future__ import annotations

import io
import sys

import orjson
import pytest

from tests.builders import case, lines, person, trip
from tracer.alerts import fold
from tracer.cli import main

EVENTS = [
    person("P2", "310101002"),
    person("P3", "310104003"),
    trip("P1", seat="10A", trip_id="t1"),
    trip("P2", seat="12B", trip_id="t2"),
    trip("P3", seat="30C", trip_id="t3"),
    trip("P4", seat="11A", trip_id="t4"),
    case("C1", "P1"),
]


def read(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def direct(records: list[dict]) -> dict[str, dict]:
    """Live direct alerts (secondary contacts via the close contacts left out)."""
    return {k: a for k, a in fold(records).items() if a["via_person_id"] is None}


def run(tmp_path, data: bytes, *extra: str, name: str = "events.jsonl") -> int:
    source = tmp_path / name
    source.write_bytes(data)
    return main(["run", str(source), "--out", str(tmp_path / "out"), *extra])


def test_outputs_and_queues(tmp_path, capsys):
    assert run(tmp_path, lines(EVENTS)) == 0
    out = tmp_path / "out"
    contacts = direct(read(out / "contacts.jsonl"))
    assert sorted(a["contact_person_id"] for a in contacts.values()) == ["P2", "P3", "P4"]
    assert [a["contact_person_id"] for a in direct(read(out / "alerts" / "310101002.jsonl")).values()] == ["P2"]
    assert [a["contact_person_id"] for a in direct(read(out / "alerts" / "unassigned.jsonl")).values()] == ["P4"]
    assert not (out / "alerts" / "310104003.jsonl").exists()  # P3 is only a general contact
    printed = capsys.readouterr().out
    assert "1 case, 2 person, 4 trip" in printed and "2 close, 1 general, 2 secondary" in printed


def test_bad_lines_become_dead_letters_and_the_run_goes_on(tmp_path):
    data = lines(EVENTS[:3]) + b'{"type": "trip", \n' + b"\xff\xfe\n" + lines(EVENTS[3:])
    assert run(tmp_path, data) == 0
    dead = read(tmp_path / "out" / "dead-letter.jsonl")
    assert [(d["line"], d["reason"][:11]) for d in dead] == [(4, "broken JSON"), (5, "broken JSON")]
    assert dead[1]["raw"] == "\ufffd\ufffd" and dead[0]["source"].endswith("events.jsonl")
    assert len(direct(read(tmp_path / "out" / "contacts.jsonl"))) == 3


def test_overlong_line_is_a_dead_letter(tmp_path):
    config = tmp_path / "small.toml"
    config.write_text("[runtime]\nmax_line_bytes = 300\n")
    long = orjson.dumps(trip("P9", board_station="Y" * 120, alight_station="Z" * 120)) + b"\n"
    assert run(tmp_path, long + lines(EVENTS), "--config", str(config)) == 0
    (dead,) = read(tmp_path / "out" / "dead-letter.jsonl")
    assert "max_line_bytes" in dead["reason"] and len(dead["raw"]) == 300


def test_same_input_gives_byte_identical_outputs(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    data = lines([*EVENTS, case("C1", "P1", isolated_at="2020-01-20T09:00:00+08:00")])
    assert run(first, data) == 0 and run(second, data) == 0
    for name in ("contacts.jsonl", "alerts/310101002.jsonl", "alerts/unassigned.jsonl"):
        assert (first / "out" / name).read_bytes() == (second / "out" / name).read_bytes()


def test_stdin_input(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(lines(EVENTS))))
    assert main(["run", "-", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert len(direct(read(tmp_path / "out" / "contacts.jsonl"))) == 3


def test_rerun_with_same_state_resumes_and_adds_nothing(tmp_path):
    state = str(tmp_path / "state")
    assert run(tmp_path, lines(EVENTS), "--state", state) == 0
    before = (tmp_path / "out" / "contacts.jsonl").read_bytes()
    assert run(tmp_path, lines(EVENTS), "--state", state) == 0
    assert (tmp_path / "out" / "contacts.jsonl").read_bytes() == before


def test_new_inputs_continue_the_state(tmp_path):
    state = str(tmp_path / "state")
    assert run(tmp_path, lines(EVENTS[:-1]), "--state", state, name="day1.jsonl") == 0
    assert run(tmp_path, lines([EVENTS[-1]]), "--state", state, name="day2.jsonl") == 0
    assert len(direct(read(tmp_path / "out" / "contacts.jsonl"))) == 3


def test_resume_after_torn_output_restores_the_checkpoint(tmp_path):
    """A crash after outputs were written but before the state commit: the restart cuts them back."""
    state = str(tmp_path / "state")
    assert run(tmp_path, lines(EVENTS), "--state", state) == 0
    contacts = tmp_path / "out" / "contacts.jsonl"
    complete = contacts.read_bytes()
    contacts.write_bytes(complete + b'{"torn": tr')
    assert run(tmp_path, lines(EVENTS), "--state", state) == 0
    assert contacts.read_bytes() == complete


@pytest.mark.parametrize("problem", ["missing", "config"])
def test_tool_failures_exit_non_zero(tmp_path, capsys, problem):
    if problem == "missing":
        code = main(["run", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "out")])
    else:
        bad = tmp_path / "bad.toml"
        bad.write_text("[rules]\nlookback_dayz = 4\n")
        code = run(tmp_path, lines(EVENTS), "--config", str(bad))
    assert code == 2
    assert "tracer: error:" in capsys.readouterr().err


def test_state_held_by_another_process_is_a_clear_error(tmp_path, capsys):
    from graph.store import RocksStore

    holder = RocksStore(tmp_path / "state")
    try:
        assert run(tmp_path, lines(EVENTS), "--state", str(tmp_path / "state")) == 2
        assert "cannot open state" in capsys.readouterr().err
    finally:
        holder.close()


def test_outputs_untouched_by_a_resumed_run_survive_the_next_restore(tmp_path):
    """Regression: a resumed run must checkpoint the sizes of files it has not reopened."""
    state = str(tmp_path / "state")
    config = tmp_path / "one.toml"
    config.write_text("[runtime]\ncommit_every = 1\n")
    assert run(tmp_path, lines(EVENTS), "--state", state, "--config", str(config)) == 0
    queue = tmp_path / "out" / "alerts" / "310101002.jsonl"
    kept = queue.read_bytes()
    more = lines([trip("P9", seat="40A", service="MU7777")])
    assert run(tmp_path, more, "--state", state, "--config", str(config), name="later.jsonl") == 0
    assert run(tmp_path, more, "--state", state, "--config", str(config), name="later.jsonl") == 0
    assert queue.read_bytes() == kept


def test_a_fresh_state_empties_outputs_left_by_another(tmp_path):
    assert run(tmp_path, lines(EVENTS)) == 0
    assert run(tmp_path, lines(EVENTS)) == 0  # no --state: a fresh temporary state each time
    assert len(read(tmp_path / "out" / "contacts.jsonl")) == len(set(read_ids(tmp_path)))


def read_ids(tmp_path) -> list[str]:
    return [a["alert_id"] for a in read(tmp_path / "out" / "contacts.jsonl")]
