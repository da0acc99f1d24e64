"""`tracer demo --live` as a user starts it: a process that starts `tracer run --follow` and `tracer serve`,
feeds the city, prints the console's URL and the demo accounts, and stops both on Ctrl-C.

Nothing here asserts timing: each wait polls with a generous timeout.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.console import ROOT, TIMEOUT, login, wait_for
from tracer.cli.live import _schedule

ACCOUNT = re.compile(r"^ +(office1|supervisor|epidemiologist) +(\S+) ")


def children_of(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").glob("*/children") for child in task.read_text().split()]


def test_live_demo_serves_the_city_as_it_arrives_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tracer.cli", "demo", "--live", "--out", str(tmp_path), "--persons", "3000",
               "--days", "1", "--cases", "6", "--speed", "100000", "--port", "0"]
    demo = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(iter(demo.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(lambda: any("console " in line for line in printed) or demo.poll() is not None, "the URL")
        url = re.search(r"console +(http://127\.0\.0\.1:\d+/)", "".join(printed))
        assert url, "".join(printed) + demo.stderr.read()  # type: ignore[union-attr]
        wait_for(lambda: any(line.startswith("  files") for line in printed), "the accounts")
        passwords = {found[1]: found[2] for line in printed if (found := ACCOUNT.match(line))}
        office = re.search(r"office1 +\S+ +street office (\d{9})", "".join(printed)).group(1)  # type: ignore[union-attr]
        assert set(passwords) == {"office1", "supervisor", "epidemiologist"}
        running = children_of(demo.pid)
        assert len(running) == 2
        with httpx.Client(base_url=url.group(1), timeout=TIMEOUT) as client:
            assert client.get("/healthz").json()["status"] == "ok"
            assert login(client, "office1", "a wrong password").status_code != 303
            assert login(client, "office1", passwords["office1"]).status_code == 303
            wait_for(lambda: client.get(f"/office/{office}/rows").json()["rows"], "office1's call list")
            assert client.get("/dashboard").status_code == 403  # an office account, not a supervisor
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(TIMEOUT)
    reader.join(TIMEOUT)
    said = "".join(printed)
    assert demo.returncode == 0, said + demo.stderr.read()  # type: ignore[union-attr]
    assert "tracer run exit 0, tracer serve exit 0" in said
    assert not [pid for pid in running if Path(f"/proc/{pid}").exists()]
    fed = (tmp_path / "input" / "feed.jsonl").read_bytes()  # the city in its order, as far as it went
    assert b'{"type":"case"' in fed and (tmp_path / "input" / "events.jsonl").read_bytes().startswith(fed)
    assert b'{"type":"followup"' not in fed  # the offices at the console make the follow-ups


def test_the_schedule_follows_event_time_and_never_runs_back() -> None:
    lines = [b'{"type":"case","reported_at":"2020-01-16T10:00:00+08:00"}\n',
             b'{"type":"trip","board_time":"2020-01-16T10:30:00+08:00"}\n',
             b'{"type":"person","person_id":"P1","subdistrict":"310101002"}\n',  # no time: with the one before
             b'{"type":"trip","board_time":"2020-01-16T10:10:00+08:00"}\n',  # late: not earlier than before
             b'{"type":"trip","board_t\n',  # malformed
             b'{"type":"case","reported_at":"2020-01-16T03:00:00Z"}\n']
    assert _schedule(lines) == [0.0, 1800.0, 1800.0, 1800.0, 1800.0, 3600.0]
