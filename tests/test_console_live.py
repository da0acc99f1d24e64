"""Live, end to end: `tracer run --follow` and `tracer serve` as two processes, as docs/console.md
starts them. A line appended to the run's input reaches the open page of its own office over
server-sent events and no other office's; an office's action flows back through the run into its
rows and KPIs; the console's log names no one.

Nothing here asserts timing: each wait polls with a generous timeout. "No event for the other
office" is checked by when events came: every event an office got came after a change of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.console import PERSON_IDS, B, World, append, check_live_updates, live_pages, make_world, process, wait_for


def test_alerts_and_actions_reach_their_own_office_page_only(tmp_path: Path) -> None:
    world: World = make_world(tmp_path, traced=False)
    world.config.write_text(world.config.read_text() + "\n[runtime]\nconsole_nice = 5\n")  # the run ignores it
    with process([*world.run_args()[:-1], "--follow"], tmp_path / "run.err") as run:
        wait_for(lambda: (world.out / "alerts" / f"{B}.jsonl").exists() or run.poll() is not None, "the first alerts")
        serve = ["serve", "--state", str(world.state), "--out", str(world.out), "--users", str(world.users),
                 "--followups", str(world.followups), "--port", "0", "--config", str(world.config)]
        log = tmp_path / "serve.err"
        with live_pages(serve, log) as live:
            assert os.getpriority(os.PRIO_PROCESS, live.console.pid) == min(os.getpriority(os.PRIO_PROCESS, 0) + 5, 19)
            check_live_updates(lambda data: append(world.feed, data), live)
            metrics = live.office_a.get("/metrics").text
        assert "tracer_console_sse_clients 2" in metrics
        assert "tracer_console_followups_appended_total 1" in metrics
        assert "tracer_console_followups_repeated_total 1" in metrics
    assert live.console.returncode == 0 and run.returncode == 0, (log.read_text(), (tmp_path / "run.err").read_text())
    logged = log.read_text()
    assert "GET /office/{code}/events 200" in logged and "POST /office/{code}/followups 200" in logged
    assert not [found for found in (*PERSON_IDS, "PA3", "PB2") if found in logged]


@pytest.mark.parametrize("problem", ["no state", "another output folder"])
def test_serve_refuses_a_state_it_cannot_show(tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str) -> None:
    from tracer.cli import main

    world = make_world(tmp_path, traced=problem != "no state")
    out = tmp_path / "elsewhere" if problem == "another output folder" else world.out
    code = main(["serve", "--state", str(world.state), "--out", str(out), "--users", str(world.users),
                 "--followups", str(world.followups)])
    error = capsys.readouterr().err
    assert code == 2
    assert ("holds no tracer state" if problem == "no state" else "is the state of the run writing") in error
