"""Browser tests: Debian's chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import shutil

import pytest
from playwright.sync_api import expect

from posfleet.testing.browser import watched_page

# A web-first assertion waits as long as an action does (the contexts' 15 s): on CI's two cores, busy
# with the other lane, a page's answer to a click can take longer than Playwright's default 5 s.
expect.set_options(timeout=15_000)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    path = os.environ.get("POSFLEET_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "browser tests need Debian's chromium (apt-get install chromium); `make test` installs it"
        )
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_errors() -> list[str]:
    """Script errors and console errors (CSP violations appear there) seen during the test."""
    return []


@pytest.fixture
def page(browser, browser_errors):
    with watched_page(browser, browser_errors, viewport={"width": 1400, "height": 900}) as page:
        yield page
    assert browser_errors == [], browser_errors
