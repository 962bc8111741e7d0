"""Issue 3's "done when" in a browser, on demo data: a merchant sees its money in Chinese, downloads
last month's statement as a PDF whose totals are the database's, and runs the "should I switch?"
comparison, which shows a chart and a total for every plan, ours and the competitors'."""

from __future__ import annotations

import io
import re

import pypdf
import pytest
from django.utils import translation
from playwright.sync_api import expect

from posfleet.billing.comparison import compare_plans
from posfleet.billing.statements import Month, monthly_statement
from posfleet.billing.verify import verify_ledger
from posfleet.demo.build import build_demo
from posfleet.demo.money import vocabulary as M
from posfleet.demo.vocabulary import PASSWORD
from posfleet.iam.models import User
from posfleet.parties.models import Merchant
from posfleet.platform.clock import today
from posfleet.platform.money import format_fen
from posfleet.testing.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo():
    # Today's date, as `make run` does: 45 days of money always hold one whole past month.
    build_demo(agents=2, merchants=20, terminals=200, seed=4242, money_days=45, sales_per_day=2.0)
    return Merchant.objects.get(organisation=User.objects.get(username="merchant1").organisation)


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


def test_a_merchant_reads_its_money_statement_and_comparison_in_chinese(page, live_server, demo, tmp_path):
    base = live_server.url
    last_month = Month.of(today()).plus(-1)
    with translation.override("zh-hans"):
        statement = monthly_statement(demo, last_month)
        label = last_month.label
    assert statement.totals.sales_fen > 0
    assert statement.settlement_totals.payout_fen > 0

    log_in(page, base, "merchant1", PASSWORD)  # the demo's, as README says
    page.goto(f"{base}/console/money/")
    expect(page.locator("html")).to_have_attribute("lang", re.compile("zh"))
    expect(page.get_by_test_id("recent-settlements")).to_be_visible()
    expect(page.get_by_test_id("current-plan")).to_be_visible()
    assert "结算" in page.locator("main").inner_text()

    with page.expect_download() as download:
        page.get_by_test_id("latest-statement-pdf").click()
    saved = tmp_path / "statement.pdf"
    download.value.save_as(saved)
    text = pdf_text(saved.read_bytes())
    assert demo.mid in text
    assert label in text  # e.g. 2026年10月
    for fen in (
        statement.totals.sales_fen,
        statement.totals.fees_fen,
        statement.settlement_totals.payout_fen,
        statement.closing_payable_fen,
    ):
        assert format_fen(fen) in text, format_fen(fen)

    month = last_month.short_label
    page.goto(f"{base}/console/merchants/{demo.mid}/compare/?start={month}&end={month}")
    expect(page.locator("canvas[data-chart=comparison]")).to_be_visible()
    expect(page.get_by_test_id("conclusion")).to_be_visible()
    result = compare_plans(merchant_id=demo.pk, first=last_month, last=last_month, on=today())
    assert {spec.code for spec in M.COMPETITORS} <= {plan.code for plan in result.plans}
    for plan in result.plans:
        expect(page.get_by_test_id(f"plan-total-{plan.code}")).to_have_text(format_fen(plan.total_fen))
    expect(page.get_by_test_id("compare-actual")).to_have_text(format_fen(result.actual_total_fen))
    assert result.current is not None
    assert result.current.fees_total_fen == result.actual_total_fen  # the fees; the total adds service fees

    assert verify_ledger().ok


@pytest.fixture
def october_deposit():
    from posfleet.billing.tests.test_statements import build_october
    from posfleet.testing.personas import build_world

    world = build_world()
    return build_october(world).contract.deposit


def test_a_reviewer_releases_a_deposit_after_reading_the_amount_back(page, live_server, october_deposit):
    """Issue 11: "１００" typed in full-width digits is read as ¥100.00 and shown before anything moves;
    "Change the amounts" goes back; the release happens only once confirmed (with a code if asked)."""
    import time

    from posfleet.billing.models import Deposit
    from posfleet.testing.totp import code_at

    base = live_server.url
    log_in(page, base, "reviewer")
    page.goto(f"{base}/console/merchants/100000000000001/money/")
    page.get_by_test_id(f"release-{october_deposit.pk}").click()
    dialog = page.get_by_test_id("deposit-dialog")
    dialog.locator("input[name=refund]").fill("１００")
    dialog.locator("select[name=reason]").select_option("device_damaged")
    dialog.get_by_test_id("review-release").click()
    readback = dialog.get_by_test_id("release-readback")
    expect(readback).to_contain_text("¥100.00")
    expect(readback).to_contain_text("¥199.00")
    expect(dialog.get_by_test_id("release-typed")).to_contain_text("１００")
    assert Deposit.objects.get(pk=october_deposit.pk).status == Deposit.Status.HELD

    dialog.get_by_test_id("change-release").click()
    expect(dialog.locator("input[name=refund]")).to_have_value("100.00")
    dialog.get_by_test_id("review-release").click()
    expect(dialog.get_by_test_id("release-readback")).to_contain_text("¥100.00")
    if dialog.locator("input[name=totp]").count():
        dialog.locator("input[name=totp]").fill(code_at(time.time()))
    dialog.get_by_test_id("confirm-release").click()
    expect(dialog.get_by_test_id("release-done")).to_be_visible()
    deposit = Deposit.objects.get(pk=october_deposit.pk)
    assert (deposit.status, deposit.refunded_fen, deposit.forfeited_fen) == ("refunded", 10000, 19900)
