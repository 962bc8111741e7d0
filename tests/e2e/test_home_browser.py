"""Issue 14's merchant home on a phone: a shopkeeper signs in on a 390 px wide screen and lands on its
home — its terminals, its next payout, its complaint — in Chinese, then in English; the page never
scrolls sideways and the browser reports no error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from posfleet.billing.tests.test_statements import build_october
from posfleet.closure.services import complaint_raise
from posfleet.fleet.states import Status
from posfleet.platform.context import Actor
from posfleet.testing.browser import log_in, watched_page
from posfleet.testing.personas import build_world, make_terminal

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
SN_LONG = "SN-A-VERY-LONG-SERIAL-0001"  # a long SN must wrap, not widen the page


@pytest.fixture
def shop():
    world = build_world()
    october = build_october(world)
    make_terminal(world, SN_LONG, Status.BOUND, merchant=world.merchant_a)
    complaint_raise(
        actor=Actor.for_user(world.user("merchant_a")),
        category="device",
        subject="打印机卡纸，每张小票都卡住，已经影响到正常营业",
        text="每张小票都卡纸。",
    )
    merchant = world.user("merchant_a")
    merchant.language = "zh-hans"
    merchant.save(update_fields=["language"])
    return october


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"


def test_a_merchant_reads_its_home_on_a_phone_in_chinese_and_english(
    browser, browser_errors, live_server, shop
) -> None:
    base = live_server.url
    with watched_page(browser, browser_errors, viewport=PHONE, is_mobile=True, has_touch=True) as page:
        log_in(page, base, "merchant_a")
        expect(page).to_have_url(re.compile(r"/console/$"))
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        expect(page.get_by_test_id("home-money")).to_be_visible()
        expect(page.get_by_test_id("next-payout")).to_contain_text("¥")
        terminals = page.get_by_test_id("home-terminal-list")
        expect(terminals).to_contain_text(shop.terminal.sn)
        expect(terminals).to_contain_text(SN_LONG)
        expect(page.get_by_test_id("home-complaints")).to_contain_text("打印机卡纸")
        main = page.locator("main").inner_text()
        for words in ("押金余额", "收件箱", "资金概览", "投诉"):  # Deposit held, Inbox, Money overview
            assert words in main, words
        assert page.get_by_test_id("kpi-total").count() == 0  # not the operator's dashboard
        no_sideways_scroll(page)

        page.locator(".navbar-toggler").click()
        # The menu's opening animation done (a click while it slides in can miss the button).
        expect(page.locator(".navbar-collapse.show")).to_be_visible()
        page.get_by_test_id("language-switch").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_test_id("home-money")).to_contain_text("Next payout")
        expect(page.get_by_test_id("home-terminals")).to_contain_text("Takes payments")
        expect(page.get_by_test_id("home-inbox")).to_contain_text("Inbox")
        no_sideways_scroll(page)

        page.get_by_test_id("home-terminal-link").filter(has_text=shop.terminal.sn).click()
        expect(page).to_have_url(re.compile(rf"/console/terminals/{shop.terminal.sn}/$"))
