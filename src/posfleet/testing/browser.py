"""Browser-test helpers (Playwright pages driven against the live test server)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from typing import Any

from django.conf import settings
from playwright.sync_api import Browser, Page

from posfleet.iam.web import SESSION_KEY as STEP_UP_KEY
from posfleet.testing.personas import PASSWORD
from posfleet.testing.totp import DEMO_TOTP_SECRET, code_at

CODE_PAGE = "/accounts/login/code/"


@contextmanager
def watched_page(browser: Browser, errors: list[str], **options: Any) -> Iterator[Page]:
    """A page in a new browser context (``options`` for ``new_context``: Chinese unless told, a
    viewport…) with 15 s timeouts, whose script and console errors (CSP violations appear there) are
    appended to ``errors``; the context is closed after."""
    context = browser.new_context(**{"locale": "zh-CN", **options})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield page
    finally:
        context.close()


def log_in(
    page: Page, base: str, username: str, password: str = PASSWORD, secret: str = DEMO_TOTP_SECRET
) -> None:
    """Sign in as a person does: the password on the login page, then, when the code page asks, the
    current code of the user's authenticator (personas and demo users share ``secret``); wait for the
    console."""
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("[data-testid=login-submit]")
    page.wait_for_url(re.compile(rf"/console/|{re.escape(CODE_PAGE)}"))
    if CODE_PAGE in page.url:
        page.fill("#id_code", code_at(time.time(), secret))
        page.click("[data-testid=login-code-submit]")
        page.wait_for_url(re.compile(r"/console/"))


def let_step_up_lapse(page: Page) -> None:
    """As if the step-up the login's code gave (docs/adr/0020) had run out: the next protected action
    asks for a code again."""
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = import_module(settings.SESSION_ENGINE).SessionStore(cookie["value"])
    session.pop(STEP_UP_KEY, None)
    session.save()
