"""An alert on an open office page: `tracer run --follow` and `tracer serve` as two processes over a
generated city, ``--offices`` office pages open over server-sent events (``--clients`` streams in
all, spread over those offices), and a new close contact of a traced case appended to the feed for
one office at a time.

For each, the time from the append to: its alert line in the office's queue file (the runner's
part: the baseline, polled every millisecond), the ``changed`` event on that office's page, and the
page's rows fetched again holding the new contact (what the office sees).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.common import cpu_seconds, percentile_row, percentiles, save, table
from streams.console.users import Account, add_user, hash_password
from tracer.places import subdistricts
from tracer.simulate import generate

PASSWORD = "benchmark password"
TIMEOUT = 60.0
TRACER = [sys.executable, "-m", "tracer.cli"]
IDLE_SECONDS = 10.0  # the console's CPU with every stream open and nothing changing


def _settled(out: Path, quiet: float = 2.0) -> None:
    """Wait until the run has written everything it had to read (its outputs stop growing)."""
    last, since = None, time.monotonic()
    while time.monotonic() - since < quiet:
        sizes = sorted((path.name, path.stat().st_size) for path in out.rglob("*.jsonl"))
        if sizes != last:
            last, since = sizes, time.monotonic()
        time.sleep(0.1)


def _case_ride(out: Path) -> dict[str, Any]:
    """A ride of a traced case, from one of its close alerts: where a new rider is a close contact
    (on a flight the case's seat row, elsewhere its carriage)."""
    for line in (out / "contacts.jsonl").read_bytes().splitlines():
        alert = orjson.loads(line)
        placed = alert["case_seat"] if alert["mode"] == "flight" else alert["case_carriage"]
        if alert["action"] == "add" and alert["level"] == "close" and alert["via_person_id"] is None and placed:
            return alert
    raise SystemExit("the generated city has no close contact: try more --persons or --cases")


def _contact(alert: dict[str, Any], number: int, office: str) -> bytes:
    """A new resident of ``office`` and their ride beside the case: two lines, one write."""
    person = f"BENCH-{number}"
    ride = {"type": "trip", "trip_id": f"bench-{number}", "person_id": person, "mode": alert["mode"],
            "service": alert["service"], "date": alert["date"], "carriage": alert["case_carriage"],
            "board_time": alert["exposure_start"], "alight_time": alert["exposure_end"]}
    if alert["mode"] == "flight":
        ride["seat"] = re.match(r"\d+", alert["case_seat"]).group() + "K"  # type: ignore[union-attr]
    resident = {"type": "person", "person_id": person, "subdistrict": office}
    return orjson.dumps(resident) + b"\n" + orjson.dumps(ride) + b"\n"


class Appears:
    """When a line holding ``needle`` first appears in a file (polled every millisecond)."""

    def __init__(self, path: Path, needle: bytes, timeout: float = TIMEOUT) -> None:
        self.path, self.needle, self.at = path, needle, 0.0
        self.start = path.stat().st_size if path.exists() else 0
        threading.Thread(target=self._watch, args=(timeout,), daemon=True).start()

    def _watch(self, timeout: float) -> None:
        deadline, seen = time.monotonic() + timeout, self.start
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError):
                if (size := self.path.stat().st_size) > seen:  # read only when it has grown
                    seen = size
                    with self.path.open("rb") as source:
                        source.seek(self.start)
                        if self.needle in source.read():
                            self.at = time.monotonic()
                            return
            time.sleep(0.001)


async def _listen(client: httpx.AsyncClient, office: str, heard: dict[str, list[float]], ready: asyncio.Event) -> None:
    async with client.stream("GET", f"/office/{office}/events") as answer:
        async for line in answer.aiter_lines():
            if line == ": listening":
                ready.set()
            elif line == "event: changed":
                heard[office].append(time.monotonic())


async def login(url: str, name: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=TIMEOUT)
    page = await client.get("/login")
    token = re.search(r'name="csrf" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    answer = await client.post("/login", data={"username": name, "password": PASSWORD, "csrf": token})
    assert answer.status_code == 303, answer.text
    return client


async def _probe(url: str, feed: Path, out: Path, offices: list[str], clients: int, probes: int,
                 console: int) -> dict[str, Any]:
    alert = _case_ride(out)
    logins = await asyncio.gather(*(login(url, f"o{index}") for index in range(len(offices))))
    listeners = [(logins[index % len(offices)], offices[index % len(offices)]) for index in range(clients)]
    heard: dict[str, list[float]] = {office: [] for office in offices}
    readies = [asyncio.Event() for _ in listeners]
    tasks = [asyncio.create_task(_listen(client, office, heard, ready))
             for (client, office), ready in zip(listeners, readies, strict=True)]
    await asyncio.gather(*(ready.wait() for ready in readies))
    found: dict[str, Any] = {"queue": [], "event": [], "rows": []}
    used, began = cpu_seconds(console), time.monotonic()
    await asyncio.sleep(IDLE_SECONDS)
    found["idle_cpu"] = (cpu_seconds(console) - used) / (time.monotonic() - began)
    used, began = cpu_seconds(console), time.monotonic()
    for number in range(probes):
        office, client = offices[number % len(offices)], logins[number % len(offices)]
        data = _contact(alert, number, office)
        queue = Appears(out / "alerts" / f"{office}.jsonl", f'"BENCH-{number}"'.encode())
        before = len(heard[office])
        with feed.open("ab") as target:
            target.write(data)
        sent = time.monotonic()
        while len(heard[office]) == before:
            await asyncio.sleep(0.001)
            if time.monotonic() - sent > TIMEOUT:
                raise SystemExit(f"no event for office {office} within {TIMEOUT:.0f} s")
        event = heard[office][before]
        while f"BENCH-{number}" not in (await client.get(f"/office/{office}/rows")).text:
            await asyncio.sleep(0.01)
        shown = time.monotonic()
        found["event"].append((event - sent) * 1000)
        found["rows"].append((shown - sent) * 1000)
        found["queue"].append((queue.at - sent) * 1000 if queue.at else None)
        await asyncio.sleep(0.3)  # one probe at a time
    found["probing_cpu"] = (cpu_seconds(console) - used) / (time.monotonic() - began)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(client.aclose() for client in logins))
    return found


def office_accounts(root: Path, offices: int) -> tuple[Path, list[str]]:
    """A users file with an office account ``o<n>`` (password ``PASSWORD``) for each of ``offices``
    street offices spread over the city's list; the file and the offices' codes."""
    codes = sorted(subdistricts())[:: max(1, len(subdistricts()) // offices)][:offices]
    users = root / "users.toml"
    for index, code in enumerate(codes):
        add_user(users, Account(f"o{index}", "office", code, hash_password(PASSWORD)))
    return users, codes


@contextlib.contextmanager
def serving(root: Path, state: Path, out: Path, users: Path, followups: Path,
            config: Path | None = None) -> Iterator[tuple[str, int]]:
    """``tracer serve`` over a run's state on a free port: its URL and process id, until SIGINT."""
    log = root / "serve.err"
    with log.open("wb") as errors:
        configured = ["--config", str(config)] if config is not None else []
        console = subprocess.Popen([*TRACER, "serve", "--state", str(state), "--out", str(out), "--users", str(users),
                                    "--followups", str(followups), "--port", "0", *configured], stderr=errors,
                                   env={**os.environ, "TRACER_SESSION_KEY": "b" * 40})
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (started := re.search(r"Uvicorn running on (http://\S+)", log.read_text())):
            if console.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the console did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield started.group(1), console.pid
    finally:
        console.send_signal(signal.SIGINT)
        console.wait(TIMEOUT)


def run(persons: int, days: int, cases: int, offices: int, clients: int, probes: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="tracer-console-"))
    generate(persons=persons, days=days, cases=cases, seed=3, out_dir=root, truth=False, followups=False)
    feed, followups, out, state = root / "events.jsonl", root / "followups.jsonl", root / "out", root / "state"
    followups.touch()
    users, codes = office_accounts(root, offices)
    runner = subprocess.Popen([*TRACER, "run", str(feed), str(followups), "--out", str(out), "--state", str(state),
                               "--follow", "--quiet"])
    try:
        _settled(out)
        with serving(root, state, out, users, followups) as (url, console):
            found = asyncio.run(_probe(url, feed, out, codes, max(clients, offices), probes, console))
    finally:
        runner.send_signal(signal.SIGINT)
        runner.wait(TIMEOUT)
    queue = [value for value in found["queue"] if value is not None]
    result = {"persons": persons, "offices": offices, "clients": max(clients, offices), "probes": probes,
              "queue_ms": percentiles(queue), "event_ms": percentiles(found["event"]),
              "rows_ms": percentiles(found["rows"]), "console_cpu_idle": found["idle_cpu"],
              "console_cpu_probing": found["probing_cpu"]}
    print(f"{probes} new close contacts, one at a time, {result['clients']} event streams open over {offices} offices;"
          f" the console's CPU, share of a core: {found['idle_cpu']:.1%} idle, {found['probing_cpu']:.1%} probing")
    print(table([["alert line in the office's queue file (the runner)", *percentile_row(queue)],
                 ["changed event on the office's page", *percentile_row(found["event"])],
                 ["the page's rows fetched again, holding the contact", *percentile_row(found["rows"])]],
                ["from the append to", "p50 ms", "p99 ms", "max ms"]))
    return result


def main(args: Any) -> None:
    result = run(args.persons or 20_000, args.days or 1, args.cases or 10, args.offices, args.clients or 50,
                 args.probes)
    print(f"results: {save('console', result)}")
