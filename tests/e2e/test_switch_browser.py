"""Issue 14 in a browser: a merchant reads "should I switch?" with the whole cost — fees, service fees,
what switching to another provider would cost once, line by line — asks for the cheaper plan of ours in
English, sees the request waiting, switches the console to Chinese and withdraws it there."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from playwright.sync_api import expect

from posfleet.billing.models import PlanChangeRequest
from posfleet.billing.services.plans import RuleSpec, plan_create
from posfleet.billing.statements import Month
from posfleet.billing.tests.test_statements import SH, active_terminal, ingest, txn
from posfleet.platform.clock import today
from posfleet.testing.browser import log_in
from posfleet.testing.money import on_standard_plan, signed_contract
from posfleet.testing.personas import SYSTEM, build_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

METHODS = ("credit", "debit", "qr", "nfc", "foreign")


@pytest.fixture
def merchant():  # type: ignore[no-untyped-def]
    world = build_world()
    merchant = world.merchant_a
    on_standard_plan(merchant)
    last_month = Month.of(today()).plus(-1)
    since = datetime.combine(last_month.first_day - timedelta(days=40), datetime.min.time(), tzinfo=SH)
    terminal = active_terminal(world, "SN-E2E-SWITCH", merchant, since=since)
    with time_machine.travel(since + timedelta(days=1), tick=False):
        signed_contract(
            terminal,
            starts_on=since.date(),
            min_term_months=12,
            penalty_rule="fixed",
            penalty_fixed_fen=50_000,
        )
    ingest(txn(terminal, 1, 1_000_000, day=last_month.first_day + timedelta(days=9)))  # ¥10,000.00 credit
    plan_create(
        actor=SYSTEM,
        code="lite",
        name="Lite",
        effective_from=since.date(),
        rules={m: RuleSpec(Decimal("0.0045")) for m in METHODS},
    )
    plan_create(
        actor=SYSTEM,
        code="rival",
        name="Rival",
        is_competitor=True,
        provider_name="Rival Ltd",
        effective_from=since.date(),
        rules={m: RuleSpec(Decimal("0.0030")) for m in METHODS},
        deposit_fen=30_000,
    )
    return merchant


def test_a_merchant_asks_for_the_cheaper_plan_in_english_and_withdraws_it_in_chinese(
    page, live_server, merchant
):  # type: ignore[no-untyped-def]
    base = live_server.url
    log_in(page, base, "merchant_a")
    page.goto(f"{base}/console/merchants/{merchant.mid}/compare/")
    expect(page.locator("html")).to_have_attribute("lang", re.compile("en"))
    # Rival's rate is the lowest, but leaving costs the ¥500.00 fixed penalty and its ¥300.00 deposit.
    expect(page.get_by_test_id("conclusion")).to_contain_text("Switching to Lite would have cost")
    expect(page.get_by_test_id("line-rival-penalty")).to_contain_text("¥500.00")
    expect(page.get_by_test_id("line-rival-new_deposit")).to_contain_text("¥300.00")
    expect(page.get_by_test_id("line-rival-deposit_held")).to_contain_text("not in the total")
    expect(page.get_by_test_id("month-without-sales").first).to_contain_text("not in the average")

    page.get_by_test_id("plan-change-submit").click()
    expect(page.get_by_test_id("plan-change-state")).to_have_attribute("data-status", "requested")
    expect(page.get_by_test_id("plan-change-status")).to_have_text("requested")
    assert PlanChangeRequest.objects.get().to_plan.code == "lite"

    page.get_by_test_id("language-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", re.compile("zh"))
    expect(page.get_by_test_id("compare-link")).to_contain_text("要换方案吗")
    expect(page.get_by_test_id("plan-change-state")).to_have_attribute("data-status", "requested")
    page.get_by_test_id("plan-change-withdraw").click()
    expect(page.get_by_test_id("plan-change-state")).to_have_attribute("data-status", "withdrawn")
    expect(page.get_by_test_id("plan-change-offer")).to_be_visible()  # may ask again
    assert PlanChangeRequest.objects.get().status == "withdrawn"
