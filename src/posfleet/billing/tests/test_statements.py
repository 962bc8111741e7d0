"""Statements: the monthly statement and the settlement batch detail add up to the fen, from the data
made by the real services (ingest, settlement, contracts); the PDF carries the same totals as the
screen, with Chinese labels in Chinese.

``october`` builds one merchant's October 2026 (used by the console tests too):

- 2026-09-30 credit ¥200.00 (fee ¥1.20), never settled on its own day: the opening payable is ¥198.80;
- contract signed 2026-10-01: deposit ¥299.00 collected, annual fee ¥99.00 due that day;
- 2026-10-05 credit ¥100.00 (fee 0.60), debit ¥5,000.00 (fee capped at ¥20.00), QR ¥100.00 (0.48),
  a declined ¥30.00; settled: ¥5,400.00 gross, ¥22.28 fees, ¥99.00 service fee deducted;
- 2026-10-06 refund ¥25.00 of the credit (hands back 0.15), NFC ¥200.00 (1.20); settled;
- 2026-10-31 credit ¥1,000.00 (fee 6.00), not settled: the closing payable is ¥994.00;
- 2026-11-02 credit ¥500.00: November's.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pypdf
import pytest
import time_machine
from django.utils import translation

from posfleet.billing.models import ServiceContract, SettlementBatch
from posfleet.billing.services.settlement import settlement_run
from posfleet.billing.services.transactions import TxnIn, transactions_ingest
from posfleet.billing.statements import (
    BATCH_DOCUMENT,
    MONTHLY_DOCUMENT,
    Month,
    batch_detail,
    monthly_statement,
    render_document,
    render_pdf,
    statement_months,
)
from posfleet.billing.verify import verify_ledger
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.platform.context import Actor
from posfleet.testing.money import on_standard_plan, signed_contract
from posfleet.testing.personas import make_terminal

SH = ZoneInfo("Asia/Shanghai")
JOB = Actor.job("test-statements")
OCTOBER = Month(2026, 10)


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SH)


ACTIVE_SINCE = datetime(2026, 9, 20, 9, 0, tzinfo=SH)


def active_terminal(world, sn: str, merchant=None, since: datetime = ACTIVE_SINCE) -> Terminal:
    with time_machine.travel(since, tick=False):
        return make_terminal(world, sn, Status.ACTIVE, merchant=merchant)


def txn(
    terminal: Terminal, trace: int, amount: int, method: str = "credit", day: date = date(2026, 10, 5), **kw
) -> TxnIn:
    values = {
        "tid": terminal.tid,
        "batch_no": "000001",
        "trace_no": f"{trace:06d}",
        "txn_date": day,
        "occurred_at": at(day, 10, trace % 60),
        "method": method,
        "entry_mode": "scan" if method == "qr" else "insert",
        "amount_fen": amount,
        "card_masked": "" if method == "qr" else "622202******1234",
    }
    values.update(kw)
    return TxnIn(**values)


def refund(sale: TxnIn, trace: int, amount: int, day: date, kind: str = "refund") -> TxnIn:
    values = {**sale.__dict__, "trace_no": f"{trace:06d}", "amount_fen": amount, "kind": kind}
    values.update(original=sale.key, txn_date=day, occurred_at=at(day, 15, trace % 60), external_id=None)
    return TxnIn(**values)


def ingest(*items: TxnIn) -> None:
    results = transactions_ingest(actor=JOB, items=list(items))
    assert all(r.ok for r in results), [(r.code, r.detail) for r in results if not r.ok]


def settle(day: date) -> None:
    with time_machine.travel(at(day + timedelta(days=1), 6), tick=False):
        settlement_run(actor=JOB, business_date=day)


@dataclass
class October:
    terminal: Terminal
    contract: ServiceContract
    merchant: object


def build_october(world, sn: str = "SN-STMT-0001") -> October:
    merchant = world.merchant_a
    on_standard_plan(merchant)
    terminal = active_terminal(world, sn, merchant)
    base = 100 if sn == "SN-STMT-0001" else 500
    ingest(txn(terminal, base + 1, 20000, day=date(2026, 9, 30)))
    with time_machine.travel(at(date(2026, 10, 1), 10), tick=False):
        contract = signed_contract(
            terminal, starts_on=date(2026, 10, 1), deposit_fen=29900, annual_fee_fen=9900
        )
    credit = txn(terminal, base + 2, 10000)
    ingest(
        credit,
        txn(terminal, base + 3, 500000, "debit"),
        txn(terminal, base + 4, 10000, "qr"),
        txn(terminal, base + 5, 3000, status="declined", response_code="51"),
    )
    settle(date(2026, 10, 5))
    day6 = date(2026, 10, 6)
    ingest(refund(credit, base + 6, 2500, day6), txn(terminal, base + 7, 20000, "nfc", day=day6))
    settle(day6)
    ingest(txn(terminal, base + 8, 100000, day=date(2026, 10, 31)))
    ingest(txn(terminal, base + 9, 50000, day=date(2026, 11, 2)))
    return October(terminal, contract, merchant)


@pytest.fixture
def october(world) -> October:
    return build_october(world)


def pdf_text(content: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


# Exact figures of October (fen), worked out by hand in the module docstring.
SALES, REFUNDS, FEES = 640000, 2500, 60 + 600 - 15 + 2000 + 48 + 120
PAYOUT = (540000 - 2228 - 9900) + (20000 - 2500 - 105)


def test_monthly_statement_adds_up_to_the_fen(october):
    with time_machine.travel(at(date(2026, 11, 20)), tick=False):
        statement = monthly_statement(october.merchant, OCTOBER)
    lines = {line.method: line for line in statement.methods}
    assert list(lines) == ["credit", "debit", "qr", "nfc"]
    credit = lines["credit"]
    assert (
        credit.sales_count,
        credit.sales_fen,
        credit.refunds_count,
        credit.refunds_fen,
        credit.fees_fen,
    ) == (
        2,
        110000,
        1,
        2500,
        645,
    )
    assert credit.declined_count == 1
    assert [(x.sales_fen, x.fees_fen) for x in (lines["debit"], lines["qr"], lines["nfc"])] == [
        (500000, 2000),
        (10000, 48),
        (20000, 120),
    ]
    t = statement.totals
    assert (t.sales_count, t.sales_fen, t.refunds_fen, t.fees_fen, t.net_fen) == (
        5,
        SALES,
        REFUNDS,
        FEES,
        634687,
    )
    assert [(s.business_date, s.paid_on, s.txn_count, s.payout_fen) for s in statement.settlements] == [
        (date(2026, 10, 5), date(2026, 10, 6), 4, 527872),
        (date(2026, 10, 6), date(2026, 10, 7), 2, 17395),
    ]
    s = statement.settlement_totals
    assert (s.gross_fen, s.refunds_fen, s.fees_fen, s.service_fees_fen, s.payout_fen) == (
        560000,
        2500,
        2333,
        9900,
        PAYOUT,
    )
    assert (statement.opening_payable_fen, statement.closing_payable_fen) == (19880, 99400)
    movements = {m.kind: m.amount_fen for m in statement.payable_movements}
    # the figures of the month, each the one shown everywhere else on the statement
    assert movements == {
        "sales": SALES,
        "refunds": -REFUNDS,
        "fees": -FEES,
        "paid_out": -PAYOUT,
        "deducted": -9900,
    }
    assert statement.opening_payable_fen + sum(movements.values()) == statement.closing_payable_fen
    assert (statement.deposit_held_fen, statement.deposit_refunded_fen, statement.deposit_forfeited_fen) == (
        29900,
        0,
        0,
    )
    assert (
        statement.service_fees_due_fen,
        statement.service_fees_charged_fen,
        statement.service_fees_deducted_fen,
        statement.service_fees_outstanding_fen,
    ) == (9900, 9900, 9900, 0)
    assert not statement.is_partial
    assert verify_ledger().ok


def test_a_month_without_anything_is_all_zeros_and_september_has_its_own_figures(october):
    with time_machine.travel(at(date(2026, 11, 20)), tick=False):
        august = monthly_statement(october.merchant, Month(2026, 8))
        september = monthly_statement(october.merchant, Month(2026, 9))
        november = monthly_statement(october.merchant, Month(2026, 11))
    assert (august.methods, august.totals.sales_fen, august.closing_payable_fen) == ([], 0, 0)
    assert (september.totals.sales_fen, september.totals.fees_fen, september.closing_payable_fen) == (
        20000,
        120,
        19880,
    )
    assert september.settlements == []  # September 30 was settled with October 5 (business date in October)
    assert (november.totals.sales_fen, november.opening_payable_fen, november.is_partial) == (
        50000,
        99400,
        True,
    )


def test_statement_months_run_from_the_first_activity_to_now(october):
    months = statement_months(october.merchant.pk, until=date(2026, 12, 3))
    assert [str(m) for m in months] == ["2026-12", "2026-11", "2026-10", "2026-09"]


@pytest.mark.pdf
def test_the_pdf_has_the_statements_totals_in_english(october):
    with time_machine.travel(at(date(2026, 11, 20)), tick=False), translation.override("en"):
        statement = monthly_statement(october.merchant, OCTOBER)
        content = render_pdf(MONTHLY_DOCUMENT, {"statement": statement, "provider_name": "Test Provider"})
    assert content.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(content))
    assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=0.5)  # A4
    text = pdf_text(content)
    for expected in (
        "Monthly statement",
        "100000000000001",
        "Shop A",
        "¥6,400.00",  # sales
        "¥25.00",  # refunds
        "¥28.13",  # fees
        "¥6,346.87",  # net
        "¥5,452.67",  # paid out
        "¥99.00",  # service fee due, charged, deducted
        "¥198.80",  # opening payable
        "¥994.00",  # closing payable
        "¥299.00",  # deposit held
        "-¥5,452.67",  # paid out, in the settlement payable's flow
        "1 Oct 2026 – 31 Oct 2026",
    ):
        assert expected in text, expected


@pytest.mark.pdf
def test_the_pdf_in_chinese_has_chinese_labels_and_the_same_totals(october):
    with time_machine.travel(at(date(2026, 11, 20)), tick=False), translation.override("zh-hans"):
        statement = monthly_statement(october.merchant, OCTOBER)
        html = render_document(MONTHLY_DOCUMENT, {"statement": statement})
        content = render_pdf(MONTHLY_DOCUMENT, {"statement": statement})
    assert '<html lang="zh-hans">' in html
    assert "font-family: 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', sans-serif" in html
    assert "http://" not in html
    assert "https://" not in html
    text = pdf_text(content)
    for label in (
        "商户",
        "信用卡",
        "借记卡",
        "非接 / NFC",
        "退货与冲正",
        "从结算款中扣除",
        "结算",
        "冻结中",
        "2026年10月",
    ):
        assert label in text, label
    for amount in ("¥6,400.00", "¥28.13", "¥5,452.67", "¥198.80", "¥994.00", "¥299.00"):
        assert amount in text, amount


@pytest.mark.pdf
def test_batch_detail_lists_its_transactions_and_adds_up(october):
    batch = SettlementBatch.objects.get(merchant=october.merchant, business_date=date(2026, 10, 5))
    detail = batch_detail(batch)
    assert detail.adds_up
    assert detail.transaction_count == 4
    assert sorted(t.amount_fen for t in detail.transactions) == [10000, 10000, 20000, 500000]
    assert (detail.totals.sales_fen, detail.totals.fees_fen) == (540000, 2228)
    with translation.override("en"):
        text = pdf_text(render_pdf(BATCH_DOCUMENT, {"detail": detail}))
    for expected in (
        "Settlement detail",
        "Transactions of 5 Oct 2026",
        "¥5,400.00",
        "-¥22.28",
        "-¥99.00",
        "¥5,278.72",
    ):
        assert expected in text, expected
    assert "SN-STMT-0001" in text


def test_declined_and_refunded_batch(october):
    batch = SettlementBatch.objects.get(merchant=october.merchant, business_date=date(2026, 10, 6))
    detail = batch_detail(batch)
    assert detail.adds_up
    assert (detail.totals.sales_fen, detail.totals.refunds_fen, detail.totals.fees_fen) == (20000, 2500, 105)
    assert detail.batch.payout_fen == 17395


def _cells(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</tr>', html, re.S)
    assert found, testid
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_a_statement_shows_one_refund_total(october):
    """The refunds and reversals of the month — what went back to cardholders, ¥25.00 — are one figure
    wherever the statement speaks of them. The ¥0.15 of fee the refund handed back is inside Fees; the
    settlement payable no longer shows the refund journal's net (−¥24.85) as a second refund figure."""
    with time_machine.travel(at(date(2026, 11, 20)), tick=False), translation.override("en"):
        statement = monthly_statement(october.merchant, OCTOBER)
        html = render_document(MONTHLY_DOCUMENT, {"statement": statement})
        flow = [(m.kind, str(m.label), m.amount_fen) for m in statement.payable_movements]
    assert flow == [
        ("sales", "Sales", 640000),
        ("refunds", "Refunds and reversals", -2500),
        ("fees", "Fees", -2813),
        ("paid_out", "Paid out", -545267),
        ("deducted", "Deducted from settlements", -9900),
    ]
    assert statement.opening_payable_fen + sum(m.amount_fen for m in statement.payable_movements) == 99400
    assert 'Refunds and reversals</div><div class="st-box-value" data-testid="st-sum-refunds">¥25.00<' in html
    assert _cells(html, "st-method-total") == "Total 5 ¥6,400.00 1 ¥25.00 ¥28.13 ¥6,346.87"
    assert _cells(html, "st-flow-refunds") == "Refunds and reversals -¥25.00"
    assert _cells(html, "st-flow-fees") == "Fees -¥28.13"
    assert "24.85" not in html
    assert "Refund or reversal</td>" not in html  # the refund journal, net of the fee it handed back
    # the settlements' own sums of sales, refunds and fees (they pay days of other months too) are not
    # a second set of the month's totals: the table sums what it paid out and what it deducted
    assert _cells(html, "st-settlements-total") == "Total ¥99.00 ¥5,452.67"
    assert (
        "Refunds and reversals are the amounts handed back to cardholders for the month's transactions"
        in html
    )


def test_transactions_booked_in_another_month_than_their_date_are_shown_as_such(world):
    """An acquirer's call with October 31 and November 1 sales books one capture journal, dated November
    1: October's settlement payable does not move, November's moves by both. Each statement shows its
    own month's sales and says which part the ledger booked in the other month."""
    merchant = world.merchant_a
    on_standard_plan(merchant)
    terminal = active_terminal(world, "SN-STMT-XMON", merchant)
    ingest(txn(terminal, 1, 10000, day=date(2026, 10, 31)), txn(terminal, 2, 20000, day=date(2026, 11, 1)))
    with time_machine.travel(at(date(2026, 12, 5)), tick=False), translation.override("en"):
        october = monthly_statement(merchant, OCTOBER)
        november = monthly_statement(merchant, Month(2026, 11))
        label = str(october.payable_movements[3].label)
    assert [(m.kind, m.amount_fen) for m in october.payable_movements] == [
        ("sales", 10000),
        ("refunds", 0),
        ("fees", -60),
        ("other_month", -9940),
        ("paid_out", 0),
        ("deducted", 0),
    ]
    assert label == "Booked in another month than the transactions' date"
    assert (october.opening_payable_fen, october.closing_payable_fen) == (0, 0)
    assert [(m.kind, m.amount_fen) for m in november.payable_movements] == [
        ("sales", 20000),
        ("refunds", 0),
        ("fees", -120),
        ("other_month", 9940),
        ("paid_out", 0),
        ("deducted", 0),
    ]
    assert (november.opening_payable_fen, november.closing_payable_fen) == (0, 29820)
