"""Browser-test helpers (Playwright pages driven against the live test server)."""

from __future__ import annotations

import re

from playwright.sync_api import Page

from posfleet.testing.personas import PASSWORD


def log_in(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    """Sign in on the login page at ``base`` and wait for the console."""
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("[data-testid=login-submit]")
    page.wait_for_url(re.compile(r"/console/"))
