"""The console's header at a laptop's 1366 × 768: one line for every role in both languages — the
menu does not wrap, nothing spills out of the bar, and every destination stays reachable."""

from __future__ import annotations

import pytest

from posfleet.console import navigation
from posfleet.testing.browser import log_in, watched_page
from posfleet.testing.personas import build_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROLES = ("admin", "agent_a", "merchant_a")
LANGUAGES = ("en", "zh-hans")

# The header's geometry, measured in the page: the bar's height, the tallest entry or button (a label
# on two lines), the distinct tops of the main menu's entries, the vertical centres of the bar's parts
# (brand, menu, right-hand tools), and whether anything is wider than the bar or the page.
MEASURE = """() => {
  const bar = document.querySelector('nav.console-navbar');
  const inner = bar.querySelector(':scope > div');
  const tops = (els) => [...new Set([...els].map((el) => Math.round(el.getBoundingClientRect().top)))];
  const items = bar.querySelectorAll('#console-nav > .navbar-nav > .nav-item');
  const parts = [bar.querySelector('.navbar-brand'), bar.querySelector('#console-nav > .navbar-nav'),
                 bar.querySelector('[data-testid=navbar-tools]')];
  const centre = (el) => { const r = el.getBoundingClientRect(); return Math.round(r.top + r.height / 2); };
  const centres = parts.map(centre);
  const links = bar.querySelectorAll(
    '#console-nav > .navbar-nav > .nav-item > .nav-link, [data-testid=navbar-tools] .btn');
  return {
    tallestLink: Math.max(...[...links].map((el) => el.getBoundingClientRect().height)),
    height: bar.getBoundingClientRect().height,
    itemTops: tops(items),
    itemCount: items.length,
    centres: centres,
    overflow: inner.scrollWidth - inner.clientWidth,
    pageOverflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    toolsRight: Math.round(parts[2].getBoundingClientRect().right),
    width: document.documentElement.clientWidth,
  };
}"""


@pytest.fixture
def laptop(browser, browser_errors):
    with watched_page(browser, browser_errors, viewport={"width": 1366, "height": 768}) as page:
        yield page
    assert browser_errors == [], browser_errors


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("username", ROLES)
def test_header_is_one_line_at_1366(laptop, live_server, username, language):
    world = build_world()
    user = world.user(username)
    user.language = language
    user.save(update_fields=["language"])
    log_in(laptop, live_server.url, username)
    laptop.goto(f"{live_server.url}/console/")
    assert laptop.locator("html").get_attribute("lang") == language

    geometry = laptop.evaluate(MEASURE)
    assert geometry["itemCount"] >= 4, geometry
    assert len(geometry["itemTops"]) == 1, f"the menu wraps: {geometry}"
    assert max(geometry["centres"]) - min(geometry["centres"]) <= 4, f"not one line: {geometry}"
    assert geometry["tallestLink"] <= 48, f"a label breaks onto two lines: {geometry}"
    assert geometry["height"] <= 64, geometry  # one line of the bar (brand + padding + its border)
    assert geometry["overflow"] <= 0, geometry
    assert geometry["pageOverflow"] <= 0, geometry
    assert geometry["toolsRight"] <= geometry["width"], geometry

    # every destination of the user's menu is still in the header (a link, in the bar or a dropdown)
    for item in navigation.main_items(user, "/console/"):
        for entry in item.children or (item,):
            assert laptop.locator(f"nav.console-navbar a[href='{entry.url}']").count() >= 1, entry.key
