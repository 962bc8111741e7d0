"""The money pages show the numbers of the data: balances, settlements, statements (the HTML page and
the PDF carry the same totals), the batch detail, the comparison; in English and in Chinese."""

from __future__ import annotations

import io
import json
import re
from datetime import date

import pypdf
import pytest

from posfleet.billing.models import SettlementBatch
from posfleet.console.tests.test_money_access import MID_A, MID_B, money  # noqa: F401  (fixture)


def text_of(html: str, name: str, until: str = "</") -> str:
    """The text inside the element with ``data-testid=name`` up to ``until`` (tags stripped, spaces
    collapsed)."""
    found = re.search(rf'data-testid="{re.escape(name)}"[^>]*>(.*?){re.escape(until)}', html, re.S)
    assert found, name
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_a_merchant_sees_its_balances_settlements_statements_and_contract(money, login):  # noqa: F811
    html = login("merchant_a").get("/console/money/").content.decode()
    # Now (2027-01-15): October's closing ¥994.00 plus November 2's ¥500.00 less its ¥3.00 fee.
    assert text_of(html, "kpi-payable") == "¥1,491.00"
    assert text_of(html, "kpi-deposit") == "¥299.00"
    assert text_of(html, "kpi-fees") == "¥0.00"
    assert text_of(html, "kpi-due") == "—"  # the one-year contract's only fee was charged in October
    assert f'data-testid="settlement-link-{money.batch.pk}"' in html
    assert f'href="/console/merchants/{MID_A}/statements/2026-10/pdf/"' in html
    assert f'data-testid="penalty-today-{money.contract.pk}">¥0.00<' in html
    assert f'href="/console/merchants/{MID_A}/compare/"' in html
    assert 'data-testid="current-plan">标准费率 Standard<' in html
    assert f'data-testid="release-{money.deposit.pk}"' not in html  # merchants do not release deposits
    chart = json.loads(html.split('id="money-data" type="application/json">')[1].split("</script>")[0])
    october = chart["labels"].index("2026-10")
    assert (chart["takings"][october], chart["fees"][october]) == (640000 - 2500, 2813)
    assert chart["takings_text"][october] == "¥6,375.00"
    assert len(chart["labels"]) == 12


def test_staff_choose_a_merchant_and_see_the_release_button(money, login):  # noqa: F811
    client = login("reviewer")
    chooser = client.get("/console/money/").content.decode()
    assert f'data-testid="merchant-{MID_A}"' in chooser
    assert f'data-testid="merchant-{MID_B}"' in chooser
    found = client.get("/console/money/?q=Shop+B", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in found
    assert f'data-testid="merchant-{MID_B}"' in found
    assert f'data-testid="merchant-{MID_A}"' not in found
    page = client.get(f"/console/merchants/{MID_A}/money/").content.decode()
    assert f'data-testid="release-{money.deposit.pk}"' in page
    assert 'data-testid="change-plan"' not in page  # only admins assign plans
    assert (
        'data-testid="change-plan"'
        in login("admin").get(f"/console/merchants/{MID_A}/money/").content.decode()
    )


def test_an_agent_chooses_among_its_own_merchants_only(money, login):  # noqa: F811
    html = login("agent_a").get("/console/money/").content.decode()
    assert f'data-testid="merchant-{MID_A}"' in html
    assert 'data-testid="merchant-100000000000003"' in html  # sub-agent A1's merchant
    assert f'data-testid="merchant-{MID_B}"' not in html


@pytest.mark.pdf
def test_the_statement_page_and_its_pdf_show_the_same_totals(money, login):  # noqa: F811
    client = login("merchant_a")
    html = client.get(f"/console/merchants/{MID_A}/statements/2026-10/").content.decode()
    figures = {
        "st-sum-sales": "¥6,400.00",
        "st-sum-refunds": "¥25.00",
        "st-sum-fees": "¥28.13",
        "st-sum-payout": "¥5,452.67",
        "st-sum-closing": "¥994.00",
        "st-opening": "¥198.80",
        "st-closing": "¥994.00",
        "st-deposit-held": "¥299.00",
        "st-fees-due": "¥99.00",
        "st-fees-charged": "¥99.00",
        "st-fees-deducted": "¥99.00",
        "st-fees-outstanding": "¥0.00",
    }
    for name, value in figures.items():
        assert text_of(html, name) == value, name
    assert f'href="/console/settlements/{money.batch.pk}/"' in html  # batches link on screen
    response = client.get(f"/console/merchants/{MID_A}/statements/2026-10/pdf/")
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="statement-{MID_A}-2026-10.pdf"'
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(response.content)).pages)
    for value in set(figures.values()):
        assert value in text, value
    assert "/console/settlements/" not in text


def test_the_statement_in_chinese_for_a_chinese_user(money, login, world):  # noqa: F811
    user = world.user("merchant_a")
    user.language = "zh-hans"
    user.save()
    client = login("merchant_a")
    html = client.get(f"/console/merchants/{MID_A}/statements/2026-10/").content.decode()
    assert '<html lang="zh-hans">' in html
    for label in ("信用卡", "借记卡", "退货与冲正", "从结算款中扣除", "商户号"):
        assert label in html, label
    pdf = client.get(f"/console/merchants/{MID_A}/statements/2026-10/pdf/").content
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    for expected in ("信用卡", "2026年10月", "¥6,400.00", "¥994.00"):
        assert expected in text, expected


@pytest.mark.pdf
def test_the_batch_page_and_pdf(money, login):  # noqa: F811
    client = login("agent_a")
    html = client.get(f"/console/settlements/{money.batch.pk}/").content.decode()
    assert text_of(html, "batch-gross") == "¥5,400.00"
    assert text_of(html, "batch-fees") == "-¥22.28"
    assert text_of(html, "batch-service-fees") == "-¥99.00"
    assert text_of(html, "batch-payout-total") == "¥5,278.72"
    assert 'data-testid="batch-mismatch"' not in html
    assert f'href="/console/transactions/?batch={money.batch.pk}"' in html
    response = client.get(f"/console/settlements/{money.batch.pk}/pdf/")
    assert response["Content-Disposition"] == f'attachment; filename="settlement-{MID_A}-20261005.pdf"'
    text = pypdf.PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert "¥5,278.72" in text


def test_the_settlement_list_is_scoped(money, login):  # noqa: F811
    assert (
        f'data-testid="batch-{money.batch.pk}"'
        in login("agent_a").get("/console/settlements/").content.decode()
    )
    assert (
        f'data-testid="batch-{money.batch.pk}"'
        not in login("agent_b").get("/console/settlements/").content.decode()
    )
    filtered = login("admin").get(f"/console/settlements/?merchant={MID_B}").content.decode()
    assert f'data-testid="batch-{money.batch.pk}"' not in filtered


def test_the_comparison_page_shows_plans_side_by_side_with_a_conclusion(money, login):  # noqa: F811
    html = (
        login("merchant_a")
        .get(f"/console/merchants/{MID_A}/compare/?start=2026-09&end=2026-11")
        .content.decode()
    )
    # Own plan's fees = the fees stored: September ¥1.20 + October ¥28.13 + November ¥3.00; plus the
    # contract's ¥99.00 a year of service fee, ¥8.25 a month (issue 14: the total, not only the fees).
    assert text_of(html, "plan-fees-standard") == "¥32.33"
    assert text_of(html, "plan-service-standard") == "¥24.75"
    assert text_of(html, "plan-total-standard") == "¥57.08"
    assert text_of(html, "compare-actual") == "¥32.33"
    assert text_of(html, "compare-sales") == "¥7,100.00"
    assert "Your current plan 标准费率 Standard was the cheapest" in text_of(html, "conclusion", "</p>")
    chart = json.loads(html.split('id="comparison-data" type="application/json">')[1].split("</script>")[0])
    assert chart["labels"] == ["2026-09", "2026-10", "2026-11"]
    assert chart["plans"][0]["values"] == [120 + 825, 2813 + 825, 300 + 825]
    assert chart["plans"][0]["current"] is True


def test_comparison_recommends_a_cheaper_plan_in_plain_words(money, login):  # noqa: F811
    from datetime import date
    from decimal import Decimal

    from posfleet.billing.services.plans import RuleSpec, plan_create
    from posfleet.testing.personas import SYSTEM

    rules = {m: RuleSpec(Decimal("0.0030")) for m in ("credit", "debit", "qr", "nfc", "foreign")}
    plan_create(
        actor=SYSTEM,
        code="cheap",
        name="Cheap Pay",
        is_competitor=True,
        provider_name="Rival",
        effective_from=date(2020, 1, 1),
        rules=rules,
    )
    html = (
        login("merchant_a")
        .get(f"/console/merchants/{MID_A}/compare/?start=2026-09&end=2026-11")
        .content.decode()
    )
    # Cheap Pay: 0.30 % of each sale, refunds handing back their share, and no service fee: ¥11.11 less
    # in fees and ¥24.75 less in service fees than the standard plan with its contract; the contract
    # has no early-termination penalty.
    assert text_of(html, "plan-total-cheap") == "¥21.22"
    assert text_of(html, "plan-saving-cheap") == "¥35.86"
    assert text_of(html, "conclusion", "</p>").startswith(
        "Switching to Cheap Pay would have cost ¥35.86 less than staying on 标准费率 Standard over these 3 "
        "months, everything included. Its transaction fees are ¥11.11 lower. Its service and SIM fees are "
        "¥24.75 lower."
    )


def _fen(text: str) -> int:
    return int(text.replace("¥", "").replace(",", "").replace(".", ""))


def test_the_recent_settlements_show_every_deduction_and_add_up_on_every_row(money, login):  # noqa: F811
    """Issue 11: a row showed sales and fees but not the ¥99.00 service fee the batch kept back, so its
    payout did not add up. Each row shows refunds and every deduction by terminal; paid out = sales −
    refunds − fees − deductions."""
    html = login("merchant_a").get("/console/money/").content.decode()
    first = money.batch.pk  # 2026-10-05: the contract's first annual fee was deducted
    assert text_of(html, f"settlement-row-{first}", until="</tr>") == (
        "5 Oct 2026 6 Oct 2026 ¥5,400.00 ¥0.00 ¥22.28 "
        "¥99.00 Service fee of SN-STMT-0001, year 1 ¥99.00 "
        "¥5,278.72"
    )
    # 2026-10-06: the refund of ¥25.00 handed ¥0.15 of the fee back
    second = SettlementBatch.objects.get(merchant__mid=MID_A, business_date=date(2026, 10, 6)).pk
    assert text_of(html, f"settlement-row-{second}", until="</tr>") == (
        "6 Oct 2026 7 Oct 2026 ¥200.00 ¥25.00 ¥1.05 ¥0.00 ¥173.95"
    )
    rows = re.findall(r'data-testid="settlement-row-(\d+)"', html)
    assert sorted(rows) == sorted([str(first), str(second)])
    for pk in rows:
        sales, refunds, fees, deducted, paid = (
            _fen(text_of(html, f"settlement-{name}-{pk}"))
            for name in ("sales", "refunds", "fees", "deducted", "payout")
        )
        assert paid == sales - refunds - fees - deducted, pk
    assert "Paid out = sales − refunds − fees − deductions" in html


def test_the_batch_page_and_the_statement_say_what_the_deduction_paid(money, login):  # noqa: F811
    client = login("merchant_a")
    batch = client.get(f"/console/settlements/{money.batch.pk}/").content.decode()
    assert text_of(batch, "batch-service-fees") == "-¥99.00"
    assert text_of(batch, "batch-deduction", until="</tr>") == "Service fee of SN-STMT-0001, year 1 -¥99.00"
    statement = client.get(f"/console/merchants/{MID_A}/statements/2026-10/").content.decode()
    assert text_of(statement, f"st-settlement-{money.batch.pk}", until="</tr>") == (
        "5 Oct 2026 6 Oct 2026 4 ¥5,400.00 ¥0.00 ¥22.28 "
        "¥99.00 Service fee of SN-STMT-0001, year 1 ¥99.00 "
        "¥5,278.72"
    )
