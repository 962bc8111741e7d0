"""Issue 4's browser scenario for applications: a merchant applies for a terminal in Chinese, then
follows it on its page (the progress picture, what happens next, the tracking number) and confirms
the delivery itself."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from posfleet.enrollment.models import Application
from posfleet.enrollment.services import fulfilment
from posfleet.platform.context import Actor
from posfleet.testing.applications import approve, new_merchant_request, stock
from posfleet.testing.browser import log_in
from posfleet.testing.personas import build_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world():
    world = build_world()
    new_merchant_request()  # the standard rate plan
    stock(world, 1)
    merchant = world.user("merchant_a")
    merchant.language = "zh-hans"
    merchant.save(update_fields=["language"])
    return world


def test_a_merchant_applies_in_chinese_and_tracks_the_application(page, live_server, world):
    base = live_server.url
    log_in(page, base, "merchant_a")
    page.goto(f"{base}/console/applications/")
    expect(page.locator("html")).to_have_attribute("lang", re.compile("zh"))
    page.get_by_test_id("new-application").click()
    form = page.get_by_test_id("application-form")
    expect(form.get_by_test_id("offer")).to_contain_text("¥299.00")  # the deposit, before signing
    page.fill("#id_contact_name", "陈女士")
    page.fill("#id_contact_phone", "13900001111")
    page.fill("#id_store_name", "二号店")
    page.fill("#id_city", "上海")
    page.fill("#id_address", "南京西路 100 号")
    page.fill("#id_terminal_count", "1")
    page.get_by_test_id("submit-application").click()  # the offer is not accepted yet
    expect(page.get_by_test_id("form-invalid")).to_be_visible()
    assert Application.objects.count() == 0
    page.check("#id_accept_offer")
    page.get_by_test_id("submit-application").click()

    page.wait_for_url(re.compile(r"/console/applications/AP\d+/$"))
    application = Application.objects.get()
    steps = page.get_by_test_id("application-steps")
    expect(steps.locator(".app-step-done")).to_have_count(1)
    expect(page.get_by_test_id("application-status")).to_have_text(str(_zh("waiting for review")))
    expect(page.get_by_test_id("next-step")).to_contain_text("审核")

    reviewer, agent = Actor.for_user(world.user("reviewer")), Actor.for_user(world.user("agent_a"))
    approve(reviewer, application.number, "资料齐全")
    fulfilment.application_allocate(actor=agent, number=application.number)
    fulfilment.application_ship(
        actor=agent, number=application.number, carrier="顺丰速运", tracking_no="SF20261123"
    )

    page.reload()
    expect(steps.locator(".app-step-done")).to_have_count(5)  # up to "shipped"; "delivered" is next
    expect(page.get_by_test_id("next-step")).to_contain_text("SF20261123")
    page.get_by_test_id("deliver").click()
    expect(page.get_by_test_id("application-status")).to_have_text(str(_zh("delivered")))
    application.refresh_from_db()
    assert application.status == "delivered"
    assert application.delivered_at is not None


def _zh(text: str) -> str:
    from django.utils import translation

    with translation.override("zh-hans"):
        return str(translation.gettext(text))
