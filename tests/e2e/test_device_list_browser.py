"""The device list's selection in a browser (ADR 0029), in Chinese: every match of a search ticked on
the server, a tick taken back, SNs pasted with an unknown one reported, and the bulk dialog acting on
exactly the selection; no script or CSP error on the way."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from posfleet.fleet.states import Status
from posfleet.testing.browser import log_in
from posfleet.testing.personas import build_world, make_terminal

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fleet():
    world = build_world()
    admin = world.user("admin")
    admin.language = "zh-hans"
    admin.save(update_fields=["language"])
    for i in range(1, 4):
        make_terminal(world, f"SN-SEL-{i:04d}", Status.ACTIVE)
    make_terminal(world, "SN-OTHER-0001", Status.ACTIVE, merchant=world.merchant_b)
    return world


def test_select_every_match_untick_one_paste_and_act(page, live_server, fleet):
    base = live_server.url
    log_in(page, base, "admin")
    page.goto(f"{base}/console/terminals/")
    page.fill("input[name=q]", "sn-sel")
    expect(page.locator("[data-sn]")).to_have_count(3)
    count = page.get_by_test_id("selection-count")

    page.get_by_test_id("select-matches").click()
    expect(count).to_have_attribute("data-count", "3")
    expect(count).to_contain_text("已选 3 台")
    expect(page.locator("[data-sn='SN-SEL-0002']")).to_be_checked()  # the rows followed

    page.uncheck("[data-sn='SN-SEL-0002']")
    expect(count).to_have_attribute("data-count", "2")

    page.get_by_test_id("paste-toggle").click()
    expect(page.locator("#paste-sns")).to_have_class(re.compile(r"\bshow\b"))  # opened, not opening
    pasted = page.locator("#paste-sns textarea[name=sns]")
    pasted.fill("sn-sel-0002\nNOPE-0001")
    expect(pasted).to_have_value("sn-sel-0002\nNOPE-0001")
    page.get_by_test_id("paste-submit").click()
    expect(page.get_by_test_id("selection-message")).to_contain_text("NOPE-0001")
    expect(count).to_have_attribute("data-count", "3")
    expect(page.locator("[data-sn='SN-SEL-0002']")).to_be_checked()

    page.locator("[data-testid=bulk-toolbar] [data-action=deactivate]").first.click()
    dialog = page.get_by_test_id("action-dialog")
    dialog.wait_for()
    expect(dialog.get_by_test_id("selected-count")).to_have_attribute("data-count", "3")
    assert dialog.locator("[data-applies=true]").count() == 3
