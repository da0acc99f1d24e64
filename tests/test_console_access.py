"""The console's access rules, over HTTP to the real server (uvicorn, as `tracer serve` runs it) on
a state made by `tracer run`: every endpoint for every role, whatever the URL or body says; CSRF on
every POST; the login rate limit; a request log that names no one; one follow-up line per action,
across a restart; a public lookup that shows nothing personal."""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from streams.console.app import ROUTES
from streams.console.context import Limits
from streams.console.ratelimit import RateLimit
from tests.console import (
    ACCOUNTS,
    CASE_ID,
    CASE_PERSON,
    PASSWORD,
    PERSON_IDS,
    A,
    B,
    Served,
    World,
    act,
    csrf,
    login,
    make_world,
    served,
)

ROLES = (None, *ACCOUNTS)  # None: not logged in
LOOKUP = "/lookup?date=2020-01-20&mode=flight&service=MU5101&seat=11C"
# (method, URL, route template, {role: status}); a role not named gets 403, anonymous 401.
OFFICE_A_READ = {"office-a": 200, "supervisor": 200}
PUBLIC = dict.fromkeys(ROLES, 200)
TABLE = [
    ("GET", f"/office/{A}", "/office/{code}", OFFICE_A_READ),
    ("GET", f"/office/{A}/rows", "/office/{code}/rows", OFFICE_A_READ),
    ("GET", f"/office/{A}/events", "/office/{code}/events", OFFICE_A_READ),
    ("GET", f"/office/{A}/calllist.csv", "/office/{code}/calllist.{form}", OFFICE_A_READ),
    ("GET", f"/office/{A}/calllist.xlsx", "/office/{code}/calllist.{form}", OFFICE_A_READ),
    ("POST", f"/office/{A}/followups", "/office/{code}/followups", {"office-a": 200}),
    ("GET", "/dashboard", "/dashboard", {"supervisor": 200}),
    ("GET", "/cases", "/cases", {"epidemiologist": 200}),
    ("GET", f"/cases/{CASE_ID}", "/cases/{case_id:path}", {"epidemiologist": 200}),
    ("GET", f"/cases/{CASE_ID}/picture", "/cases/{case_id:path}/picture", {"epidemiologist": 200}),
    ("GET", "/status?person=PA1", "/status", {"office-a": 200, "supervisor": 200, "epidemiologist": 200}),
    ("GET", "/status?person=PB1", "/status", {"office-b": 200, "supervisor": 200, "epidemiologist": 200}),
    ("GET", "/status?person=nobody", "/status", {"supervisor": 200, "epidemiologist": 200}),
    ("GET", LOOKUP, "/lookup", PUBLIC),
    ("GET", "/login", "/login", PUBLIC),
    ("GET", "/healthz", "/healthz", PUBLIC),
    ("GET", "/metrics", "/metrics", PUBLIC),
    ("GET", "/", "/", dict.fromkeys(ROLES, 303)),
    ("POST", "/login", "/login", dict.fromkeys(ROLES, 401)),  # no account named: refused whoever asks
    ("POST", "/logout", "/logout", dict.fromkeys(ROLES, 303)),  # last: it ends the session
]

OTHER_OFFICE = [  # what office A may not read of office B
    f"/office/{B}", f"/office/{B}/rows", f"/office/{B}/events", f"/office/{B}/calllist.csv",
    f"/office/{B}/calllist.xlsx", "/office/%33%31%30%31%30%34%30%30%33/rows", "/status?person=PB1",
    f"/status?person={CASE_PERSON}"]


def expected(rule: dict[str | None, int], role: str | None) -> int:
    return rule.get(role, 401 if role is None else 403)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="module")
def console(world: World) -> Iterator[Served]:
    with served(world) as found:
        yield found


def send(client: httpx.Client, method: str, url: str) -> int:
    """The status of one request as a script sends it (no HTML: a refusal is a status, not the login page)."""
    headers = {"Accept": "*/*", "X-CSRF-Token": csrf(client)}
    form = {"person_id": "PA1", "outcome": "unreachable", "at": "2020-01-22T15:00"}
    with client.stream(method, url, headers=headers, data=form if method == "POST" else None) as answer:
        return answer.status_code  # an event stream is left unread: its status is enough


def test_the_table_covers_every_route() -> None:
    routes = {getattr(route, "path", None) for route in ROUTES} - {"/static"}
    assert routes == {template for _, _, template, _ in TABLE}


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role or "anonymous")
def test_every_endpoint_for_every_role(console: Served, role: str | None) -> None:
    with console.client(role) as client:
        found = [(method, url, send(client, method, url), expected(rule, role)) for method, url, _, rule in TABLE]
    assert [row for row in found if row[2] != row[3]] == []


@pytest.mark.parametrize("url", OTHER_OFFICE)
def test_an_office_reads_nothing_of_another_office(console: Served, url: str) -> None:
    with console.client("office-a") as client:
        assert send(client, "GET", url) == 403


def test_what_a_request_says_never_widens_an_office(console: Served, world: World) -> None:
    with console.client("office-a") as client:
        rows = client.get(f"/office/{A}/rows", params={"code": B, "office": B}).json()["rows"]
        assert {row["person_id"] for row in rows} == {"PA1", "PA2"}
        assert act(client, A, "PB1").status_code == 403  # B's resident, through A's own URL
        assert act(client, B, "PB1").status_code == 403  # B's URL
        assert act(client, A, "PA2", by=B, office=B, type="case").json() == {"written": True}
    with console.client("office-b") as client:
        assert act(client, B, "PA1").status_code == 403
    written = [orjson.loads(line) for line in world.followup_lines()]
    assert [(line["person_id"], line["by"]) for line in written if line["person_id"] == "PA2"] == [("PA2", A)]
    assert all(line["type"] == "followup" for line in written)


def test_supervisor_reads_any_office_and_acts_on_none(console: Served) -> None:
    with console.client("supervisor") as client:
        assert {row["person_id"] for row in client.get(f"/office/{B}/rows").json()["rows"]} == {"PB1"}
        assert act(client, B, "PB1").status_code == 403
        page = client.get(f"/office/{B}").text
        assert 'data-can-act=""' in page and 'id="act"' not in page


@pytest.mark.parametrize("token", ["missing", "wrong", "another session's"])
def test_every_post_needs_the_sessions_csrf_token(console: Served, world: World, token: str) -> None:
    posts = [route.path for route in ROUTES if "POST" in (getattr(route, "methods", None) or ())]
    assert sorted(posts) == ["/login", "/logout", "/office/{code}/followups"]
    before = world.followup_lines()
    with console.client("office-a") as client, console.client("office-b") as other:
        sent = {"missing": None, "wrong": "x" * 43, "another session's": csrf(other)}[token]
        headers = {} if sent is None else {"X-CSRF-Token": sent}
        form = {"person_id": "PA1", "outcome": "released", "at": "2020-02-10T09:00", "username": "office-a",
                "password": PASSWORD}
        for url in (f"/office/{A}/followups", "/logout", "/login"):
            assert client.post(url, data=form, headers=headers).status_code == 403, url
        assert client.get(f"/office/{A}/rows").status_code == 200  # still logged in: /logout was refused
    assert world.followup_lines() == before


def test_an_action_is_one_line_across_a_double_click_and_a_restart(world: World, console: Served) -> None:
    with console.client("office-a") as client:
        token = csrf(client)
        first = act(client, A, "PA1", token, outcome="quarantined", at="2020-01-22T18:30", note="at home")
        again = act(client, A, "PA1", token, outcome="quarantined", at="2020-01-22T18:30", note=" at home ")
    assert (first.json(), again.json()) == ({"written": True}, {"written": False})
    with served(world) as restarted, restarted.client("office-a") as client:
        third = act(client, A, "PA1", outcome="quarantined", at="2020-01-22T18:30:00+08:00", note="at home")
    assert third.json() == {"written": False}
    mine = [orjson.loads(line) for line in world.followup_lines() if b'"quarantined"' in line]
    assert mine == [{"type": "followup", "person_id": "PA1", "outcome": "quarantined",
                     "at": "2020-01-22T18:30:00+08:00", "by": A, "note": "at home"}]


@pytest.mark.parametrize(("fields", "reason"), [
    ({"outcome": "cured"}, "outcome must be one of"),
    ({"at": "tomorrow"}, "time must be like"),
    ({"note": "x" * 501}, "at most 500 characters"),
    ({"note": "bell\x07"}, "note must be text"),
])
def test_an_action_the_run_would_refuse_is_refused_with_its_reason(console: Served, world: World, fields: dict,
                                                                    reason: str) -> None:
    before = world.followup_lines()
    with console.client("office-a") as client:
        answer = act(client, A, "PA1", **fields)
    assert answer.status_code == 400 and reason in answer.json()["error"]
    assert world.followup_lines() == before


def test_the_public_lookup_says_what_it_means_and_names_no_one(console: Served) -> None:
    with console.client() as client:
        page = client.get(LOOKUP + "&lang=en").text
        assert "If you were where you said, you are a close contact" in page
        assert not [found for found in (*PERSON_IDS, CASE_ID) if found in page]
        messy = client.get("/lookup", params={"date": "2020/1/20", "service": "mu 5101", "seat": "１１C"}).text
        assert "If you were where you said, you are a close contact" in messy  # seat 11C, in full-width digits
        assert "Read as flight MU5101 on 2020-01-20" in messy
        assert not [found for found in (*PERSON_IDS, CASE_ID) if found in messy]
        wrong = client.get("/lookup", params={"date": "last tuesday", "mode": "flight", "service": "MU5101"})
        assert wrong.status_code == 400 and "expected a date like 2020-01-15, got &#39;last tuesday&#39;" in wrong.text
        missing = client.get("/lookup", params={"date": "2020-01-20", "mode": "flight"})
        assert missing.status_code == 400 and "e.g. MU5101" in missing.text  # in English: ?lang=en was kept
        unknown = client.get("/lookup", params={"date": "2020-01-20", "service": "MU9999"}).text
        assert "tracer holds no ride of flight MU9999 on 2020-01-20" in unknown
        by_line = {"date": "2020-01-20", "line": "2号线", "board_time": "8:00", "lang": "zh"}
        metro = client.get("/lookup", params=by_line)
        assert "按 2020-01-20 地铁 L2 线 08:00 上车的列车 查询" in metro.text  # read back in the page's language
        assert "rides-gone" not in metro.text  # the day's rides are kept: no notice that only exposures answer
        at_station = client.get("/lookup", params={**by_line, "station": "人民广场站"})
        assert at_station.status_code == 200 and 'value="人民广场站"' in at_station.text


def test_each_count_of_the_chain_picture_links_to_the_contacts_it_counts(console: Served) -> None:
    svg_ns = "{http://www.w3.org/2000/svg}"
    with console.client("epidemiologist") as client:
        page = client.get(f"/cases/{CASE_ID}/picture").text
        svg = ET.fromstring(page[page.index("<svg") : page.index("</svg>") + len("</svg>")])
        counts = [g for g in svg.iter(f"{svg_ns}g") if g.get("class") == "aggregate"]
        links = {link.get("href"): link[0] for link in svg.iter(f"{svg_ns}a")}
        assert counts and list(links.values()) == counts
        for href, node in links.items():
            listed = client.get(href).text
            persons = set(re.findall(r'<tr class="(?:close|secondary|general)"><td>([^<]*)</td>', listed))
            assert len(persons) == int(node.get("data-count", "")) > 0, href
        assert client.get(f"/cases/{CASE_ID}", params={"level": "close"}).status_code == 400  # a trip needs all four


def test_the_public_lookup_is_rate_limited_per_address(world: World) -> None:
    limits = Limits(RateLimit(5, 900), RateLimit(20, 900), RateLimit(3, 60))
    with served(world, limits) as console, console.client() as client:
        codes = [client.get(LOOKUP).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_logins_are_rate_limited_per_account_and_per_address(world: World) -> None:
    limits = Limits(RateLimit(3, 900), RateLimit(5, 900), RateLimit(30, 60))
    with served(world, limits) as console, console.client() as client:
        wrong = [login(client, "office-a", "guess " * 3).status_code for _ in range(3)]
        assert wrong == [401, 401, 401]
        assert login(client, "office-a").status_code == 429  # the right password, too late
        assert login(client, "office-b").status_code == 303  # another account is not locked out
        failed = [login(client, name, "wrong password").status_code for name in ("epidemiologist", "nobody")]
        assert failed == [401, 401]
        assert login(client, "supervisor").status_code == 429  # five failures from this address


def test_the_request_log_names_no_one(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with served(world) as console, console.client("office-a") as client:
        client.get(f"/office/{A}/rows")
        client.get("/status?person=PA1")
        client.get(f"/status?person={CASE_PERSON}")
        act(client, A, "PA2", outcome="unreachable", at="2020-01-23T08:00", note="PA2 not at home")
        client.get(f"/office/{A}/calllist.csv")
        with console.client("epidemiologist") as epi:
            epi.get(f"/cases/{CASE_ID}/picture")
    server = [record for record in caplog.records if not record.name.startswith(("httpx", "httpcore"))]  # not ours
    text = "\n".join(record.getMessage() for record in server)
    assert "GET /status 403" in text and "POST /office/{code}/followups 200" in text
    assert "GET /cases/{case_id:path}/picture 200" in text
    assert not [found for found in (*PERSON_IDS, CASE_ID) if found in text]


def test_pages_carry_security_headers_and_escape_values(console: Served) -> None:
    with console.client("supervisor") as client:
        answer = client.get("/status", params={"person": "<script>alert(1)</script>"})
    assert answer.status_code == 200 and "<script>alert(1)</script>" not in answer.text
    assert "&lt;script&gt;" in answer.text
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store" and answer.headers["x-frame-options"] == "DENY"


def test_the_session_cookie_is_httponly_and_strict(console: Served) -> None:
    with console.client() as client:
        answer = login(client, "epidemiologist")
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and answer.headers["location"] == "/cases"


def test_a_login_goes_back_to_the_page_it_came_from_but_never_away(console: Served, world: World) -> None:
    with console.client() as client:
        page = client.get(f"/office/{A}", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == f"/login?next=/office/{A}"
        for target, landed in ((f"/office/{A}", f"/office/{A}"), ("//evil.example/", f"/office/{A}"),
                               ("https://evil.example/", f"/office/{A}")):
            client.cookies.clear()
            answer = client.post("/login", data={"username": "office-a", "password": PASSWORD, "next": target,
                                                 "csrf": csrf(client)})
            assert answer.headers["location"] == landed


def test_an_account_removed_from_the_file_is_out_at_its_next_request(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with served(world) as console, console.client("office-b") as client:
        assert client.get(f"/office/{B}/rows").status_code == 200
        text = world.users.read_text()
        start = text.index("[users.office-b]")
        world.users.write_text(text[:start] + text[text.index("[users.supervisor]"):])
        assert client.get(f"/office/{B}/rows").status_code == 401
