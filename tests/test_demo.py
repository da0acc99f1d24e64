"""`tracer demo` and `tracer generate` through the CLI."""

from __future__ import annotations

import re

from tracer.cli import main


def test_demo_agrees_with_the_oracle(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--persons", "3000", "--days", "1", "--cases", "6"]) == 0
    printed = capsys.readouterr().out
    assert "precision 1.0000, recall 1.0000" in printed and "close contacts by street office" in printed
    assert re.search(r"follow-ups +[1-9][0-9,]* by [1-9][0-9]* street offices: [0-9,]+ reached", printed)
    assert (tmp_path / "output" / "contacts.jsonl").stat().st_size > 0
    assert main(["demo", "--out", str(tmp_path), "--persons", "3000", "--days", "1", "--cases", "6"]) == 0  # re-run


def test_generate_command(tmp_path, capsys):
    assert main(["generate", "--persons", "500", "--days", "1", "--cases", "2", "--seed", "4",
                 "--out", str(tmp_path)]) == 0
    assert (tmp_path / "events.jsonl").exists() and (tmp_path / "truth.jsonl").exists()
