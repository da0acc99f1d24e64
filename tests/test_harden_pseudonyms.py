"""A pseudonymised contacts stream gives no one back (issue 12, items 3 and 12).

The dictionary attack of the review: take a pseudonymised stream and every person id of the
city, hash each candidate as tracer would, and look for the stream's values among the hashes.
Then the key: it must be real (entropy), and a key without ``--pseudonymize`` is refused.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.builders import case, lines, person, trip
from tracer.alerts import alert_id, fold
from tracer.errors import ConfigError
from tracer.privacy import Pseudonymizer, load_key
from tracer.simulate import generate

ROOT = Path(__file__).resolve().parents[1]
KEY = "a-research-sharing-key-of-32-bytes!"
ALGORITHMS = sorted(name for name in hashlib.algorithms_guaranteed if not name.startswith("shake"))


def tracer(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracer.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def records(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The review's city, run twice: plainly and pseudonymised."""
    root = tmp_path_factory.mktemp("city")
    generate(persons=2000, days=1, cases=5, seed=7, out_dir=root, truth=False)
    env = {**os.environ, "TRACER_PSEUDONYM_KEY": KEY}
    for name, extra in (("plain", []), ("pseudo", ["--pseudonymize"])):
        done = tracer("run", str(root / "events.jsonl"), "--out", str(root / name), "--quiet", *extra, env=env)
        assert done.returncode == 0, done.stderr
    return root


def _events(root: Path) -> Iterator[dict]:
    for line in (root / "events.jsonl").read_bytes().splitlines():
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict):
            yield event


def _candidates(root: Path) -> list[str]:
    """What an attacker lists: every person id of the input (registry, riders, cases) and case ids."""
    found = set()
    for event in _events(root):
        for name in ("person_id", "case_id", "exposure_id"):
            if isinstance(event.get(name), str):
                found.add(event[name])
    return sorted(found)


def _digests(text: str) -> Iterator[str]:
    """``text`` through every public hash tracer could have used, in hex."""
    data = text.encode()
    for name in ALGORITHMS:
        yield hashlib.new(name, data).hexdigest()


def _alert_ids(record: dict, via: str | None, contact: str) -> Iterator[str]:
    """The alert ids an attacker tries for ``contact``: the public function, each source kind, and
    the same parts hashed without a kind (the layout of the id before kinds were hashed)."""
    fields = (record["mode"], record["service"], record["date"])
    for kind in ("case", "exposure"):
        yield alert_id(kind, record["case_id"], contact, *fields, via)
    parts = (record["case_id"], contact, *fields) + (() if via is None else (via,))
    yield hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def test_a_dictionary_of_person_ids_recovers_no_one(city: Path) -> None:
    plain, pseudo = records(city / "plain" / "contacts.jsonl"), records(city / "pseudo" / "contacts.jsonl")
    assert len(plain) == len(pseudo) > 100
    candidates = _candidates(city)
    by_digest = {digest[:size]: who for who in candidates for digest in _digests(who) for size in (16, 20)}
    by_digest.update((who, who) for who in candidates)
    recovered = []
    tried: dict[tuple, dict[str, str]] = {}  # one dictionary per (source, service day, via)
    for line, (truth, record) in enumerate(zip(plain, pseudo, strict=True), 1):
        for name in ("case_person_id", "contact_person_id", "via_person_id"):
            value = record[name]
            if value is not None and (value in by_digest or value.removeprefix("ps:") in by_digest):
                recovered.append((line, name))
        # The attacker is even told the real close contact of a secondary alert.
        group = (record["case_id"], record["mode"], record["service"], record["date"], truth["via_person_id"])
        if group not in tried:
            via = truth["via_person_id"]
            tried[group] = {made: who for who in candidates for made in _alert_ids(record, via, who)}
        if record["alert_id"] in tried[group]:
            recovered.append((line, "alert_id"))
    assert recovered == [], f"{len(recovered)} pseudonymised values recovered, e.g. {recovered[:5]}"


def test_pseudonymised_alert_ids_fold_as_the_real_ones_and_link_to_no_queue(city: Path) -> None:
    pseudonyms = Pseudonymizer(KEY.encode())
    live = fold(records(city / "plain" / "contacts.jsonl"))
    shown = fold(records(city / "pseudo" / "contacts.jsonl"))
    assert shown == {alert["alert_id"]: alert for alert in map(pseudonyms.alert, live.values())}
    queued = {r["alert_id"] for path in (city / "pseudo" / "alerts").iterdir() for r in records(path)}
    assert queued and queued <= live.keys() and not queued & shown.keys()  # queues keep the real ids


# -- the key (item 12) ---------------------------------------------------------------------------

EVENTS = lines([person("P2", "310101002"), trip("P1", seat="10A"), trip("P2", seat="12B"), case("C1", "P1")])


def _run(tmp_path: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "e.jsonl").write_bytes(EVENTS)
    clean = {k: v for k, v in os.environ.items() if k != "TRACER_PSEUDONYM_KEY"}
    return tracer("run", str(tmp_path / "e.jsonl"), "--out", str(tmp_path / "out"), "--quiet", *extra,
                  env={**clean, **(env or {})})


def test_a_key_file_without_pseudonymize_is_refused(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY)
    done = _run(tmp_path, "--key-file", str(tmp_path / "key"))
    assert done.returncode == 2
    assert done.stderr == "tracer: error: --key-file without --pseudonymize: the contacts stream would keep real ids\n"
    assert not (tmp_path / "out").exists()


def test_the_worker_refuses_a_key_file_without_pseudonymize_before_connecting(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY)
    done = tracer("worker", "--broker", "127.0.0.1:9", "--state", str(tmp_path / "s"), "--key-file",
                  str(tmp_path / "key"), timeout=60)
    assert (done.returncode, done.stderr.splitlines()) == (
        2, ["tracer: error: --key-file without --pseudonymize: the contacts stream would keep real ids"])


def test_a_key_variable_without_pseudonymize_is_said(tmp_path: Path) -> None:
    done = _run(tmp_path, env={"TRACER_PSEUDONYM_KEY": KEY})
    assert done.returncode == 0
    assert "TRACER_PSEUDONYM_KEY is set but --pseudonymize is not" in done.stderr
    assert "P2" in (tmp_path / "out" / "contacts.jsonl").read_text()


WEAK = [
    b" " * 16,
    b" \t\n" * 8,
    b"abcdefghijklmno",  # 15 bytes
    b"abcdefghijklmno \n",  # 15 once blanks are left out
    b"abcdefg hijklmn o",  # inner blanks do not count either
    b"abcdefgaaaaaaaaaaaaaaaaaa",  # 7 distinct values
    b"a" * 64,
]
STRONG = [b"abcdefghabcdefgh", b"abcdefgh abcdefgh\n", b"  0123456789abcdef  ", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8" * 2]


@pytest.mark.parametrize("key", WEAK + STRONG)
def test_the_key_needs_sixteen_non_blank_bytes_of_eight_values_from_either_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: bytes
) -> None:
    (tmp_path / "key").write_bytes(key)
    monkeypatch.setenv("TRACER_PSEUDONYM_KEY", os.fsdecode(key))
    for key_file in (tmp_path / "key", None):
        if key in WEAK:
            with pytest.raises(ConfigError, match="at least 16 non-blank bytes with 8 distinct"):
                load_key(key_file)
        else:
            assert load_key(key_file) == key.strip()


def test_weak_key_is_one_line_and_same_key_same_pseudonyms_from_file_or_variable(tmp_path: Path) -> None:
    (tmp_path / "weak").write_bytes(b" " * 16)
    done = _run(tmp_path, "--pseudonymize", "--key-file", str(tmp_path / "weak"))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "non-blank" in done.stderr
    (tmp_path / "key").write_text(KEY + "\n")
    assert _run(tmp_path, "--pseudonymize", "--key-file", str(tmp_path / "key")).returncode == 0
    from_file = (tmp_path / "out" / "contacts.jsonl").read_bytes()
    assert _run(tmp_path, "--pseudonymize", env={"TRACER_PSEUDONYM_KEY": KEY}).returncode == 0
    assert (tmp_path / "out" / "contacts.jsonl").read_bytes() == from_file and b"ps:" in from_file


def test_a_key_that_is_not_utf8_or_is_not_a_key_file(tmp_path: Path) -> None:
    key = b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8" * 2
    env = {**os.environb, b"TRACER_PSEUDONYM_KEY": key}
    (tmp_path / "e.jsonl").write_bytes(EVENTS)
    done = subprocess.run(
        [sys.executable, "-m", "tracer.cli", "run", str(tmp_path / "e.jsonl"), "--out", str(tmp_path / "o"),
         "--quiet", "--pseudonymize"], cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)
    assert (done.returncode, done.stderr) == (0, b"")
    (tmp_path / "big").write_bytes(bytes(range(256)) * 20)  # a file that is not a key
    done = _run(tmp_path, "--pseudonymize", "--key-file", str(tmp_path / "big"))
    assert done.returncode == 2 and "larger than 4,096 bytes" in done.stderr
