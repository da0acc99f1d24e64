"""What the console costs the run: `tracer run --follow`'s throughput on a city with `tracer serve`
beside it, holding ``--clients`` office pages open (server-sent events, each page fetching its rows
again on every event, as office.js does) and answering ``--lookups`` public same-trip lookups a
second, against the same run with no console at all; the two alternate, ``--pairs`` times.

Each trial is a new run: the city's registry goes into the feed first, and once the run has read it
(and, with the console, the pages are open and the lookups flowing) the rest of the city (its rides
and case reports) is appended at once with a refused line after it. The run's time is from that
append to the refused line's dead letter. The lookups are a mix of what the public types: clean and
messy service numbers and dates, the metro by line and board time, services nobody rode, and
questions that cannot be read; each is timed from its request to its whole answer, and is asked
from an address of its own (``X-Forwarded-For``, which uvicorn takes from a proxy on this machine)
so that the per-address limit does not answer in its place.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from statistics import median
from typing import Any

import orjson

from benchmarks.client import Connection
from benchmarks.common import cpu_seconds, percentile_row, percentiles, save, table
from benchmarks.console import TIMEOUT, TRACER, Appears, login, office_accounts, serving
from streams.console.app import SESSION_COOKIE
from streams.embedded import committed
from tracer.simulate import generate

PROBE = b'{"type":"probe"}\n'  # an unknown type: refused, its dead letter marks the end of the rest
WARM_SECONDS = 5.0  # pages open and lookups flowing before the rest of the city is appended
RUN_TIMEOUT = 600.0
_FULL_WIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}  # ASCII to full-width forms


def questions(rides: list[dict[str, Any]], rng: random.Random, count: int) -> list[tuple[str, dict[str, str]]]:
    """``count`` lookups (their kind and query) built from rides of the city, as people type them:
    a flight or train by its number (clean, or messy: ``mu 5101``, full-width, ``2020/1/15``,
    ``2020年1月15日``, ``05车厢``), the metro by line and board time, a service nobody rode, and a
    date that cannot be read."""
    metro = [ride for ride in rides if ride["mode"] == "metro"]
    numbered = [ride for ride in rides if ride["mode"] != "metro"]
    made = []
    for _ in range(count):
        kind = rng.choice(("clean", "messy", "messy", "line", "unknown", "unreadable"))
        ride = rng.choice(metro if kind == "line" else numbered)
        day, service = ride["date"], ride["service"]
        year, month, dom = (int(part) for part in day.split("-"))
        if kind == "clean":
            query = {"date": day, "service": service}
            if ride.get("carriage") is not None:
                query["carriage"] = str(ride["carriage"])
        elif kind == "messy":
            date = rng.choice((f"{year}/{month}/{dom}", f"{year}年{month}月{dom}日"))
            number = rng.choice((service.lower()[:2] + " " + service[2:], service.translate(_FULL_WIDTH)))
            query = {"date": date, "service": number}
            if ride.get("carriage") is not None:
                query["carriage"] = f"{ride['carriage']:02d}车厢"
        elif kind == "line":
            query = {"date": day, "line": f"{service.split('-')[0][1:]}号线", "board_time": ride["board_time"][11:16]}
        elif kind == "unknown":
            query = {"date": day, "service": "ZZ9999"}
        else:
            query = {"date": "next tuesday", "service": service}
        made.append((kind, query))
    return made


async def _page(url: str, cookie: str, office: str, ready: asyncio.Event, fetched: Counter[str]) -> None:
    """One office page: on every ``changed`` event its rows again, one fetch at a time (office.js)."""
    stream, rows = await Connection.open(url), await Connection.open(url)
    headers, pending = {"Cookie": cookie}, asyncio.Event()

    async def refresh() -> None:
        while True:
            await pending.wait()
            pending.clear()
            await rows.get(f"/office/{office}/rows", headers=headers)
            fetched["rows"] += 1

    refresher = asyncio.create_task(refresh())
    try:
        async for line in stream.events(f"/office/{office}/events", headers):
            if line == ": listening":
                ready.set()
            elif line == "event: changed":
                pending.set()
    finally:
        refresher.cancel()
        stream.close()
        rows.close()


async def _lookups(url: str, asked: list[tuple[str, dict[str, str]]], rate: float,
                   timed: list[tuple[float, str, int, float]]) -> None:
    """``rate`` lookups a second, each from an address of its own, without waiting for the answers
    (over as many connections as are busy at once)."""
    idle: list[Connection] = []

    async def ask(kind: str, query: dict[str, str], address: str) -> None:
        sent = time.monotonic()
        connection = idle.pop() if idle else await Connection.open(url)
        try:
            status, _ = await connection.get("/lookup", query, {"X-Forwarded-For": address})
        except (OSError, asyncio.IncompleteReadError):
            return  # the console stopped, after the trial: an answer cut off then is not timed
        timed.append((sent, kind, status, (time.monotonic() - sent) * 1000))
        idle.append(connection)

    began, pending = time.monotonic(), set()
    try:
        for number, (kind, query) in enumerate(asked):
            await asyncio.sleep(max(0.0, began + number / rate - time.monotonic()))
            task = asyncio.create_task(ask(kind, query, f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"))
            pending.add(task)
            task.add_done_callback(pending.discard)
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for connection in idle:
            connection.close()


class _Trial:
    """One run of the city (registry first, then the rest at once), with or without a console."""

    def __init__(self, root: Path, head: bytes, rest: bytes) -> None:
        self.root, self.head, self.rest = root, head, rest
        self.feed, self.followups = root / "feed.jsonl", root / "followups.jsonl"
        self.out, self.state = root / "out", root / "state"
        self.feed.write_bytes(head)
        self.followups.touch()

    def start(self) -> subprocess.Popen[bytes]:
        with (self.root / "run.err").open("wb") as errors:
            runner = subprocess.Popen([*TRACER, "run", str(self.feed), str(self.followups), "--out", str(self.out),
                                       "--state", str(self.state), "--follow", "--quiet"], stderr=errors)
        deadline = time.monotonic() + RUN_TIMEOUT
        while not committed(self.state) or not _idle(runner.pid):
            if runner.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the run did not read the registry")
            time.sleep(0.1)
        return runner

    def append_rest(self, pids: dict[str, int]) -> dict[str, float]:
        """Append the rest of the city; wait for its end's dead letter: seconds, and CPU seconds of ``pids``."""
        done = Appears(self.out / "dead-letter.jsonl", b"probe", RUN_TIMEOUT)
        used = {name: cpu_seconds(pid) for name, pid in pids.items()}
        sent = time.monotonic()
        with self.feed.open("ab") as target:
            target.write(self.rest + PROBE)
        while not done.at:
            time.sleep(0.01)
            if time.monotonic() - sent > RUN_TIMEOUT:
                raise SystemExit("the run did not finish the city")
        spent = {f"cpu_{name}": cpu_seconds(pid) - used[name] for name, pid in pids.items()}
        return {"seconds": done.at - sent, **spent}


def _decoded(line: bytes) -> dict[str, Any]:
    try:
        found = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}  # the simulator's malformed lines
    return found if isinstance(found, dict) else {}


def _idle(pid: int) -> bool:
    """Whether ``pid`` used under 2 % of a core over half a second (a followed run waiting for lines)."""
    used = cpu_seconds(pid)
    time.sleep(0.5)
    return cpu_seconds(pid) - used < 0.01


async def _with_console(trial: _Trial, runner: int, offices: list[str], clients: int, rate: float,
                        asked: list[tuple[str, dict[str, str]]], users: Path, config: Path) -> dict[str, Any]:
    with serving(trial.root, trial.state, trial.out, users, trial.followups, config) as (url, console):
        cookies = []
        for client in await asyncio.gather(*(login(url, f"o{index}") for index in range(len(offices)))):
            cookies.append(f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}")
            await client.aclose()
        readies, fetched = [asyncio.Event() for _ in range(clients)], Counter[str]()
        pages = [asyncio.create_task(_page(url, cookies[n % len(offices)], offices[n % len(offices)], ready, fetched))
                 for n, ready in enumerate(readies)]
        await asyncio.gather(*(ready.wait() for ready in readies))
        timed: list[tuple[float, str, int, float]] = []
        asking = asyncio.create_task(_lookups(url, asked, rate, timed))
        await asyncio.sleep(WARM_SECONDS)
        began = time.monotonic()
        found = await asyncio.to_thread(trial.append_rest, {"run": runner, "console": console, "harness": os.getpid()})
        ended = began + found["seconds"]
        asking.cancel()
        for page in pages:
            page.cancel()
        await asyncio.gather(asking, *pages, return_exceptions=True)
    found["rows_fetched"] = fetched["rows"]
    # (seconds after the append, kind, status, ms): before the append the run is idle
    found["lookups_idle"] = [(sent - began, *rest) for sent, *rest in timed if sent < began]
    found["lookups_busy"] = [(sent - began, *rest) for sent, *rest in timed if began <= sent < ended]
    return found


def _trial(root: Path, head: bytes, rest: bytes, console: bool, offices: list[str], clients: int, rate: float,
           asked: list[tuple[str, dict[str, str]]], users: Path, config: Path) -> dict[str, Any]:
    trial = _Trial(Path(tempfile.mkdtemp(prefix="trial-", dir=root)), head, rest)
    load = os.getloadavg()[0]
    runner = trial.start()
    try:
        if console:
            found = asyncio.run(_with_console(trial, runner.pid, offices, clients, rate, asked, users, config))
        else:
            time.sleep(WARM_SECONDS)
            found = trial.append_rest({"run": runner.pid, "harness": os.getpid()})
    finally:
        runner.send_signal(signal.SIGINT)
        runner.wait(TIMEOUT)
    lines = rest.count(b"\n")
    return {**found, "console": console, "lines": lines, "lines_per_second": lines / found["seconds"],
            "load_before": load, "load_after": os.getloadavg()[0]}


def run(persons: int, days: int, cases: int, offices: int, clients: int, rate: float, pairs: int,
        nice: int = 0) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="tracer-console-load-"))
    config = root / "serve.toml"  # tracer serve's
    config.write_text(f"[runtime]\nconsole_nice = {nice}\n")
    generate(persons=persons, days=days, cases=cases, seed=3, out_dir=root, truth=False, followups=False)
    lines = (root / "events.jsonl").read_bytes().splitlines(keepends=True)
    head, rest = b"".join(lines[:persons]), b"".join(lines[persons:])  # the registry comes first
    rides = [ride for ride in map(_decoded, lines[persons:]) if ride.get("type") == "trip" and  # not malformed
             ride.get("mode") in ("flight", "train", "metro") and {"service", "date", "board_time"} <= ride.keys()]
    users, codes = office_accounts(root, offices)
    asked = questions(rides, random.Random(5), 100_000)
    trials = []
    for pair in range(pairs):
        for console in (False, True) if pair % 2 == 0 else (True, False):
            trials.append(_trial(root, head, rest, console, codes, clients, rate, asked, users, config))
            print(f"  {'console' if console else 'alone  '}  {trials[-1]['lines_per_second']:,.0f} lines/s, "
                  f"load {trials[-1]['load_before']:.1f}", flush=True)
    return {**_report(trials, persons, clients, rate), "console_nice": nice}


def _report(trials: list[dict[str, Any]], persons: int, clients: int, rate: float) -> dict[str, Any]:
    alone = [one for one in trials if not one["console"]]
    served = [one for one in trials if one["console"]]
    ratios = [with_["lines_per_second"] / without["lines_per_second"]
              for with_, without in zip(served, alone, strict=True)]
    cpu_ratios = [with_["cpu_run"] / without["cpu_run"] for with_, without in zip(served, alone, strict=True)]
    idle = [one[3] for trial in served for one in trial["lookups_idle"]]
    busy = [one[3] for trial in served for one in trial["lookups_busy"]]
    statuses = Counter(f"{kind} {status}" for trial in served
                       for _, kind, status, _ in trial["lookups_idle"] + trial["lookups_busy"])
    print(f"tracer run on {trials[0]['lines']:,} lines (a {persons:,}-resident city after its registry), alone and "
          f"with the console holding {clients} pages open and {rate:g} lookups/s, alternating")
    print(table([[f"pair {n + 1}", f"{a['lines_per_second']:,.0f}", f"{s['lines_per_second']:,.0f}", f"{r:.3f}",
                  f"{s['cpu_run'] / a['cpu_run']:.3f}", f"{s['cpu_console']:.1f} / {s['seconds']:.1f}",
                  f"{s['cpu_harness']:.1f}", f"{s['rows_fetched']:,}",
                  f"{a['load_before']:.1f}, {s['load_before']:.1f}"]
                 for n, (a, s, r) in enumerate(zip(alone, served, ratios, strict=True))],
                ["", "alone lines/s", "with console", "ratio", "run CPU ratio", "console CPU s / wall s",
                 "harness CPU s", "rows fetched", "load (1 min)"]))
    print(f"throughput with the console: {median(ratios):.3f} of alone (median; {min(ratios):.3f}-{max(ratios):.3f})")
    print(table([["run idle, pages open", len(idle), *percentile_row(idle)],
                 ["run busy with the city", len(busy), *percentile_row(busy)]],
                ["public lookups", "answered", "p50 ms", "p99 ms", "max ms"]))
    print("lookups by kind and status: " + ", ".join(f"{key} {n}" for key, n in sorted(statuses.items())))
    return {"persons": persons, "clients": clients, "lookups_per_second": rate, "ratios": ratios,
            "run_cpu_ratios": cpu_ratios, "lookup_idle_ms": percentiles(idle), "lookup_busy_ms": percentiles(busy),
            "lookup_statuses": dict(statuses), "trials": trials}


def main(args: Any) -> None:
    result = run(args.persons or 200_000, args.days or 3, args.cases or 30, args.offices, args.clients or 200,
                 args.lookups, args.pairs, args.console_nice)
    print(f"results: {save('console-load', result)}")
