"""A console over a real state, for the console tests: a small city traced by ``tracer run``, four
accounts in a users file, and the app served by uvicorn in a thread with the configuration
``tracer serve`` uses; or ``tracer serve`` as a process with two office pages listening, and the
live checks both modes pass (``check_live_updates``).

Office A has two residents on its list (PA1, PA2) and office B one (PB1), all close contacts of
one case; the ids are distinctive so that a test can look for them anywhere (logs, public pages).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from streams.console.app import ConsoleServer, create_app
from streams.console.context import Limits
from streams.console.data import ConsoleData
from streams.console.embedded import EmbeddedData
from streams.console.users import Account, Users, add_user, hash_password
from tests.builders import case, lines, person, trip
from tracer.cli import main
from tracer.settings import Settings, load_settings

A, B = "310101002", "310104003"
PASSWORD = "correct horse battery staple"
ACCOUNTS = {"office-a": ("office", A), "office-b": ("office", B), "supervisor": ("supervisor", None),
            "epidemiologist": ("epidemiologist", None)}
CASE_ID, CASE_PERSON = "CASE-7Q", "PERSON-SICK-1"
RESIDENTS = {"PA1": A, "PA2": A, "PB1": B}
PERSON_IDS = (*RESIDENTS, CASE_PERSON)
CONFIG = "[rules]\nevent_time_quorum = 1\n"  # a few trips are enough to give the views a "now"
TIMEOUT = 60.0


FLIGHT_A, FLIGHT_B = {"service": "FM9301", "board": "14:00", "alight": "16:00"}, {
    "service": "HO1252", "board": "18:00", "alight": "20:00"}
"""Two more flights of the case with nobody else aboard yet: a close contact added on one of them
changes one office's list (on the first flight, everyone is everyone's secondary contact too)."""


def city() -> list[dict[str, Any]]:
    """The residents, the case's flights (its close contacts on the first), and the case."""
    seats = {"PA1": "11A", "PA2": "12C", "PB1": "9B"}
    return [*(person(pid, office) for pid, office in RESIDENTS.items()),
            trip(CASE_PERSON, seat="10A", trip_id="t0"),
            trip(CASE_PERSON, seat="20C", trip_id="t0a", **FLIGHT_A),
            trip(CASE_PERSON, seat="5A", trip_id="t0b", **FLIGHT_B),
            *(trip(pid, seat=seat, trip_id=f"t-{pid}") for pid, seat in seats.items()),
            case(CASE_ID, CASE_PERSON)]


@dataclass
class World:
    """The files of a run and of its console."""

    root: Path

    def __post_init__(self) -> None:
        self.feed, self.followups = self.root / "feed.jsonl", self.root / "followups.jsonl"
        self.out, self.state = self.root / "out", self.root / "state"
        self.config, self.users = self.root / "config.toml", self.root / "users.toml"

    def run_args(self) -> list[str]:
        return ["run", str(self.feed), str(self.followups), "--out", str(self.out), "--state", str(self.state),
                "--config", str(self.config), "--quiet"]

    def embedded(self, settings: Settings, scratch: Path) -> ConsoleData:
        return EmbeddedData(self.state, self.out, self.followups, settings, scratch)

    def followup_lines(self) -> list[bytes]:
        return self.followups.read_bytes().splitlines() if self.followups.exists() else []


def make_world(root: Path, traced: bool = True) -> World:
    """The city's files and accounts; ``traced``: the city run once (without --follow)."""
    world = World(root)
    world.feed.write_bytes(lines(city()))
    world.followups.touch()
    world.config.write_text(CONFIG)
    for name, (role, office) in ACCOUNTS.items():
        add_user(world.users, Account(name, role, office, hash_password(PASSWORD)))
    if traced:
        assert main(world.run_args()) == 0
    return world


class Served:
    """The console of ``world`` served by uvicorn on a free port, in a thread; over ``data`` (made by
    ``data(settings, scratch)``: the embedded data of the world's run by default)."""

    def __init__(self, world: World, limits: Limits | None = None,
                 data: Callable[[Settings, Path], ConsoleData] | None = None) -> None:
        settings = load_settings(world.config)
        scratch = Path(tempfile.mkdtemp(prefix="secondary-", dir=world.root))  # the secondary instance's own
        self.data = (data or world.embedded)(settings, scratch)
        self.app = create_app(self.data, Users(world.users), settings, "k" * 40, limits)
        self.server = ConsoleServer(self.app, "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + TIMEOUT
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the console did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    @contextmanager
    def client(self, name: str | None = None) -> Iterator[httpx.Client]:
        """A browser-like client, logged in as ``name`` (None: anonymous)."""
        with httpx.Client(base_url=self.url, timeout=TIMEOUT) as client:
            if name is not None:
                answer = login(client, name)
                assert answer.status_code == 303, answer.text
            yield client

    def stop(self) -> None:
        self.server.handle_exit(signal.SIGTERM, None)  # as the signal would
        self.thread.join(TIMEOUT)
        self.data.close()


@contextmanager
def served(world: World, limits: Limits | None = None,
           data: Callable[[Settings, Path], ConsoleData] | None = None) -> Iterator[Served]:
    console = Served(world, limits, data)
    try:
        yield console
    finally:
        console.stop()


def csrf(client: httpx.Client) -> str:
    """The session's CSRF token, as a page carries it."""
    page = client.get("/lookup")
    return re.search(r'<meta name="csrf" content="([^"]+)">', page.text).group(1)  # type: ignore[union-attr]


def login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/login", data={"username": name, "password": password, "csrf": csrf(client)})


def act(client: httpx.Client, office: str, person_id: str, token: str | None = None, /,
        **fields: str) -> httpx.Response:
    """An office's action as its page sends it (the CSRF token in a header); ``fields`` add to the form."""
    form = {"person_id": person_id, "outcome": "reached", "at": "2020-01-22T13:00", **fields}
    headers = {"X-CSRF-Token": token if token is not None else csrf(client)}
    return client.post(f"/office/{office}/followups", data=form, headers=headers)


ROOT = Path(__file__).resolve().parent.parent  # the checkout: processes run from it
QUIET = 1.0  # how long a change is given to show up where it must not, before the next one


def wait_for(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done():
        assert time.monotonic() < deadline, f"not within {TIMEOUT:.0f} s: {what}"
        time.sleep(0.02)


@contextmanager
def process(command: list[str], stderr: Path) -> Iterator[subprocess.Popen]:
    with stderr.open("wb") as errors:
        running = subprocess.Popen([sys.executable, "-m", "tracer.cli", *command], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=errors)
    try:
        yield running
    finally:
        running.send_signal(signal.SIGINT)
        try:
            running.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            running.kill()
            raise


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


@dataclass
class LivePages:
    """A console process, office A's and B's pages listening to it, and a client of office A."""

    console: subprocess.Popen
    office_a: httpx.Client
    page_a: Listener
    page_b: Listener


def console_url(log: Path, console: subprocess.Popen) -> str:
    """The address a `tracer serve --port 0` process listens on, read from its log once it says."""
    wait_for(lambda: "Uvicorn running on" in log.read_text() or console.poll() is not None, "the console")
    found = re.search(r"Uvicorn running on (http://\S+)", log.read_text())
    assert found, log.read_text()
    return found.group(1)


@contextmanager
def live_pages(serve: list[str], log: Path) -> Iterator[LivePages]:
    """``tracer serve`` (the arguments ``serve``) as a process, logging to ``log``, until SIGINT."""
    with process(serve, log) as console:
        url = console_url(log, console)
        page_a, page_b = Listener(url, "office-a", A), Listener(url, "office-b", B)
        try:
            wait_for(lambda: page_a.ready.is_set() and page_b.ready.is_set(), "both pages listening")
            with httpx.Client(base_url=url, timeout=TIMEOUT) as office_a:
                assert login(office_a, "office-a").status_code == 303
                yield LivePages(console, office_a, page_a, page_b)
        finally:
            page_a.close()
            page_b.close()


def check_live_updates(feed: Callable[[bytes], float], live: LivePages) -> None:
    """New close contacts reach their own office's page only; an action (sent twice: written once)
    flows back into the rows and the KPIs. ``feed(lines)`` gives the run new input lines and returns
    a time before any change they make."""
    office_a, page_a, page_b = live.office_a, live.page_a, live.page_b

    def rows() -> dict[str, dict]:
        found = office_a.get(f"/office/{A}/rows").json()
        return {row["person_id"]: row for row in found["rows"]} | {"kpis": found["kpis"]}

    # A new close contact in office A: A's page hears of it, and its rows hold them.
    first = feed(lines([person("PA3", A), trip("PA3", seat="21A", trip_id="t-PA3", **FLIGHT_A)]))
    wait_for(lambda: page_a.times, "office A's event")
    assert "PA3" in rows()
    time.sleep(QUIET)
    # Then one in office B: B's page hears of it (and, above, of nothing before it).
    second = feed(lines([person("PB2", B), trip("PB2", seat="6B", trip_id="t-PB2", **FLIGHT_B)]))
    wait_for(lambda: page_b.times, "office B's event")
    time.sleep(QUIET)
    # Office A records a call (a double click): the run applies it, A's page hears of it, the row
    # and the KPIs show it.
    before = rows()["kpis"]["reached_2h"]
    third = time.monotonic()
    assert act(office_a, A, "PA1").json() == {"written": True}
    assert act(office_a, A, "PA1").json() == {"written": False}
    wait_for(lambda: any(moment > third for moment in page_a.times), "office A's event for its own action")
    after = rows()
    assert after["PA1"]["followup"]["outcome"] == "reached" and after["kpis"]["reached_2h"] == before + 1
    time.sleep(QUIET)
    assert all(first < moment < second or moment > third for moment in page_a.times), page_a.times
    assert page_b.times and all(second < moment < third for moment in page_b.times), page_b.times
