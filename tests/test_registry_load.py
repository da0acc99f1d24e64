"""`tracer registry load`: a registry bulk-loaded before the run gives the run's own answer."""

from __future__ import annotations

import orjson

from tests.builders import case, lines, person, trip
from tracer.cli import main

REGISTRY = [person("P2", "310101002"), person("P3", "310104003"), person("P2", "310104003")]
TRAVEL = [trip("P1", seat="10A", trip_id="t1"), trip("P2", seat="12B", trip_id="t2"),
          trip("P3", seat="11A", trip_id="t3"), case("C1", "P1")]


def contacts(out) -> list[dict]:
    return [orjson.loads(line) for line in (out / "contacts.jsonl").read_bytes().splitlines()]


def test_a_loaded_registry_gives_what_the_same_residents_in_the_run_give(tmp_path):
    (tmp_path / "registry.jsonl").write_bytes(lines(REGISTRY))
    (tmp_path / "travel.jsonl").write_bytes(lines(TRAVEL))
    (tmp_path / "all.jsonl").write_bytes(lines([*REGISTRY, *TRAVEL]))
    state, letters = tmp_path / "state", tmp_path / "letters.jsonl"
    assert main(["registry", "load", str(tmp_path / "registry.jsonl"), "--state", str(state),
                 "--dead-letters", str(letters), "--quiet"]) == 0
    assert letters.read_bytes() == b""
    assert main(["run", str(tmp_path / "travel.jsonl"), "--state", str(state), "--out", str(tmp_path / "loaded"),
                 "--quiet"]) == 0
    assert main(["run", str(tmp_path / "all.jsonl"), "--out", str(tmp_path / "inline"), "--quiet"]) == 0
    loaded = contacts(tmp_path / "loaded")
    assert {a["contact_person_id"]: a["subdistrict"] for a in loaded} == {"P2": "310104003", "P3": "310104003"}
    assert loaded == contacts(tmp_path / "inline")
    assert (tmp_path / "loaded" / "alerts" / "310104003.jsonl").exists()


def test_lines_that_are_not_residents_are_dead_letters(tmp_path):
    source = tmp_path / "registry.jsonl"
    source.write_bytes(lines([person("P1", "310101002"), trip("P1")]) + b"{broken\n"
                       + lines([person("P9", "999999999")]))
    letters = tmp_path / "letters.jsonl"
    assert main(["registry", "load", str(source), "--state", str(tmp_path / "s"), "--dead-letters", str(letters),
                 "--quiet"]) == 0
    records = [orjson.loads(line) for line in letters.read_bytes().splitlines()]
    assert [(r["line"], r.get("severity")) for r in records] == [(2, None), (3, None), (4, "warning")]
    assert "person events only, not trip" in records[0]["reason"]
    assert "broken JSON" in records[1]["reason"]
    assert "not in the subdistrict list" in records[2]["reason"]


def test_a_state_with_live_alerts_is_refused(tmp_path, capsys):
    (tmp_path / "travel.jsonl").write_bytes(lines(TRAVEL))
    (tmp_path / "registry.jsonl").write_bytes(lines(REGISTRY))
    state = tmp_path / "state"
    assert main(["run", str(tmp_path / "travel.jsonl"), "--state", str(state), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    assert main(["registry", "load", str(tmp_path / "registry.jsonl"), "--state", str(state),
                 "--dead-letters", str(tmp_path / "letters.jsonl")]) == 2
    assert "has live alerts" in capsys.readouterr().err
    assert not (tmp_path / "letters.jsonl").exists()


def test_the_dead_letters_never_overwrite_an_input(tmp_path, capsys):
    source = tmp_path / "registry.jsonl"
    source.write_bytes(lines(REGISTRY))
    assert main(["registry", "load", str(source), "--state", str(tmp_path / "s"), "--dead-letters", str(source)]) == 2
    assert source.read_bytes() == lines(REGISTRY)
