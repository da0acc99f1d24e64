"""Live, end to end: `tracer run --follow` and `tracer serve` as two processes, as docs/console.md
starts them. A line appended to the run's input reaches the open page of its own office over
server-sent events and no other office's; an office's action flows back through the run into its
rows and KPIs; the console's log names no one.

Nothing here asserts timing: each wait polls with a generous timeout. "No event for the other
office" is checked by when events came: every event an office got came after a change of its own.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.builders import lines, person, trip
from tests.console import (
    FLIGHT_A,
    FLIGHT_B,
    PERSON_IDS,
    TIMEOUT,
    A,
    B,
    World,
    act,
    console_url,
    login,
    make_world,
    process,
    wait_for,
)

QUIET = 1.0  # how long a change is given to show up where it must not, before the next one


class Listener:
    """One office page's event stream, read in a thread: when each ``changed`` event came."""

    def __init__(self, url: str, account: str, office: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=TIMEOUT)
        assert login(self.client, account).status_code == 303
        self.office, self.times, self.ready = office, [], threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        try:
            with self.client.stream("GET", f"/office/{self.office}/events") as answer:
                for line in answer.iter_lines():
                    if line == ": listening":
                        self.ready.set()
                    elif line == "event: changed":
                        self.times.append(time.monotonic())
        except httpx.HTTPError:
            pass  # the test closed the client

    def close(self) -> None:
        self.client.close()


def append(path: Path, data: bytes) -> float:
    with path.open("ab") as target:
        target.write(data)
    return time.monotonic()


def test_alerts_and_actions_reach_their_own_office_page_only(tmp_path: Path) -> None:
    world: World = make_world(tmp_path, traced=False)
    config = ["--config", str(world.config)]
    with process([*world.run_args()[:-1], "--follow"], tmp_path / "run.err") as run:
        wait_for(lambda: (world.out / "alerts" / f"{B}.jsonl").exists() or run.poll() is not None, "the first alerts")
        serve = ["serve", "--state", str(world.state), "--out", str(world.out), "--users", str(world.users),
                 "--followups", str(world.followups), "--port", "0", *config]
        log = tmp_path / "serve.err"
        with process(serve, log) as console:
            url = console_url(log, console)
            page_a, page_b = Listener(url, "office-a", A), Listener(url, "office-b", B)
            try:
                wait_for(lambda: page_a.ready.is_set() and page_b.ready.is_set(), "both pages listening")
                with httpx.Client(base_url=url, timeout=TIMEOUT) as office_a:
                    assert login(office_a, "office-a").status_code == 303
                    check_live_updates(world, office_a, page_a, page_b)
                    metrics = office_a.get("/metrics").text
                assert "tracer_console_sse_clients 2" in metrics
                assert "tracer_console_followups_appended_total 1" in metrics
            finally:
                page_a.close()
                page_b.close()
    assert console.returncode == 0 and run.returncode == 0, (log.read_text(), (tmp_path / "run.err").read_text())
    logged = log.read_text()
    assert "GET /office/{code}/events 200" in logged and "POST /office/{code}/followups 200" in logged
    assert not [found for found in (*PERSON_IDS, "PA3", "PB2") if found in logged]


def check_live_updates(world: World, office_a: httpx.Client, page_a: Listener, page_b: Listener) -> None:
    def rows() -> dict[str, dict]:
        found = office_a.get(f"/office/{A}/rows").json()
        return {row["person_id"]: row for row in found["rows"]} | {"kpis": found["kpis"]}

    # A new close contact in office A: A's page hears of it, and its rows hold them.
    first = append(world.feed, lines([person("PA3", A), trip("PA3", seat="21A", trip_id="t-PA3", **FLIGHT_A)]))
    wait_for(lambda: page_a.times, "office A's event")
    assert "PA3" in rows()
    time.sleep(QUIET)
    # Then one in office B: B's page hears of it (and, above, of nothing before it).
    second = append(world.feed, lines([person("PB2", B), trip("PB2", seat="6B", trip_id="t-PB2", **FLIGHT_B)]))
    wait_for(lambda: page_b.times, "office B's event")
    time.sleep(QUIET)
    # Office A records a call: the run applies it, A's page hears of it, the row and the KPIs show it.
    before = rows()["kpis"]["reached_2h"]
    third = time.monotonic()
    assert act(office_a, A, "PA1").json() == {"written": True}
    wait_for(lambda: any(moment > third for moment in page_a.times), "office A's event for its own action")
    after = rows()
    assert after["PA1"]["followup"]["outcome"] == "reached" and after["kpis"]["reached_2h"] == before + 1
    time.sleep(QUIET)
    assert all(first < moment < second or moment > third for moment in page_a.times), page_a.times
    assert page_b.times and all(second < moment < third for moment in page_b.times), page_b.times


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
