"""The browser tests' session: one live city (tracer run --follow and tracer serve as processes) and
one Chromium, shared by every test here; each test opens its own browser sessions. Both are
package-scoped, so they end with the last browser test: Playwright's sync API runs an event loop
in the main thread while it is open, and later tests that call ``asyncio.run`` (the Kafka ones)
would find it running."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.city import CHROMIUM, City, chromium, live_city, open_page
from tests.console import TIMEOUT

expect.set_options(timeout=TIMEOUT * 1000)  # every wait polls, generously; nothing asserts timing


@pytest.fixture(scope="package")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    with live_city(tmp_path_factory.mktemp("city")) as found:
        yield found


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (.ci/run installs it with apt-get)")
    with chromium() as found:
        yield found


@pytest.fixture
def open_as(browser: Browser, city: City) -> Iterator[Callable[..., Page]]:
    """``open_as(account, path)``: a page of a new browser session, logged in (None: anonymous)."""
    pages: list[Page] = []

    def opened(account: str | None, path: str = "/") -> Page:
        pages.append(open_page(browser, city, account, path))
        return pages[-1]

    yield opened
    for page in pages:
        page.context.close()
