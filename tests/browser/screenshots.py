"""Screenshots of the console's pages for the README, over the browser tests' live city:
``python -m tests.browser.screenshots [--out docs/screenshots]`` (about 20 s). Run by hand when a
page changes, never by the test suite (which would rewrite the files on every run)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.city import ARRIVING, LARGE_CASE, OFFICE, City, arrival, chromium, live_city, open_page
from tests.console import ROOT, TIMEOUT

SHOTS = ("login", "office", "action", "dashboard", "cases", "picture", "lookup")


def take(browser: Browser, city: City, out: Path) -> None:
    """One PNG a page, named as in ``SHOTS``, with real rows: the office's list fills live first."""
    page = open_page(browser, city, None, "/login")
    page.set_viewport_size({"width": 1280, "height": 400})
    page.fill("input[name=username]", "wang")
    page.screenshot(path=out / "login.png")

    page = open_page(browser, city, "wang", f"/office/{OFFICE}")
    expect(page.locator("#live")).to_have_text("实时更新中")
    city.append(arrival())  # a new case: its contacts' rows appear on the open page
    person = page.locator(f'#rows tr[data-person="{ARRIVING[0]}"]')
    expect(person).to_be_visible()
    person.get_by_role("button", name="已隔离").click()
    page.fill("dialog#act textarea[name=note]", "已电话联系，居家隔离至 2 月 1 日")
    page.screenshot(path=out / "action.png")
    page.get_by_role("button", name="记录").click()
    expect(person.locator("td.followup")).to_contain_text("已隔离")
    expect(page.locator("dialog#act")).to_be_hidden()
    page.screenshot(path=out / "office.png", full_page=True)

    page = open_page(browser, city, "zhao", "/dashboard")
    expect(page.locator("figure.chart polyline")).to_have_count(3)
    page.screenshot(path=out / "dashboard.png")
    page = open_page(browser, city, "chen", "/cases")
    page.screenshot(path=out / "cases.png")
    page.goto(f"/cases/{LARGE_CASE}/picture")
    expect(page.locator("figure.picture svg")).to_be_visible()
    page.screenshot(path=out / "picture.png", full_page=True)

    page = open_page(browser, city, None, "/lookup?date=2020/1/15&service=mu+5101&seat=１１A")
    expect(page.locator("section.answer")).to_be_visible()
    page.screenshot(path=out / "lookup.png", full_page=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=TIMEOUT * 1000)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as root, live_city(Path(root)) as city, \
            chromium() as browser:
        take(browser, city, out)
    print(f"wrote {', '.join(f'{name}.png' for name in SHOTS)} to {out}")


if __name__ == "__main__":
    main()
