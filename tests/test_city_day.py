"""`python -m benchmarks city-day` at a tiny scale: the DuckDB peer must find the engine's direct
contacts, and the check must see it when it does not. What keeps the peer honest (no timing here)."""

from __future__ import annotations

from dataclasses import replace

from benchmarks import city_day, duckdb_peer
from tracer.cli import main
from tracer.settings import load_settings

SCALE, CASES = 0.001, 100  # 25,000 residents, a dense outbreak: close and general contacts in every mode


def test_the_peer_finds_the_engines_direct_contacts(tmp_path, capsys):
    result = city_day.run(SCALE, tmp_path, repeat=1, tracer_args="", cases=CASES)
    contacts = result["contacts"]
    assert result["same_contact_set"] and contacts["mismatches"] == 0, contacts
    assert set(contacts["by_mode"]) == {f"{mode}.{level}" for mode in ("flight", "train", "metro")
                                        for level in ("close", "general")}
    assert "same contact set: True" in capsys.readouterr().out


def test_a_peer_that_reads_a_rule_otherwise_is_a_mismatch(tmp_path):
    events, _ = city_day.day_file(tmp_path, SCALE, CASES)
    assert main(["run", str(events), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    engine = city_day.tracer_contacts(tmp_path / "out")
    settings = load_settings()
    for rules, differs in ((replace(settings.rules, min_overlap_seconds=300), "only_tracer"),
                           (replace(settings.rules, flight_row_span=2), "level_differs")):
        duckdb_peer.run(events, tmp_path / "peer.jsonl", replace(settings, rules=rules))
        found = city_day.compare(engine, city_day.peer_contacts(tmp_path / "peer.jsonl"))
        assert found[differs] > 0 and found["mismatches"] == found[differs], (rules, found)
