"""Issue 12, the embedded runner's hardening: inputs identified by content on resume (4), the
output folder locked and owned (5), a bounded pool of open files (7), stdin read as it arrives (8),
and outputs that follow no links and split into lines one record each (13)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from connectors.files import LineReader
from tests.builders import case, lines, person, trip
from tracer.alerts import fold
from tracer.cli import main

ROOT = Path(__file__).resolve().parent.parent
CITY = [
    person("P2", "310101002"),
    person("P3", "310104003"),
    trip("P1", seat="10A", trip_id="t1"),
    trip("P2", seat="12B", trip_id="t2"),
    trip("P3", seat="30C", trip_id="t3"),
    trip("P4", seat="11A", trip_id="t4"),
]
CASE = case("C1", "P1")


def read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def live_contacts(out: Path) -> set[str]:
    return {a["contact_person_id"] for a in fold(read(out / "contacts.jsonl")).values()}


def outputs(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.jsonl"))}


def run(source: Path | str, out: Path, *extra: str) -> int:
    return main(["run", str(source), "--out", str(out), "--quiet", *extra])


def tracer(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tracer.cli", *args], cwd=ROOT, **kwargs)


# -- 4: resume checks that the input is the one the state read -------------------------------------
def test_a_replaced_input_is_refused_until_new_inputs_says_to_read_it(tmp_path, capsys):
    events, state = tmp_path / "events.jsonl", str(tmp_path / "state")
    events.write_bytes(lines(CITY))
    assert run(events, tmp_path / "out", "--state", state) == 0
    events.write_bytes(lines([*CITY[:2], trip("P5", seat="10B", trip_id="t5"), CASE]))  # replaced
    assert run(events, tmp_path / "out", "--state", state) == 2
    err = capsys.readouterr().err
    assert "tracer: error: input" in err and "events.jsonl is not the one this state read" in err
    assert "--new-inputs" in err
    assert run(events, tmp_path / "out", "--state", state, "--new-inputs") == 0
    assert "P5" in live_contacts(tmp_path / "out")


def test_a_same_size_replacement_is_refused(tmp_path, capsys):
    events, state = tmp_path / "events.jsonl", str(tmp_path / "state")
    events.write_bytes(lines([*CITY, CASE]))
    assert run(events, tmp_path / "out", "--state", state) == 0
    events.write_bytes(events.read_bytes().replace(b'"P4"', b'"P7"'))
    assert run(events, tmp_path / "out", "--state", state) == 2
    assert "is not the one this state read" in capsys.readouterr().err


def test_an_earlier_input_that_changed_is_refused(tmp_path, capsys):
    day1, day2, state = tmp_path / "day1.jsonl", tmp_path / "day2.jsonl", str(tmp_path / "state")
    day1.write_bytes(lines(CITY))
    day2.write_bytes(lines([CASE]))
    assert run(day1, tmp_path / "out", "--state", state) == 0  # the state has read day1 alone
    assert main(["run", str(day1), str(day2), "--out", str(tmp_path / "out"), "--state", state, "--quiet"]) == 0
    day1.write_bytes(lines(CITY[1:]))
    assert main(["run", str(day1), str(day2), "--out", str(tmp_path / "out"), "--state", state, "--quiet"]) == 2
    assert "day1.jsonl is not the one" in capsys.readouterr().err


def test_a_grown_input_resumes_where_it_stopped(tmp_path):
    events, state = tmp_path / "events.jsonl", str(tmp_path / "state")
    events.write_bytes(lines(CITY))
    assert run(events, tmp_path / "out", "--state", state) == 0
    with events.open("ab") as grow:
        grow.write(lines([CASE]))
    assert run(events, tmp_path / "out", "--state", state) == 0
    assert run(events, tmp_path / "whole") == 0
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")


def test_repiped_stdin_must_be_the_same(tmp_path):
    state, out = str(tmp_path / "state"), str(tmp_path / "out")
    first = lines(CITY)

    def pipe(data: bytes) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "tracer.cli", "run", "-", "--out", out, "--state", state, "--quiet"]
        return subprocess.run(command, input=data, cwd=ROOT, capture_output=True, timeout=60)

    assert pipe(first).returncode == 0
    assert pipe(first + lines([CASE])).returncode == 0  # the same start, and more: resumes
    assert live_contacts(tmp_path / "out") == {"P2", "P3", "P4"}
    other = lines([trip("P9", seat="1A", trip_id="t9"), *CITY[1:], CASE])
    refused = pipe(other)
    assert refused.returncode == 2 and b"input - is not the one this state read" in refused.stderr


def test_a_half_written_last_line_waits_for_its_newline(tmp_path):
    """A writer mid-line: the half line is held back, not split into two dead letters."""
    events, state, out = tmp_path / "events.jsonl", str(tmp_path / "state"), tmp_path / "out"
    whole = lines([*CITY, CASE])
    cut = len(lines(CITY)) + 40
    events.write_bytes(whole[:cut])
    command = ["run", str(events), "--out", str(out), "--state", state]
    first = subprocess.run([sys.executable, "-m", "tracer.cli", *command], cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0
    assert "ends in an incomplete line of 40 bytes" in first.stderr
    assert "held back" in first.stdout and "C1" not in first.stdout + first.stderr
    assert (out / "dead-letter.jsonl").read_bytes() == b""
    events.write_bytes(whole)  # the writer finishes its line
    assert run(events, out, "--state", state) == 0
    assert run(events, tmp_path / "whole") == 0
    assert outputs(out) == outputs(tmp_path / "whole") and read(out / "contacts.jsonl")


def test_a_last_line_without_newline_that_is_whole_is_read(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(lines([*CITY, CASE])[:-1])
    assert run(events, tmp_path / "out") == 0
    assert live_contacts(tmp_path / "out") == {"P2", "P3", "P4"}


def test_reader_fingerprint_while_a_long_line_spans_reads(tmp_path, monkeypatch):
    """The position lags one line behind while a line is traced; its fingerprint is still exact."""
    import hashlib

    monkeypatch.setattr("connectors.files._READ_SIZE", 7)
    data = b"a\n" + b"b" * 30 + b"\n\n\nc\n"
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    reader = LineReader(str(path), 0, 0, 100)
    previous = 0
    for _, end, _, _ in reader:
        assert reader.fingerprint(previous) == (previous, hashlib.sha256(data[:previous]).hexdigest())
        assert reader.fingerprint(end) == (end, hashlib.sha256(data[:end]).hexdigest())
        previous = end


# -- 5: the output folder is locked and bound to its state -------------------------------------------
def test_two_states_on_one_output_folder(tmp_path, capsys):
    events = tmp_path / "events.jsonl"
    events.write_bytes(lines([*CITY, CASE]))
    out = tmp_path / "out"
    assert run(events, out, "--state", str(tmp_path / "s1")) == 0
    kept = outputs(out)
    assert run(events, out, "--state", str(tmp_path / "s2")) == 2
    err = capsys.readouterr().err
    assert f"output folder {out} holds the outputs of the state in {tmp_path / 's1'}" in err
    assert run(events, out) == 2  # nor may a temporary state take it
    assert outputs(out) == kept


def test_a_second_run_on_a_busy_output_folder_stops_at_once(tmp_path):
    out = tmp_path / "out"
    holder = tracer("run", "-", "--out", str(out), "--quiet", stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (out / "contacts.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "tracer.cli", "run", "-", "--out", str(out), "--quiet"],
                                input=lines(CITY), cwd=ROOT, capture_output=True, timeout=60)
        assert second.returncode == 2, second.stderr
        assert second.stderr.decode().strip() == f"tracer: error: output folder {out} is in use by another tracer run"
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0


def test_one_state_with_o1_then_o2_then_o1(tmp_path, capsys):
    day1, day2, state = tmp_path / "day1.jsonl", tmp_path / "day2.jsonl", str(tmp_path / "state")
    day1.write_bytes(lines(CITY))
    day2.write_bytes(lines([CASE]))
    assert run(day1, tmp_path / "o1", "--state", state) == 0
    assert run(day2, tmp_path / "o2", "--state", state) == 2
    assert f"this state's outputs are in {tmp_path / 'o1'}" in capsys.readouterr().err
    assert run(day2, tmp_path / "o1", "--state", state) == 0
    assert main(["run", str(day1), str(day2), "--out", str(tmp_path / "whole"), "--quiet"]) == 0
    assert outputs(tmp_path / "o1") == outputs(tmp_path / "whole")


def test_temporary_states_may_reuse_a_folder_and_a_kept_state_may_take_it_over(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(lines([*CITY, CASE]))
    out = tmp_path / "out"
    assert run(events, out) == 0 and run(events, out) == 0
    assert run(events, out, "--state", str(tmp_path / "s")) == 0
    assert run(events, out, "--state", str(tmp_path / "s")) == 0
    assert live_contacts(out) == {"P2", "P3", "P4"}


# -- 7: more queues than open files -----------------------------------------------------------------
def subdistricts() -> list[str]:
    rows = (ROOT / "tracer" / "data" / "shanghai_subdistricts.csv").read_text(encoding="utf-8").splitlines()
    return [row.split(",")[0] for row in rows if row[:1].isdigit()]


def metro_city(codes: list[str]) -> list[dict]:
    """A case and one close contact (same metro carriage) in each of ``codes``."""
    riders = [f"R{i}" for i in range(len(codes))]
    events = [person(rider, code) for rider, code in zip(riders, codes, strict=True)]
    events += [trip(r, mode="metro", service="L2-0800", carriage="3", trip_id=f"m{r}") for r in ["P1", *riders]]
    return [*events, CASE]


def test_more_queues_than_the_pool_of_open_files(tmp_path):
    codes = subdistricts()[:40]
    events = metro_city(codes)
    config = tmp_path / "pool.toml"
    config.write_text("[runtime]\nmax_open_files = 4\ncommit_every = 7\n")
    half = len(events) // 2 + 20
    (tmp_path / "events.jsonl").write_bytes(lines(events[:half]))
    state = str(tmp_path / "state")
    assert run(tmp_path / "events.jsonl", tmp_path / "out", "--state", state, "--config", str(config)) == 0
    (tmp_path / "events.jsonl").write_bytes(lines(events))
    assert run(tmp_path / "events.jsonl", tmp_path / "out", "--state", state, "--config", str(config)) == 0
    assert run(tmp_path / "events.jsonl", tmp_path / "whole") == 0
    got = outputs(tmp_path / "out")
    assert got == outputs(tmp_path / "whole") and len(got) == len(codes) + 3  # + contacts, dead letters, status


def test_max_open_files_is_validated(tmp_path, capsys):
    config = tmp_path / "pool.toml"
    config.write_text("[runtime]\nmax_open_files = 3\n")
    (tmp_path / "e.jsonl").write_bytes(lines(CITY))
    assert run(tmp_path / "e.jsonl", tmp_path / "out", "--config", str(config)) == 2
    assert "runtime.max_open_files must be between 4 and 65536, got 3" in capsys.readouterr().err


def test_every_subdistrict_under_a_small_descriptor_limit(tmp_path):
    """All the shipped offices (over 200 queues) under ``ulimit -n 128``, in a real process."""
    codes = subdistricts()
    assert len(codes) > 200
    (tmp_path / "events.jsonl").write_bytes(lines(metro_city(codes)))
    config = tmp_path / "pool.toml"
    config.write_text("[runtime]\nmax_open_files = 48\ncommit_every = 50\n")

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    command = [sys.executable, "-m", "tracer.cli", "run", str(tmp_path / "events.jsonl"), "--out",
               str(tmp_path / "out"), "--state", str(tmp_path / "state"), "--config", str(config), "--quiet"]
    done = subprocess.run(command, preexec_fn=few_descriptors, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert run(tmp_path / "events.jsonl", tmp_path / "whole") == 0
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")
    assert len(outputs(tmp_path / "out")) == len(codes) + 3


# -- 8: a live feed on stdin --------------------------------------------------------------------------
def test_a_case_piped_into_a_quiet_feed_is_traced_at_once(tmp_path):
    out = tmp_path / "out"
    process = tracer("run", "-", "--out", str(out), "--quiet", stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        process.stdin.write(lines(CITY))
        process.stdin.flush()
        time.sleep(0.2)
        process.stdin.write(lines([CASE]))
        process.stdin.flush()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if (out / "contacts.jsonl").exists() and live_contacts(out) == {"P2", "P3", "P4"}:
                break
            time.sleep(0.05)
        assert live_contacts(out) == {"P2", "P3", "P4"}, "the case's alerts must be out while the pipe is open"
        assert process.poll() is None
    finally:
        process.stdin.close()
        assert process.wait(timeout=60) == 0


# -- 13: links, file names, line separators ------------------------------------------------------------
@pytest.mark.parametrize("where", ["alerts/310101002.jsonl", "contacts.jsonl", "dead-letter.jsonl", "alerts"])
def test_a_symlink_in_the_output_folder_is_refused(tmp_path, capsys, where):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_bytes(b"precious\n")
    out = tmp_path / "out"
    (out / "alerts").mkdir(parents=True)
    link = out / where
    if where == "alerts":
        link.rmdir()
        link.symlink_to(victim, target_is_directory=True)
        (victim / "310101002.jsonl").write_bytes(b"precious\n")
    else:
        link.symlink_to(victim / "keep.txt")
    (tmp_path / "e.jsonl").write_bytes(lines([*CITY, CASE]) + b"not json\n")
    assert run(tmp_path / "e.jsonl", out, "--state", str(tmp_path / "state")) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and str(link) in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == {
        p.name: b"precious\n" for p in victim.iterdir()}


def test_a_file_name_that_is_not_utf8(tmp_path):
    name = os.fsdecode(b"caf\xe9-\xff.jsonl")
    (tmp_path / name).write_bytes(lines(CITY) + b"broken\n")
    out = tmp_path / "out"
    assert run(tmp_path / name, out, "--state", str(tmp_path / "state")) == 0
    (dead,) = read(out / "dead-letter.jsonl")
    assert dead["source"].endswith("caf\\xe9-\\xff.jsonl") and dead["line"] == 7
    assert run(tmp_path / name, out, "--state", str(tmp_path / "state")) == 0  # resumes with that name


def test_every_output_line_is_one_record_for_str_splitlines(tmp_path):
    weird = "P\u2028X\u2029Y"  # (U+0085 is a control character: ids refuse it; the dead letter has one)
    events = [person(weird, "310101002"), trip("P1", seat="10A", service="MU\u20281"),
              trip(weird, seat="11B", service="MU\u20281"), case("C1", "P1")]
    data = lines(events) + "not json \u2028 \u2029 \u0085\n".encode()
    (tmp_path / "e.jsonl").write_bytes(data)
    out = tmp_path / "out"
    assert run(tmp_path / "e.jsonl", out) == 0
    files = outputs(out)
    assert set(files) == {"contacts.jsonl", "dead-letter.jsonl", "status.jsonl", "alerts/310101002.jsonl"}
    for name, content in files.items():
        text = content.decode()
        assert len(text.splitlines()) == content.count(b"\n") > 0, name
        assert all(orjson.loads(line) for line in text.splitlines())
    assert {a["contact_person_id"] for a in read(out / "alerts" / "310101002.jsonl")} == {weird}
    rejected = [letter for letter in read(out / "dead-letter.jsonl") if "severity" not in letter]
    assert [letter["raw"] for letter in rejected] == ["not json \u2028 \u2029 \u0085"]  # (the trips' MU\u20281
    # is a flight number with a space in it: rewritten to MU1, with a warning each: docs/rules.md "Canonical forms")


# -- H4: an input in the output folder is refused before anything there is written ---------------------
@pytest.mark.parametrize("where", ["contacts.jsonl", "dead-letter.jsonl", "alerts/310101002.jsonl",
                                   "events.jsonl", "hard link", "stdin"])
def test_an_input_in_the_output_folder_is_refused(tmp_path, where):
    out = tmp_path / "out"
    (out / "alerts").mkdir(parents=True)
    data = lines([*CITY, CASE])
    source = tmp_path / "events.jsonl" if where in ("hard link", "stdin") else out / where
    source.write_bytes(data)
    if where in ("hard link", "stdin"):
        os.link(source, out / "contacts.jsonl")
    argument = "-" if where == "stdin" else str(source)
    with source.open("rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "tracer.cli", "run", argument, "--out", str(out), "--quiet"],
                              stdin=stdin, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("tracer: error: cannot write ") and done.stderr.count("\n") == 1
    assert source.read_bytes() == data


# -- H5, M2: only regular files with one link are written in the output folder -------------------------
@pytest.mark.parametrize("where", ["alerts/310101002.jsonl", "contacts.jsonl", "dead-letter.jsonl", ".tracer-lock"])
def test_a_hard_link_in_the_output_folder_is_refused(tmp_path, capsys, where):
    victim = tmp_path / "victim"
    victim.write_bytes(b"PRECIOUS\n")
    out = tmp_path / "out"
    (out / "alerts").mkdir(parents=True)
    os.link(victim, out / where)
    (tmp_path / "e.jsonl").write_bytes(lines([*CITY, CASE]) + b"not json\n")
    assert run(tmp_path / "e.jsonl", out) == 2
    err = capsys.readouterr().err
    assert f"cannot open {out / where}: it has other hard links" in err and err.count("\n") == 1
    assert victim.read_bytes() == b"PRECIOUS\n"


@pytest.mark.parametrize("where", ["alerts/310101002.jsonl", "contacts.jsonl", ".tracer-lock", ".tracer-owner"])
def test_a_fifo_in_the_output_folder_is_refused_at_once(tmp_path, where):
    out = tmp_path / "out"
    (out / "alerts").mkdir(parents=True)
    os.mkfifo(out / where)
    (tmp_path / "e.jsonl").write_bytes(lines([*CITY, CASE]))
    command = [sys.executable, "-m", "tracer.cli", "run", str(tmp_path / "e.jsonl"), "--out", str(out), "--quiet"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    reason = "it is not a regular file (a pipe, socket or device)"
    assert done.stderr == f"tracer: error: cannot open {out / where}: {reason}\n"


# -- M1: an earlier input is complete; one that grew after the stream moved past it is refused -----------
def test_an_earlier_input_that_grew_is_refused(tmp_path, capsys):
    day1, day2, state, out = tmp_path / "day1.jsonl", tmp_path / "day2.jsonl", str(tmp_path / "state"), tmp_path / "o"
    day1.write_bytes(lines(CITY)[:-1] + b"\n\n  \n")  # its last line whole, blank lines after it
    day2.write_bytes(lines([CASE])[:-1])  # no newline: the last input, and whole
    both = ["run", str(day1), str(day2), "--out", str(out), "--state", state, "--quiet"]
    assert main(both) == 0 and live_contacts(out) == {"P2", "P3", "P4"}
    assert main(both) == 0  # trailing blank lines were consumed too: nothing changed
    with day1.open("ab") as grow:
        grow.write(lines([trip("P5", seat="10B", trip_id="t5")]))
    assert main(both) == 2
    assert "day1.jsonl is not the one this state read (it grew after this state read all" in capsys.readouterr().err
    assert main([*both, "--new-inputs"]) == 0 and "P5" in live_contacts(out)


def test_an_earlier_inputs_last_line_without_newline_is_read(tmp_path):
    day1, day2 = tmp_path / "day1.jsonl", tmp_path / "day2.jsonl"
    day1.write_bytes(lines(CITY) + lines([CASE])[:-1])
    day2.write_bytes(lines([trip("P5", seat="10B", trip_id="t5")]))
    assert main(["run", str(day1), str(day2), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert live_contacts(tmp_path / "o") == {"P2", "P3", "P4", "P5"}


# -- M3: the pool of open files fits the process's descriptor limit -------------------------------------
def test_the_default_pool_fits_a_small_descriptor_limit(tmp_path):
    """Over 200 queues under ``ulimit -n 40`` with the default max_open_files (256)."""
    (tmp_path / "events.jsonl").write_bytes(lines(metro_city(subdistricts())))

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    command = [sys.executable, "-m", "tracer.cli", "run", str(tmp_path / "events.jsonl"), "--out",
               str(tmp_path / "out"), "--quiet"]
    done = subprocess.run(command, preexec_fn=few_descriptors, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert run(tmp_path / "events.jsonl", tmp_path / "whole") == 0
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")


def test_out_of_descriptors_closes_the_least_recently_written_file(tmp_path):
    """Every descriptor taken after the pool was sized: each new queue still opens, by closing one."""
    script = f"""
import os
from connectors.files import OutputFiles
files = OutputFiles({str(tmp_path / 'out')!r}, max_open=256)
files.restore({{}})
taken = []
try:
    while True:
        taken.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
for n in range(20):
    files.write(f"q{{n}}", b"{{}}")
files.checkpoint()
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out" / "alerts").glob("q*.jsonl"))) == 20


# -- L6: a reader that goes away ------------------------------------------------------------------------
def test_a_closed_standard_output_ends_quietly(tmp_path):
    (tmp_path / "e.jsonl").write_bytes(lines([*CITY, CASE]))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (``| head -1``) has gone before the summary is printed
    command = [sys.executable, "-m", "tracer.cli", "run", str(tmp_path / "e.jsonl"), "--out", str(tmp_path / "o")]
    done = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, cwd=ROOT, text=True, timeout=60)
    os.close(write_end)
    assert done.returncode == 141 and done.stderr == ""
