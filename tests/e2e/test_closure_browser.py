"""Issue 12's browser scenario: a merchant closes a terminal in Chinese — chooses why, reads the quote
(every money line and the expected refund), confirms — and, once the case has run, downloads its data
backup and the closure certificate from the case page."""

from __future__ import annotations

import re
import zipfile

import pytest
from playwright.sync_api import expect

from posfleet.closure.models import ClosureCase
from posfleet.closure.runner import advance
from posfleet.closure.services import closure_decide, closure_inspect, closure_receive
from posfleet.closure.tests.conftest import closable, person
from posfleet.testing.browser import log_in
from posfleet.testing.personas import build_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def setup():  # type: ignore[no-untyped-def]
    world = build_world()
    setup = closable(world)
    merchant = world.user("merchant_a")
    merchant.language = "zh-hans"
    merchant.save(update_fields=["language"])
    return setup


def test_a_merchant_closes_a_terminal_in_chinese(page, live_server, setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base, sn = live_server.url, setup.terminal.sn
    log_in(page, base, "merchant_a")
    page.goto(f"{base}/console/terminals/{sn}/")
    expect(page.locator("html")).to_have_attribute("lang", re.compile("zh"))
    page.get_by_test_id("terminal-close").click()

    # Screen 1: why.
    page.select_option("select[name=reason]", "shop_closed")
    page.get_by_test_id("closure-see-quote").click()
    # Screen 2: the quote before committing — the penalty with its clause, the deposit, the refund.
    quote = page.get_by_test_id("closure-quote")
    expect(quote.get_by_test_id("quote-line-penalty")).to_contain_text("¥60.00")
    expect(quote.get_by_test_id("quote-line-penalty")).to_contain_text("违约金")
    expect(quote.get_by_test_id("quote-deposit")).to_contain_text("¥299.00")
    expect(quote.get_by_test_id("quote-refund")).to_contain_text("¥140.00")
    assert ClosureCase.objects.count() == 0  # nothing is asked for until confirmed
    page.get_by_test_id("closure-confirm").click()

    # Screen 3: the case, in plain words.
    page.wait_for_url(re.compile(r"/console/closures/CL\d+/$"))
    case = ClosureCase.objects.get()
    assert case.status == "requested"
    expect(page.get_by_test_id("closure-steps")).to_be_visible()

    # Review, the steps, the device back at the warehouse (other people, elsewhere).
    closure_decide(actor=person(setup.world, "reviewer"), number=case.number, decision="approve")
    advance(case.pk)
    closure_receive(actor=person(setup.world, "warehouse"), sn=sn)
    closure_inspect(actor=person(setup.world, "warehouse"), sn=sn, grade="A", disposal="refurbish")
    advance(case.pk)
    case.refresh_from_db()
    assert case.status == "completed"

    page.reload()
    expect(page.get_by_test_id("step-backup")).to_have_attribute("data-state", "done")
    with page.expect_download() as backup:
        page.get_by_test_id("step-evidence-backup").locator("a").first.click()
    path = tmp_path / "backup.zip"
    backup.value.save_as(path)
    with zipfile.ZipFile(path) as bundle:
        assert {"manifest.json", "manifest.sig", "transactions.csv"} <= set(bundle.namelist())

    expect(page.get_by_test_id("closure-certificate")).to_have_text(case.certificate_code or "")
    href = page.get_by_test_id("closure-certificate-pdf").get_attribute("href")
    certificate = page.request.get(f"{base}{href}")
    assert certificate.status == 200
    assert certificate.headers["content-type"].startswith("application/pdf")
    assert certificate.body().startswith(b"%PDF")
