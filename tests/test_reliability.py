"""Reliability and privacy: pseudonymised contacts, clean logs, clear errors on full disks."""

from __future__ import annotations

import logging
import resource
import subprocess
import sys

import orjson
import pytest

from tests.builders import case, lines, person, trip
from tracer.alerts import fold
from tracer.cli import main
from tracer.simulate import generate

EVENTS = [
    person("P2", "310101002"),
    trip("P1", seat="10A"), trip("P2", seat="12B"), trip("P3", seat="30C"),
    case("C1", "P1"),
]
KEY = "a-research-sharing-key-of-32-bytes!"


def read(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_pseudonymised_contacts_keep_real_ids_in_queues(tmp_path, monkeypatch):
    (tmp_path / "e.jsonl").write_bytes(lines(EVENTS))
    monkeypatch.setenv("TRACER_PSEUDONYM_KEY", KEY)
    for name in ("a", "b"):
        assert main(["run", str(tmp_path / "e.jsonl"), "--out", str(tmp_path / name), "--pseudonymize", "--quiet"]) == 0
    contacts = read(tmp_path / "a" / "contacts.jsonl")
    text = (tmp_path / "a" / "contacts.jsonl").read_text()
    assert "P1" not in text and "P2" not in text and "P3" not in text
    assert all(a["contact_person_id"].startswith("ps:") for a in contacts)
    assert (tmp_path / "b" / "contacts.jsonl").read_text() == text  # stable across runs with one key
    queue = fold(read(tmp_path / "a" / "alerts" / "310101002.jsonl"))
    assert {a["contact_person_id"] for a in queue.values()} == {"P2"}


def test_pseudonymize_needs_a_key_outside_the_command_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "e.jsonl").write_bytes(lines(EVENTS))
    monkeypatch.delenv("TRACER_PSEUDONYM_KEY", raising=False)
    assert main(["run", str(tmp_path / "e.jsonl"), "--out", str(tmp_path / "o"), "--pseudonymize"]) == 2
    assert "TRACER_PSEUDONYM_KEY" in capsys.readouterr().err
    key = tmp_path / "key"
    key.write_text(KEY)
    args = ["run", str(tmp_path / "e.jsonl"), "--out", str(tmp_path / "o"), "--pseudonymize", "--key-file", str(key)]
    assert main(args) == 0


def test_logs_of_a_full_run_hold_no_person_id(tmp_path, caplog):
    generate(persons=400, days=1, cases=5, seed=3, out_dir=tmp_path / "city", truth=False)
    events = tmp_path / "city" / "events.jsonl"
    people = {orjson.loads(line)["person_id"] for line in events.read_bytes().splitlines()
              if line.startswith(b'{"type":"person"')}
    state = str(tmp_path / "state")
    with caplog.at_level(logging.INFO):
        for _ in range(2):  # the second run logs its resume
            assert main(["run", str(events), "--out", str(tmp_path / "out"), "--state", state]) == 0
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert people and not any(p in logged for p in people)


def test_state_write_failure_and_output_failure_are_clear_errors(tmp_path, capsys):
    (tmp_path / "e.jsonl").write_bytes(lines(EVENTS))
    out = tmp_path / "out"
    (out / "contacts.jsonl").mkdir(parents=True)  # cannot be opened as a file
    assert main(["run", str(tmp_path / "e.jsonl"), "--out", str(out), "--state", str(tmp_path / "s")]) == 2
    assert "contacts.jsonl: Is a directory" in capsys.readouterr().err
    (out / "contacts.jsonl").rmdir()
    assert main(["run", str(tmp_path / "e.jsonl"), "--out", str(out), "--state", str(tmp_path / "s")]) == 0
    assert len(read(out / "contacts.jsonl")) >= 2


@pytest.mark.slow
def test_full_disk_fails_cleanly_and_a_later_run_resumes(tmp_path):
    """RLIMIT_FSIZE makes writes past 2 MB fail like a full disk (EFBIG), in a real subprocess."""
    generate(persons=4000, days=2, cases=10, seed=8, out_dir=tmp_path / "city", truth=False)
    events = tmp_path / "city" / "events.jsonl"
    command = [sys.executable, "-m", "tracer.cli", "run", str(events), "--out", str(tmp_path / "out"),
               "--state", str(tmp_path / "state"), "--quiet"]

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    failed = subprocess.run(command, preexec_fn=small_files, capture_output=True, text=True)
    assert failed.returncode == 2, failed.stderr
    assert "tracer: error: cannot write" in failed.stderr and "Traceback" not in failed.stderr
    assert subprocess.run(command, capture_output=True).returncode == 0
    reference = [sys.executable, "-m", "tracer.cli", "run", str(events), "--out", str(tmp_path / "ref"), "--quiet"]
    assert subprocess.run(reference).returncode == 0
    assert (tmp_path / "out" / "contacts.jsonl").read_bytes() == (tmp_path / "ref" / "contacts.jsonl").read_bytes()
