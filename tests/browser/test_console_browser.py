"""The web console in a real browser (Debian's Chromium under Playwright) over a live city: `tracer
run --follow` and `tracer serve` as processes (conftest.py). What a street office, a supervisor, an
epidemiologist and the public do in it, from the login to the downloads, as issue 15 lists.

Nothing asserts timing: every wait polls with a generous timeout (``TIMEOUT``)."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.city import (
    ARRIVING,
    ARRIVING_CASE,
    LARGE_CASE,
    OFFICE,
    OTHER,
    PASSWORD,
    RESIDENTS,
    City,
    arrival,
)
from tests.console import wait_for

pytestmark = pytest.mark.browser
Open = Callable[..., Page]
ANY_ID = re.compile(r"\b[PC]00\d{3,}")  # the city's person (P00000001) and case (C00900) ids
LINES = """cell => {  // how many lines the text of an element takes
  const range = document.createRange();
  range.selectNodeContents(cell);
  return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size;
}"""


def row(page: Page, person: str) -> Locator:
    return page.locator(f'#rows tr[data-person="{person}"]')


def kpi(page: Page, name: str) -> Locator:
    """The cell of a KPI of the office page, by its label."""
    return page.locator("#kpis td").nth(page.locator("#kpis th").all_text_contents().index(name))


def test_a_wrong_password_is_refused_and_the_right_one_lets_in(open_as: Open) -> None:
    page = open_as(None, f"/office/{OFFICE}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=username]", "wang")
    page.fill("input[name=password]", "not the password")
    page.click("form.card button")
    expect(page.locator("p.error")).to_have_text("账号或密码不正确")
    expect(page).to_have_url(re.compile("/login"))
    page.fill("input[name=username]", "wang")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.card button")
    expect(page).to_have_url(re.compile(f"/office/{OFFICE}$"))
    expect(page.locator("h1")).to_contain_text("长寿路街道")
    expect(row(page, RESIDENTS[0])).to_be_visible()


def test_the_office_list_fills_live_while_the_feed_runs(open_as: Open, city: City) -> None:
    page = open_as("wang", f"/office/{OFFICE}")
    expect(page.locator("#live")).to_have_text("实时更新中")
    expect(row(page, RESIDENTS[-1])).to_be_visible()  # the feed's last case: the list as the run left it
    alerted = int(kpi(page, "预警人数").inner_text())
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    city.append(arrival())
    for person in ARRIVING:
        expect(row(page, person)).to_contain_text(ARRIVING_CASE)
    expect(row(page, ARRIVING[0])).to_contain_text("密切接触者")
    expect(kpi(page, "预警人数")).to_have_text(str(alerted + len(ARRIVING)))
    assert page.evaluate("window.sameDocument") is True


def test_an_action_becomes_a_follow_up_line_and_changes_the_row_and_the_kpis(open_as: Open, city: City) -> None:
    page = open_as("wang", f"/office/{OFFICE}")
    person, note = RESIDENTS[1], "已电话联系，居家隔离"
    expect(row(page, person)).to_be_visible()
    quarantined = int(kpi(page, "已隔离").inner_text())
    row(page, person).get_by_role("button", name="已隔离").click()
    dialog = page.locator("dialog#act")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#act-person")).to_have_text(person)
    dialog.locator("textarea[name=note]").fill(note)
    dialog.get_by_role("button", name="记录").click()
    expect(dialog.locator("#act-message")).to_have_text("已记录")

    def written() -> list[dict]:
        return [r for r in city.followup_records() if r["person_id"] == person]

    wait_for(lambda: bool(written()), "the follow-up line in the followed file")
    [line] = written()
    assert (line["type"], line["outcome"], line["by"], line["note"]) == ("followup", "quarantined", OFFICE, note)
    expect(row(page, person).locator("td.followup")).to_contain_text(f"已隔离 {line['at'][5:16].replace('T', ' ')}")
    expect(row(page, person).locator("td.followup")).to_contain_text(note)
    expect(kpi(page, "已隔离")).to_have_text(str(quarantined + 1))


def test_the_call_list_keeps_each_level_time_and_heading_on_one_line(open_as: Open) -> None:
    page = open_as("wang", f"/office/{OFFICE}")
    expect(row(page, RESIDENTS[0])).to_be_visible()
    cells = page.locator("#rows th, #rows td:not(.case_ids):not(.followup):not(.actions), #kpis th")
    lines = cells.evaluate_all(f"cells => cells.map({LINES})")
    wrapped = [text for text, count in zip(cells.all_text_contents(), lines, strict=True) if count > 1]
    assert wrapped == []


def test_an_office_is_refused_another_offices_page_download_and_events(open_as: Open) -> None:
    page = open_as("li", f"/office/{OTHER}")
    expect(page.locator("#live")).to_have_text("实时更新中")
    stream = """url => new Promise(done => {
        const events = new EventSource(url);
        events.onopen = () => { events.close(); done("open"); };
        events.onerror = () => { events.close(); done("refused"); };
    })"""
    assert page.evaluate(stream, f"/office/{OTHER}/events") == "open"
    assert page.evaluate(stream, f"/office/{OFFICE}/events") == "refused"
    assert page.evaluate("url => fetch(url).then(answer => answer.status)", f"/office/{OFFICE}/events") == 403
    for path in (f"/office/{OFFICE}", f"/office/{OFFICE}/calllist.csv", f"/office/{OFFICE}/calllist.xlsx"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 403, path
        expect(page.locator("h1")).to_have_text("403 · 无权访问")
        assert RESIDENTS[0] not in page.content()


@pytest.mark.parametrize(("date", "service", "seat"), [
    ("2020/1/15", "mu 5101", "11A"),
    ("2020年1月15日", "ＭＵ５１０１", "１１Ａ"),  # full-width letters and digits
])
def test_the_public_lookup_reads_messy_input_and_names_no_one(open_as: Open, date: str, service: str,
                                                              seat: str) -> None:
    page = open_as(None, "/lookup")
    page.fill("input[name=date]", date)
    page.fill("input[name=service]", service)
    page.fill("input[name=seat]", seat)
    page.get_by_role("button", name="查询").click()
    answer = page.locator("section.answer")
    expect(answer.locator(".read-as")).to_have_text("按 2020-01-15 航班 MU5101 查询")
    expect(answer).to_contain_text("座位 10A")  # the large case's seat, one row from the asker's
    expect(answer).to_contain_text("您属于：密切接触者（同一航班，座位在病例前后 3 排以内）")
    assert ANY_ID.findall(page.content()) == []
    expect(page.locator("input[name=service]")).to_have_value(service)  # the question as asked, kept


def test_the_chain_picture_of_a_large_case_is_bounded_and_drills_down(open_as: Open) -> None:
    page = open_as("chen", "/cases")
    cases = page.locator("table.rows").first  # then the clusters
    case_row = cases.locator("tr", has=page.get_by_role("link", name=LARGE_CASE, exact=True))
    direct = sum(int(case_row.locator("td").nth(index).text_content() or "") for index in (6, 8))
    assert direct > 500  # close and general contacts
    case_row.get_by_role("link", name="传播链图").click()
    picture = page.locator("figure.picture svg")
    expect(picture).to_be_visible()
    box = picture.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 300
    nodes = picture.locator("g")
    assert 5 < nodes.count() <= 40  # a node per trip and level, never per person
    close = picture.locator("a > g.aggregate[data-level=close][data-service=MU5101]")
    count = int(close.get_attribute("data-count") or "")
    close.click()
    expect(page).to_have_url(re.compile(rf"/cases/{LARGE_CASE}\?.*level=close"))
    expect(page.locator("p.narrowed")).to_contain_text(f"航班 MU5101 上的密切接触者：{count} 人")
    persons = page.locator("table.rows tbody tr td:first-child").all_text_contents()
    assert len(set(persons)) == count and len(persons) >= count


def test_the_language_switch_holds_across_pages(open_as: Open) -> None:
    page = open_as("zhao", "/dashboard")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("排查进度")
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Tracing progress")
    page.get_by_role("link", name=OFFICE).click()
    expect(page.locator("h1")).to_contain_text("Call list")
    expect(page.locator("#kpis th").first).to_have_text("Alerted")
    page.get_by_role("link", name="中文").click()
    expect(page.locator("h1")).to_contain_text("排查名单")


def test_the_dashboard_chart_draws_three_series_inside_its_frame(open_as: Open) -> None:
    page = open_as("zhao", "/dashboard")
    chart = page.locator("figure.chart svg")
    expect(chart.locator("polyline")).to_have_count(3)
    outside = chart.evaluate("""svg => {
        const frame = svg.getBoundingClientRect();
        return [...svg.querySelectorAll("text")].map(text => [text.textContent, text.getBoundingClientRect()])
            .filter(([, box]) => box.left < frame.left || box.right > frame.right || box.bottom > frame.bottom)
            .map(([label]) => label);
    }""")
    assert outside == []
    expect(page.locator("table.kpis tr.city")).to_contain_text("全市")


def test_the_call_list_downloads_as_csv_and_xlsx(open_as: Open, tmp_path: Path) -> None:
    page = open_as("wang", f"/office/{OFFICE}")
    expect(row(page, RESIDENTS[0])).to_be_visible()
    files = {}
    for form in ("csv", "xlsx"):
        with page.expect_download() as started:
            page.click(f"#{form}")
        download = started.value
        name = download.suggested_filename
        assert name.startswith(f"calllist-{OFFICE}-") and name.endswith(f".{form}")
        files[form] = tmp_path / name
        download.save_as(files[form])
    listed = list(csv.DictReader(io.StringIO(files["csv"].read_text(encoding="utf-8-sig"))))
    assert set(RESIDENTS) <= {line["person_id"] for line in listed}
    with zipfile.ZipFile(files["xlsx"]) as book:
        cells = book.read("xl/sharedStrings.xml").decode()
    assert all(person in cells for person in RESIDENTS) and "person_id" in cells
