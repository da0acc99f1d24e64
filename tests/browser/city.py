"""A live simulated city for the browser tests and the screenshots, run as docs/console.md runs it.

`tracer generate` makes a small city (one day, 2020-01-15, its cases reported the next day); its
rides come again two days later, so that event time (the views' "now") passes the reports, as on a
feed that keeps arriving; and one large case is added (it rode the city's flight MU5101 and a
morning metro run, crowded with the city's residents: over 500 direct contacts, four of them
residents of the office the tests work as). `tracer run --follow` traces the feed in the background
while the tests append to it, `tracer serve` shows it with the accounts `tracer users add` made,
and Debian's Chromium is driven by Playwright (no browser is downloaded: the executable is the
system's).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import product
from pathlib import Path
from typing import Any

import orjson
from playwright.sync_api import Browser, Page, sync_playwright

from tests.builders import case, lines, person
from tests.console import ROOT, TIMEOUT, console_url, process, wait_for
from tracer.errors import InvalidEvent
from tracer.events import Trip
from tracer.intake import Intake
from tracer.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
OFFICE, OTHER = "310107015", "310115125"  # 长寿路街道, the office the tests work as; 张江镇
PASSWORD = "correct horse battery staple"
ACCOUNTS = {"wang": ("office", OFFICE), "li": ("office", OTHER), "zhao": ("supervisor", None),
            "chen": ("epidemiologist", None)}
DAY, AGAIN = "2020-01-15", 2  # the generated day; its rides come again this many days later
LARGE_CASE, LARGE_PERSON = "C00900", "P00900000"
RESIDENTS = [f"P0090000{n}" for n in range(1, 5)]  # the office's residents seated near the large case
ARRIVING_CASE, ARRIVING = "C00901", [f"P009000{n}" for n in range(11, 14)]  # appended while a page is open
SEATS = [f"{row}{letter}" for row, letter in product(range(1, 51), "ABCDEF")]


@dataclass
class City:
    root: Path
    url: str = ""

    @property
    def feed(self) -> Path:
        return self.root / "feed.jsonl"

    @property
    def followups(self) -> Path:
        return self.root / "followups.jsonl"

    def append(self, events: list[dict[str, Any]]) -> None:
        """Lines appended to the feed the run follows."""
        with self.feed.open("ab") as feed:
            feed.write(lines(events))

    def followup_records(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.followups.read_bytes().splitlines()]


@contextmanager
def live_city(root: Path) -> Iterator[City]:
    """The city traced by `tracer run --follow` and shown by `tracer serve` until the block ends."""
    city = City(root)
    _cli("generate", "--persons", "3000", "--days", "1", "--cases", "8", "--seed", "3", "--no-truth", "--out",
         str(root / "generated"))
    generated = (root / "generated" / "events.jsonl").read_bytes()
    rides = _accepted_trips(generated)
    city.feed.write_bytes(generated + lines([*map(_again, rides), *large_case(rides)]))
    city.followups.touch()
    users = root / "users.toml"
    for name, (role, office) in ACCOUNTS.items():
        where = ["--subdistrict", office] if office else []
        _cli("users", "add", name, "--role", role, *where, "--users", str(users), "--password-stdin", stdin=PASSWORD)
    out, state = root / "out", root / "state"
    run = ["run", str(city.feed), str(city.followups), "--out", str(out), "--state", str(state), "--follow",
           "--quiet"]
    with process(run, root / "run.err") as running:
        queue = out / "alerts" / f"{OFFICE}.jsonl"  # the large case is the feed's last line

        def traced() -> bool:
            return (queue.exists() and RESIDENTS[-1].encode() in queue.read_bytes()) or running.poll() is not None

        wait_for(traced, "the run through the feed")
        assert running.poll() is None, (root / "run.err").read_text()
        serve = ["serve", "--state", str(state), "--out", str(out), "--users", str(users), "--followups",
                 str(city.followups), "--port", "0"]
        with process(serve, root / "serve.err") as console:
            city.url = console_url(root / "serve.err", console)
            yield city


def _cli(*command: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "tracer.cli", *command], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   input=None if stdin is None else stdin.encode())


def _accepted_trips(feed: bytes) -> list[dict[str, Any]]:
    """The trips of the generated feed that the run accepts (it holds malformed lines on purpose)."""
    intake, found = Intake(Settings()), []
    for line in feed.splitlines():
        try:
            accepted = isinstance(intake.decode(line).event, Trip)
        except InvalidEvent:
            continue
        if accepted:
            found.append(orjson.loads(line))
    return found


def _again(trip: dict[str, Any]) -> dict[str, Any]:
    """The same ride ``AGAIN`` days later (a metro run's id names its day)."""
    shift = timedelta(days=AGAIN)
    day = date.fromisoformat(trip["date"]) + shift
    times = {name: (datetime.fromisoformat(trip[name]) + shift).isoformat() for name in ("board_time", "alight_time")}
    service = trip["service"].replace(trip["date"].replace("-", ""), day.strftime("%Y%m%d"))
    again = {"trip_id": f"{trip['trip_id']}-again"} if "trip_id" in trip else {}  # an id names one ride
    return {**trip, **times, **again, "date": day.isoformat(), "service": service}


def large_case(rides: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A case on the city's flight MU5101 (every free seat filled with the city's residents, the
    office's four within three rows of the case) and on its first metro run (220 riders more)."""
    flight = [ride for ride in rides if ride["service"] == "MU5101" and ride["date"] == DAY]
    metro = min((ride for ride in rides if ride["mode"] == "metro"), key=lambda ride: ride["board_time"])
    aboard = {ride["person_id"] for ride in flight}
    residents = [pid for pid in dict.fromkeys(ride["person_id"] for ride in rides) if pid not in aboard]
    free = [seat for seat in SEATS if seat not in {ride.get("seat") for ride in flight}]
    seated = [free.pop(free.index(seat)) for seat in ("10A", "9B", "10B", "11B", "11C")]
    passengers = [*zip([LARGE_PERSON, *RESIDENTS], seated, strict=True), *zip(residents, free, strict=False)]
    on_flight = {name: flight[0][name] for name in ("mode", "service", "date", "board_station", "alight_station")}
    on_metro = {name: metro[name] for name in ("mode", "service", "date", "board_time", "alight_time",
                                               "board_station", "alight_station")}
    riders = [LARGE_PERSON, *residents[len(free) : len(free) + 220]]
    return [
        person(LARGE_PERSON, OTHER), *(person(pid, OFFICE) for pid in RESIDENTS),
        *({"type": "trip", "person_id": pid, **on_flight, "seat": seat, "board_time": f"{DAY}T16:20:00+08:00",
           "alight_time": f"{DAY}T19:50:00+08:00"} for pid, seat in passengers),
        *({"type": "trip", "person_id": pid, **on_metro, "carriage": 1 + n % 6} for n, pid in enumerate(riders)),
        _case(LARGE_CASE, LARGE_PERSON, "10:00", "12:00"),
    ]


def arrival() -> list[dict[str, Any]]:
    """A new case on the city's flight FM5102 whose three close contacts live in the office."""
    where = {"type": "trip", "mode": "flight", "service": "FM5102", "date": DAY, "board_station": "SHA",
             "alight_station": "SYX", "board_time": f"{DAY}T12:00:00+08:00", "alight_time": f"{DAY}T16:20:00+08:00"}
    seats = dict(zip(["P00900010", *ARRIVING], ("45C", "44C", "45D", "46A"), strict=True))
    return [
        person("P00900010", OTHER), *(person(pid, OFFICE) for pid in ARRIVING),
        *({**where, "person_id": pid, "seat": seat} for pid, seat in seats.items()),
        _case(ARRIVING_CASE, "P00900010", "18:00", "19:30"),
    ]


def _case(case_id: str, person_id: str, isolated: str, reported: str) -> dict[str, Any]:
    """A case isolated and reported on the day the city rides again (before its event time)."""
    day = (date.fromisoformat(DAY) + timedelta(days=AGAIN)).isoformat()
    return {**case(case_id, person_id, onset="2020-01-16", reported_at=f"{day}T{reported}:00+08:00"),
            "isolated_at": f"{day}T{isolated}:00+08:00"}


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium under Playwright's driver."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Browser, city: City, account: str | None, path: str = "/") -> Page:
    """A new browser session (its own cookies) at ``path``, logged in as ``account`` through the login page."""
    context = browser.new_context(base_url=city.url, locale="zh-CN", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT * 1000)
    page = context.new_page()
    if account is not None:
        log_in(page, account)
    page.goto(path)
    return page


def log_in(page: Page, account: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=username]", account)
    page.fill("input[name=password]", password)
    page.click("form.card button")
    page.wait_for_url(lambda url: "/login" not in url)
