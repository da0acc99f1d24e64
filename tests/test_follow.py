"""`tracer run --follow` (issue 14): a real run in the background over files the tests append to.

Nothing here asserts timing: each wait polls the outputs with a generous timeout. A followed run's
batches depend on when lines arrive, so its outputs are compared, folded, with one run without
--follow over the final files (the alerts do not depend on the order of events), and its dead
letters record for record: each exactly once, with its own file and line.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from connectors.files import LineReader
from tests.builders import lines, trip
from tests.test_harden_runner import CASE, CITY  # P1 a case; P2, P3, P4 its contacts
from tracer.alerts import fold
from tracer.cli import main
from tracer.errors import InputError
from tracer.simulate import generate

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0


def ride(person_id: str, seat: str) -> dict:
    """A ride on the case's flight: a close contact, whichever file it arrives in."""
    return trip(person_id, seat=seat, trip_id=f"t-{person_id}")


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as target:
        target.write(data)


class Follow:
    """``tracer run FEED FOLLOWUPS --follow`` in the background, with its --out and --state."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.feed, self.followups = tmp_path / "feed.jsonl", tmp_path / "followups.jsonl"
        self.out, self.state = tmp_path / "out", tmp_path / "state"
        self.runs = 0

    def start(self, *extra: str) -> subprocess.Popen:
        self.runs += 1
        command = [sys.executable, "-m", "tracer.cli", "run", str(self.feed), str(self.followups), "--out",
                   str(self.out), "--state", str(self.state), "--follow", *extra]
        self.stdout, self.stderr = self.root / f"stdout-{self.runs}", self.root / f"stderr-{self.runs}"
        with self.stdout.open("wb") as stdout, self.stderr.open("wb") as stderr:
            return subprocess.Popen(command, cwd=ROOT, stdout=stdout, stderr=stderr)

    def stop(self, process: subprocess.Popen, number: int = signal.SIGINT) -> tuple[int, str, str]:
        process.send_signal(number)
        code = process.wait(timeout=TIMEOUT)
        return code, self.stdout.read_text(), self.stderr.read_text()

    def live(self, name: str = "contacts.jsonl") -> dict[str, dict]:
        """The folded alerts of an output file so far (its complete lines: it may be written meanwhile)."""
        path = self.out / name
        data = path.read_bytes() if path.exists() else b""
        return fold(orjson.loads(line) for line in data.split(b"\n")[:-1])

    def contacts(self) -> set[str]:
        return {alert["contact_person_id"] for alert in self.live().values()}


def wait_for(done: Callable[[], bool], what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done():
        assert process.poll() is None, f"the run ended ({process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"not within {TIMEOUT:.0f} s: {what}"
        time.sleep(0.05)


def lines_read(stdout: str) -> int:
    (row,) = [row for row in stdout.splitlines() if row.startswith("lines read")]
    return int(row.split()[2].replace(",", ""))


def one_run_without_follow(follow: Follow) -> Path:
    """The outputs of one run over the final files, in order."""
    reference = follow.root / "reference"
    if not reference.exists():
        assert main(["run", str(follow.feed), str(follow.followups), "--out", str(reference), "--quiet"]) == 0
    return reference


def assert_same_as_one_run_without_follow(follow: Follow) -> None:
    """The followed outputs fold to those of one run over the final files, and hold the same dead
    letters, each once."""
    reference = one_run_without_follow(follow)
    queues = {path.relative_to(reference).as_posix() for path in reference.rglob("*.jsonl")}
    queues |= {path.relative_to(follow.out).as_posix() for path in follow.out.rglob("*.jsonl")}
    for name in sorted(queues - {"dead-letter.jsonl", "status.jsonl"}):
        path = reference / name
        expected = fold(orjson.loads(line) for line in path.read_bytes().splitlines()) if path.exists() else {}
        assert follow.live(name) == expected, name
    statuses = []  # the last status of each person; "at" follows the batches, which follow the timing
    for root in (follow.out, reference):
        records = map(orjson.loads, (root / "status.jsonl").read_bytes().splitlines())
        last = {record["person_id"]: {**record, "at": None} for record in records}
        statuses.append({person: record for person, record in last.items() if record["color"] != "green"})
    assert statuses[0] == statuses[1]
    dead = [sorted((root / "dead-letter.jsonl").read_bytes().splitlines()) for root in (follow.out, reference)]
    assert dead[0] == dead[1] and dead[0]


def test_appended_lines_and_a_file_created_later_are_traced(tmp_path):
    follow = Follow(tmp_path)
    follow.feed.write_bytes(lines(CITY))
    process = follow.start()
    try:
        append(follow.feed, lines([CASE]))
        wait_for(lambda: follow.contacts() == {"P2", "P3", "P4"}, "the case appended to the feed", process)
        follow.followups.write_bytes(lines([ride("P5", "10B")]) + b"not json\n")  # the console's first action
        wait_for(lambda: "P5" in follow.contacts(), "a ride in the file made after the start", process)
        append(follow.feed, orjson.dumps(ride("P6", "10C"))[:30])  # a writer mid-line
        append(follow.followups, lines([ride("P7", "9A")]))
        wait_for(lambda: "P7" in follow.contacts(), "a ride after the first", process)
        assert "P6" not in follow.contacts()  # its line has no newline yet
        append(follow.feed, orjson.dumps(ride("P6", "10C"))[30:] + b"\n")
        wait_for(lambda: "P6" in follow.contacts(), "the rest of a half-written line", process)
    finally:
        code, stdout, stderr = follow.stop(process)
    assert code == 0, stderr
    assert stderr.count("followups.jsonl does not exist yet") == 1 and "Traceback" not in stderr
    assert lines_read(stdout) == 11
    assert_same_as_one_run_without_follow(follow)


@pytest.mark.parametrize("first_stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_run_goes_on_exactly_where_it_stopped(tmp_path, capsys, first_stop):
    follow = Follow(tmp_path)
    follow.feed.write_bytes(lines([*CITY, CASE]) + b"{broken\n")
    follow.followups.write_bytes(lines([ride("P5", "10B")]))
    process = follow.start()
    wait_for(lambda: follow.contacts() >= {"P2", "P3", "P4", "P5"}, "the files as they were", process)
    code, stdout, stderr = follow.stop(process, first_stop)
    assert code == 0 and lines_read(stdout) == 9, stderr
    # While it is stopped: more in both files, and a line half written.
    append(follow.feed, lines([ride("P6", "10C")]))
    append(follow.followups, b"[1, 2]\n" + orjson.dumps(ride("P7", "9A"))[:25])
    process = follow.start()
    try:
        wait_for(lambda: "P6" in follow.contacts(), "a line added while the run was stopped", process)
        append(follow.followups, orjson.dumps(ride("P7", "9A"))[25:] + b"\n")
        wait_for(lambda: "P7" in follow.contacts(), "the half line, finished after the restart", process)
    finally:
        code, stdout, stderr = follow.stop(process)
    assert code == 0, stderr
    assert lines_read(stdout) == 3  # the new lines only: nothing read twice
    assert_same_as_one_run_without_follow(follow)
    without = ["run", str(follow.feed), str(follow.followups), "--out", str(follow.out), "--state", str(follow.state)]
    assert main(without) == 2
    assert "written by tracer run --follow" in capsys.readouterr().err


def test_sigkill_then_resume_loses_nothing(tmp_path):
    """Killed in the middle of a block appended to both files (once a bad line in it is written
    out), with commits every few lines; the resumed run converges on the whole files' alerts."""
    feed, followups = split_city(tmp_path)
    config = tmp_path / "small.toml"
    config.write_text("[runtime]\ncommit_every = 40\nbatch_events = 16\n")
    follow = Follow(tmp_path)
    follow.feed.write_bytes(b"{first\n" + b"".join(feed[:2000]))
    process = follow.start("--config", str(config), "--quiet")
    dead = follow.out / "dead-letter.jsonl"
    wait_for(lambda: dead.exists() and b"first" in dead.read_bytes(), "a first commit", process)
    append(follow.feed, b"".join(feed[2000:4000]) + b'["middle"]\n' + b"".join(feed[4000:-1000]))
    follow.followups.write_bytes(b"".join(followups[:-500]))
    wait_for(lambda: b"middle" in dead.read_bytes(), "the middle of the block", process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=TIMEOUT)
    append(follow.feed, b"".join(feed[-1000:]))
    append(follow.followups, b"".join(followups[-500:]) + b"[]\n")
    expected = fold(orjson.loads(line) for line in (one_run_without_follow(follow) / "contacts.jsonl").read_bytes()
                    .splitlines())
    assert expected, "the city must produce alerts"
    process = follow.start("--config", str(config), "--quiet")
    try:
        wait_for(lambda: follow.live() == expected, "the alerts of the whole files", process)
    finally:
        code, _, stderr = follow.stop(process)
    assert code == 0, stderr
    assert_same_as_one_run_without_follow(follow)


def split_city(tmp_path: Path) -> tuple[list[bytes], list[bytes]]:
    """The lines of a generated city in two files that do not interact in order: half the trips
    whose id has one version go to the second; every version of a case, person or other trip stays
    in the first, in order (versions are last-writer-wins)."""
    generate(persons=20000, days=1, cases=5, seed=4, out_dir=tmp_path / "city", truth=False)
    city = (tmp_path / "city" / "events.jsonl").read_bytes().splitlines(keepends=True)
    ids = Counter(trip_id(line) for line in city)
    feed: list[bytes] = []
    followups: list[bytes] = []
    for number, line in enumerate(city):
        once = trip_id(line) is not None and ids[trip_id(line)] == 1
        (followups if once and number % 2 else feed).append(line)
    return feed, followups


def trip_id(line: bytes) -> str | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return record.get("trip_id") if type(record) is dict and record.get("type") == "trip" else None


@pytest.mark.parametrize("change", ["truncated", "replaced by another file"])
def test_a_truncated_or_replaced_followed_file_is_an_error(tmp_path, change):
    follow = Follow(tmp_path)
    follow.feed.write_bytes(lines([*CITY, CASE]))
    process = follow.start()
    try:
        wait_for(lambda: follow.contacts() == {"P2", "P3", "P4"}, "the first lines", process)
        if change == "truncated":
            follow.feed.write_bytes(lines(CITY[:2]))
        else:
            (tmp_path / "new.jsonl").write_bytes(lines([*CITY, CASE, ride("P5", "10B")]))
            os.replace(tmp_path / "new.jsonl", follow.feed)
        code = process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = follow.stderr.read_text()
    assert code == 2 and f"tracer: error: followed input {follow.feed} was {change}" in stderr


def test_a_state_of_a_run_without_follow_is_followed_from_where_it_stopped(tmp_path):
    """The checkpoint of one stream (input 2 being read, input 1 read whole) becomes one per input;
    a line added to input 1 is numbered after the lines that run read."""
    follow = Follow(tmp_path)
    follow.feed.write_bytes(lines(CITY) + b"\n")  # a blank line is a line too
    follow.followups.write_bytes(lines([CASE]))
    command = ["run", str(follow.feed), str(follow.followups), "--out", str(follow.out), "--state",
               str(follow.state), "--quiet"]
    assert main(command) == 0
    append(follow.feed, b"{broken\n" + lines([ride("P6", "10C")]))
    process = follow.start()
    try:
        wait_for(lambda: "P6" in follow.contacts(), "a line added to the input read whole", process)
    finally:
        code, stdout, stderr = follow.stop(process)
    assert code == 0 and lines_read(stdout) == 2, stderr
    (dead,) = [orjson.loads(line) for line in (follow.out / "dead-letter.jsonl").read_bytes().splitlines()]
    assert (dead["source"], dead["line"]) == (str(follow.feed), 8)
    assert_same_as_one_run_without_follow(follow)


@pytest.mark.parametrize("problem", ["stdin", "workers"])
def test_follow_refuses_stdin_and_several_workers(tmp_path, capsys, problem):
    (tmp_path / "feed.jsonl").write_bytes(lines(CITY))
    handler = signal.getsignal(signal.SIGINT)
    source, extra = ("-", []) if problem == "stdin" else (str(tmp_path / "feed.jsonl"), ["--workers", "2"])
    assert main(["run", source, "--out", str(tmp_path / "out"), "--follow", *extra]) == 2
    assert "tracer: error: --follow" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is handler  # put back


def test_reader_follows_a_file_as_it_grows(tmp_path):
    """At the file's end for now a line with no bytes; a half line is held until its newline."""
    path = tmp_path / "feed.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b"')
    reader = LineReader(str(path), 0, 0, 100, follow=True)
    followed = iter(reader)
    assert next(followed) == (1, 9, b'{"a": 1}', False)
    assert next(followed)[2] == b"" and reader.incomplete == 4
    assert next(followed)[2] == b""  # still nothing
    append(path, b': 2}\n\n{"c": 3}\n')
    assert [next(followed) for _ in range(3)] == [(2, 18, b'{"b": 2}', False), (4, 28, b'{"c": 3}', False),
                                                  (4, 28, b"", False)]
    assert reader.incomplete == 0 and reader.fingerprint(28) == (28, hashlib.sha256(path.read_bytes()).hexdigest())
    path.write_bytes(b"{}\n")
    with pytest.raises(InputError, match="was truncated: it has 3 bytes, and 28 were read"):
        next(followed)


def test_a_followup_appended_by_an_office_changes_the_views_of_the_running_state(tmp_path: Path) -> None:
    """The loop the console closes: an office's follow-up appended to the followed file is applied
    by the running process, its status change is written, and the call list read from the live
    state (read-only, beside the run) shows it."""
    follow = Follow(tmp_path)
    follow.feed.write_bytes(lines([*CITY, CASE]))
    process = follow.start()
    try:
        wait_for(lambda: "P2" in follow.contacts(), "the case's contacts", process)
        released = {"type": "followup", "person_id": "P2", "outcome": "released", "at": "2020-02-20T10:00:00+08:00",
                    "by": "310101002"}
        append(follow.followups, orjson.dumps(released) + b"\n")

        def released_p2() -> bool:
            path = follow.out / "status.jsonl"
            records = [orjson.loads(line) for line in path.read_bytes().split(b"\n")[:-1]] if path.exists() else []
            return any(r["person_id"] == "P2" and r["color"] == "green" for r in records)

        wait_for(released_p2, "P2's status turning green", process)
        listed = subprocess.run([sys.executable, "-m", "tracer.cli", "calllist", "--state", str(follow.state),
                                 "--subdistrict", "310101002", "--format", "json"], cwd=ROOT, capture_output=True,
                                check=True)
        row = next(row for row in orjson.loads(listed.stdout) if row["person_id"] == "P2")
        assert row["followup"]["outcome"] == "released" and row["color"] == "green"
    finally:
        code, _, stderr = follow.stop(process)
    assert code == 0, stderr
