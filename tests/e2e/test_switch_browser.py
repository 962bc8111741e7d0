"""Issue 14 in a browser, in Chinese and in English: a merchant opens its home, follows a notice from its
inbox to its terminal, goes on to its money and "should I switch?" with the whole cost — fees, service
fees, what switching to another provider would cost once, line by line — asks for the cheaper plan of
ours, sees the request waiting, switches the console to the other language and withdraws it there. No
script or CSP error shows up (the ``page`` fixture)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import translation
from playwright.sync_api import expect

from posfleet.billing.models import PlanChangeRequest
from posfleet.billing.plan_change_states import PlanChangeStatus
from posfleet.billing.services.plans import RuleSpec, plan_create
from posfleet.billing.statements import Month
from posfleet.billing.tests.test_statements import SH, active_terminal, ingest, txn
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command
from posfleet.iam.models import User
from posfleet.notifications.services import deliver_due
from posfleet.platform.clock import today
from posfleet.platform.context import Actor
from posfleet.platform.outbox import dispatch_outbox
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
    # A notice in the merchant's inbox: its terminal was suspended for a while (and resumed).
    terminal_transition(actor=Actor.system("test"), sn=terminal.sn, action=Command.SUSPEND, reason="risk")
    terminal_transition(actor=Actor.system("test"), sn=terminal.sn, action=Command.RESUME)
    dispatch_outbox()
    deliver_due()
    return merchant


def words(language: str, status: PlanChangeStatus) -> str:
    with translation.override(language):
        return str(status.label)


OTHER = {"en": "zh-hans", "zh-hans": "en"}
LANG = {"en": re.compile("^en"), "zh-hans": re.compile("^zh")}


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_merchant_follows_a_notice_to_the_comparison_asks_for_the_cheaper_plan_and_withdraws_it(
    page, live_server, merchant, language
):  # type: ignore[no-untyped-def]
    User.objects.filter(username="merchant_a").update(language=language)
    base = live_server.url
    log_in(page, base, "merchant_a")
    expect(page.locator("html")).to_have_attribute("lang", LANG[language])
    expect(page.get_by_test_id("home-money")).to_be_visible()  # its home, not the operator's dashboard

    page.get_by_test_id("home-inbox-item").first.locator("a").click()
    expect(page).to_have_url(re.compile(r"/console/inbox/\?show=unread$"))
    notice = page.get_by_test_id("inbox-item").filter(has_text="SN-E2E-SWITCH").first
    notice.get_by_role("button").click()  # opens it: read, and on to its terminal
    expect(page).to_have_url(re.compile(r"/console/terminals/SN-E2E-SWITCH/$"))
    page.get_by_test_id("link-merchant").click()
    expect(page).to_have_url(re.compile(rf"/console/merchants/{merchant.mid}/money/$"))
    page.get_by_test_id("compare-link").click()
    expect(page).to_have_url(re.compile(rf"/console/merchants/{merchant.mid}/compare/"))

    # Rival's rate is the lowest, but leaving costs the ¥500.00 fixed penalty and its ¥300.00 deposit.
    expect(page.get_by_test_id("conclusion")).to_contain_text("Lite")
    expect(page.get_by_test_id("line-rival-penalty")).to_contain_text("¥500.00")
    expect(page.get_by_test_id("line-rival-new_deposit")).to_contain_text("¥300.00")
    expect(page.get_by_test_id("line-rival-deposit_held")).to_be_visible()
    expect(page.get_by_test_id("month-without-sales").first).to_be_visible()
    if language == "en":
        expect(page.get_by_test_id("conclusion")).to_contain_text("Switching to Lite would have cost")
        expect(page.get_by_test_id("line-rival-deposit_held")).to_contain_text("not in the total")
        expect(page.get_by_test_id("month-without-sales").first).to_contain_text("not in the average")
    else:
        expect(page.get_by_test_id("compare-link")).to_contain_text("要换方案吗")

    page.get_by_test_id("plan-change-submit").click()
    expect(page.get_by_test_id("plan-change-state")).to_have_attribute("data-status", "requested")
    expect(page.get_by_test_id("plan-change-status")).to_have_text(
        words(language, PlanChangeStatus.REQUESTED)
    )
    assert PlanChangeRequest.objects.get().to_plan.code == "lite"

    page.get_by_test_id("language-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", LANG[OTHER[language]])
    expect(page.get_by_test_id("plan-change-status")).to_have_text(
        words(OTHER[language], PlanChangeStatus.REQUESTED)
    )
    page.get_by_test_id("plan-change-withdraw").click()
    expect(page.get_by_test_id("plan-change-state")).to_have_attribute("data-status", "withdrawn")
    expect(page.get_by_test_id("plan-change-offer")).to_be_visible()  # may ask again
    assert PlanChangeRequest.objects.get().status == "withdrawn"
