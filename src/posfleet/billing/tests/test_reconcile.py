"""Every number a merchant sees reconciles with the ledger (issue 11, "Numbers that reconcile").

A property test: hypothesis draws a merchant's end of October and start of November 2026 — sales by two
terminals in every payment method, refunds (in parts) and reversals, declines, late arrivals (a sale
reported after its day was settled, so a later batch pays it, across the month boundary too), days
whose refunds exceed their sales (they wait for the next settlement), service fees falling due and
charged, a deposit collected and released. It is run through the real services (ingest, settlement,
contracts, deposits) on a moving clock, then every figure of the October and November statements (the
read model and its HTML) and of the money page (the recent settlements and the balances) is compared
with sums of the ledger's entries for the accounts and the period it stands for, and every settlement
row with its own journal: paid out = sales − refunds − fees − deductions.

Bounded: at most four days, a few transactions a day, ``MAX_EXAMPLES`` examples, each rolled back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.test import Client
from django.utils import translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posfleet.billing.models import (
    AccountKind,
    Deposit,
    Entry,
    Journal,
    JournalKind,
    ServiceFeeDue,
    SettlementBatch,
    Transaction,
)
from posfleet.billing.selectors import balances_of, monthly_figures, recent_settlements
from posfleet.billing.services.deposits import deposit_release
from posfleet.billing.statements import MONTHLY_DOCUMENT, Month, monthly_statement, render_document
from posfleet.billing.statements.settlements import SettlementRow, settlement_rows
from posfleet.billing.tests.test_statements import JOB, SH, active_terminal, at, ingest, refund, settle, txn
from posfleet.platform.money import format_fen
from posfleet.testing.money import on_standard_plan, signed_contract

MAX_EXAMPLES = 5
DAYS = (date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2))
MONTHS = (Month(2026, 10), Month(2026, 11))
METHODS = ("credit", "debit", "qr", "nfc", "foreign")
SIGNED_AT = datetime(2026, 10, 29, 10, 0, tzinfo=SH)
LOOKED_AT = datetime(2026, 12, 5, 10, 0, tzinfo=SH)

# ---------------------------------------------------------------------------------------------
# What hypothesis draws

SALE = st.tuples(st.integers(0, 1), st.sampled_from(METHODS), st.integers(1, 400_000))
DAY = st.fixed_dictionaries(
    {
        "sales": st.lists(SALE, max_size=3),
        "declines": st.integers(0, 1),
        # (which earlier sale, what percent of what is left of it)
        "refunds": st.lists(st.tuples(st.integers(0, 99), st.integers(1, 100)), max_size=2),
        "reversal": st.booleans(),  # today's first sale is reversed in full
        "late": st.booleans(),  # today's last sale arrives after today's settlement
    }
)
CONTRACT = st.fixed_dictionaries(
    {
        # the second year's fee falls due in the window; or both years' fees on the contract's first day
        "starts_on": st.sampled_from([date(2025, 10, 31), date(2026, 10, 30), date(2026, 11, 1)]),
        "annual_fee_fen": st.sampled_from([0, 9_900, 16_800, 50_000]),
        "deposit_fen": st.sampled_from([0, 29_900]),
        "released_on": st.sampled_from([None, *DAYS]),
        "refund_percent": st.integers(0, 100),
    }
)


@dataclass
class Sale:
    item: object  # TxnIn
    left: int  # what can still be refunded


@dataclass
class Activity:
    sales: list[Sale] = field(default_factory=list)
    trace: int = 0

    def next_trace(self) -> int:
        self.trace += 1
        return self.trace


@pytest.fixture
def shop(world):
    """Merchant A on the standard plan with two terminals active since September (kept across examples;
    everything an example writes is rolled back)."""
    on_standard_plan(world.merchant_a)
    terminals = [active_terminal(world, f"SN-RECON-{n}", world.merchant_a) for n in (1, 2)]
    return world.merchant_a, terminals


def run(merchant, terminals, contracts, days) -> None:
    """The drawn activity through the real services, each call at its moment."""
    deposits = []
    with time_machine.travel(SIGNED_AT, tick=False):
        for terminal, terms in zip(terminals, contracts, strict=True):
            contract = signed_contract(
                terminal,
                starts_on=terms["starts_on"],
                term_months=24,
                deposit_fen=terms["deposit_fen"],
                annual_fee_fen=terms["annual_fee_fen"],
            )
            deposits.append((getattr(contract, "deposit", None), terms))
    activity = Activity()
    for day, plan in zip(DAYS, days, strict=True):
        today = [
            txn(terminals[t], activity.next_trace(), amount, method, day=day)
            for t, method, amount in plan["sales"]
        ]
        late = today.pop() if plan["late"] and today else None
        declines = [
            txn(terminals[0], activity.next_trace(), 5_000, day=day, status="declined", response_code="51")
            for _ in range(plan["declines"])
        ]
        follow_ups = []
        for pick, percent in plan["refunds"]:
            open_sales = [s for s in activity.sales if s.left > 0]
            if open_sales:
                sale = open_sales[pick % len(open_sales)]
                amount = max(1, sale.left * percent // 100)
                sale.left -= amount
                follow_ups.append(refund(sale.item, activity.next_trace(), amount, day))
        with time_machine.travel(at(day, 22), tick=False):
            if today or declines or follow_ups:
                ingest(*today, *declines, *follow_ups)
        activity.sales += [Sale(item, item.amount_fen) for item in today]
        if plan["reversal"] and today:
            first = activity.sales[-len(today)]
            if first.left == first.item.amount_fen:  # not refunded yet today
                first.left = 0
                with time_machine.travel(at(day, 23), tick=False):
                    ingest(refund(first.item, activity.next_trace(), first.item.amount_fen, day, "reversal"))
        for deposit, terms in deposits:
            if deposit is not None and terms["released_on"] == day:
                with time_machine.travel(at(day, 12), tick=False):
                    deposit_release(
                        actor=JOB,
                        deposit_id=deposit.pk,
                        refund_fen=deposit.amount_fen * terms["refund_percent"] // 100,
                        reason="contract_ended",
                    )
        settle(day)  # at 06:00 the next morning
        if late is not None:
            with time_machine.travel(at(day + timedelta(days=1), 7), tick=False):
                ingest(late)  # dated ``day``, after its run: the next run pays it
            activity.sales.append(Sale(late, late.amount_fen))


# ---------------------------------------------------------------------------------------------
# The ledger, summed


def ledger(kind: str, merchant, *, journals=None, first=None, last=None, journal_id=None) -> int:
    """The sum of the entries on accounts of ``kind`` of the merchant's journals (debit +, credit −),
    of journal kinds ``journals``, business dates in [first, last], or one journal."""
    qs = Entry.objects.filter(account__kind=kind, journal__merchant=merchant)
    if journals is not None:
        qs = qs.filter(journal__kind__in=journals)
    if first is not None:
        qs = qs.filter(journal__business_date__gte=first)
    if last is not None:
        qs = qs.filter(journal__business_date__lte=last)
    if journal_id is not None:
        qs = qs.filter(journal_id=journal_id)
    return qs.aggregate(total=Coalesce(Sum("amount_fen"), 0))["total"]


BANK, REVENUE, PENALTY = AccountKind.BANK_CLEARING, AccountKind.FEE_REVENUE, AccountKind.PENALTY_REVENUE
PAYABLE, RECEIVABLE, HELD = (
    AccountKind.SETTLEMENT_PAYABLE,
    AccountKind.FEES_RECEIVABLE,
    AccountKind.DEPOSIT_HELD,
)
CAPTURE, REFUND, SETTLEMENT = JournalKind.CAPTURE, JournalKind.REFUND, JournalKind.SETTLEMENT


def check_row(row: SettlementRow, merchant) -> None:
    """A settlement row against its own journal: paid out, kept back, and the payable it settled."""
    assert row.adds_up, row
    assert row.payout_fen == row.gross_fen - row.refunds_fen - row.fees_fen - sum(
        d.amount_fen for d in row.deductions
    )
    journal = Journal.objects.get(reference=row.journal).pk
    assert -ledger(BANK, merchant, journal_id=journal) == row.payout_fen
    assert -ledger(RECEIVABLE, merchant, journal_id=journal) == row.service_fees_fen
    assert ledger(PAYABLE, merchant, journal_id=journal) == row.gross_fen - row.refunds_fen - row.fees_fen
    terminals = set(
        ServiceFeeDue.objects.filter(contract__merchant=merchant).values_list(
            "contract__terminal__sn", flat=True
        )
    )
    for d in row.deductions:
        assert d.kind == JournalKind.SERVICE_FEE, d
        assert d.terminal_sn in terminals, d
        assert d.amount_fen > 0, d


def check_statement(merchant, month: Month) -> None:
    first, last = month.first_day, month.last_day
    s = monthly_statement(merchant, month)
    period = {"first": first, "last": last}
    # transactions of the month (each call of this activity is one day's: booked on its date)
    approved = Transaction.objects.filter(
        merchant=merchant, txn_date__gte=first, txn_date__lte=last, status="approved"
    )
    assert (
        s.totals.sales_fen
        == ledger(BANK, merchant, journals=[CAPTURE], **period)
        == sum(approved.filter(kind="sale").values_list("amount_fen", flat=True))
    )
    assert (
        s.totals.refunds_fen
        == -ledger(BANK, merchant, journals=[REFUND], **period)
        == sum(approved.exclude(kind="sale").values_list("amount_fen", flat=True))
    )
    assert s.totals.fees_fen == -ledger(REVENUE, merchant, journals=[CAPTURE, REFUND], **period)
    assert s.totals.sales_count == approved.filter(kind="sale").count()
    assert sum(line.refunds_fen for line in s.methods) == s.totals.refunds_fen
    # the settlements of the month
    assert s.settlement_totals.payout_fen == -ledger(BANK, merchant, journals=[SETTLEMENT], **period)
    assert s.settlement_totals.service_fees_fen == -ledger(
        RECEIVABLE, merchant, journals=[SETTLEMENT], **period
    )
    assert s.service_fees_deducted_fen == s.settlement_totals.service_fees_fen
    assert sum(r.payout_fen for r in s.settlements) == s.settlement_totals.payout_fen
    for row in s.settlements:
        check_row(row, merchant)
    # balances and movements of the accounts
    assert s.opening_payable_fen == -ledger(PAYABLE, merchant, last=first - timedelta(days=1))
    assert s.closing_payable_fen == -ledger(PAYABLE, merchant, last=last)
    assert s.service_fees_charged_fen == ledger(
        RECEIVABLE, merchant, journals=[JournalKind.SERVICE_FEE], **period
    )
    assert s.service_fees_outstanding_fen == ledger(RECEIVABLE, merchant, last=last)
    assert s.deposit_held_fen == -ledger(HELD, merchant, last=last)
    assert s.deposit_refunded_fen == -ledger(BANK, merchant, journals=[JournalKind.DEPOSIT_REFUND], **period)
    assert s.deposit_forfeited_fen == -ledger(
        PENALTY, merchant, journals=[JournalKind.DEPOSIT_REFUND], **period
    )
    # the settlement payable's movements: the statement's own figures, leading to the closing balance
    flow = {m.kind: m.amount_fen for m in s.payable_movements}
    assert flow == {
        "sales": s.totals.sales_fen,
        "refunds": -s.totals.refunds_fen,
        "fees": -s.totals.fees_fen,
        "paid_out": -s.settlement_totals.payout_fen,
        "deducted": -s.settlement_totals.service_fees_fen,
    }
    assert s.opening_payable_fen + sum(flow.values()) == s.closing_payable_fen
    # the month on the money page's chart is the statement's
    (chart,) = monthly_figures(merchant.pk, month, month)
    assert (chart.sales_fen, chart.refunds_fen, chart.fees_fen) == (
        s.totals.sales_fen,
        s.totals.refunds_fen,
        s.totals.fees_fen,
    )
    # and the HTML shows those figures, one refund total
    html = render_document(MONTHLY_DOCUMENT, {"statement": s})
    shown = {
        "st-sum-sales": s.totals.sales_fen,
        "st-sum-refunds": s.totals.refunds_fen,
        "st-sum-fees": s.totals.fees_fen,
        "st-sum-payout": s.settlement_totals.payout_fen,
        "st-opening": s.opening_payable_fen,
        "st-closing": s.closing_payable_fen,
        "st-fees-deducted": s.settlement_totals.service_fees_fen,
        "st-deposit-held": s.deposit_held_fen,
    }
    for name, fen in shown.items():
        assert cell(html, name) == format_fen(fen), name
    assert cell(html, "st-flow-refunds", "</tr>").endswith(format_fen(-s.totals.refunds_fen, sign=True))


def check_money_page(merchant, client: Client) -> None:
    org = merchant.organisation_id
    balances = balances_of(org)
    assert balances[PAYABLE] == -ledger(PAYABLE, merchant)
    assert balances[HELD] == -ledger(HELD, merchant)
    assert balances[RECEIVABLE] == ledger(RECEIVABLE, merchant)
    rows = recent_settlements(merchant.pk, limit=10)
    for row in rows:
        check_row(row, merchant)
    html = client.get("/console/money/").content.decode()
    assert cell(html, "kpi-payable") == format_fen(balances[PAYABLE])
    assert cell(html, "kpi-deposit") == format_fen(balances[HELD])
    assert cell(html, "kpi-fees") == format_fen(balances[RECEIVABLE])
    for row in rows:
        figures = [
            fen_of(cell(html, f"settlement-{name}-{row.pk}"))
            for name in ("sales", "refunds", "fees", "deducted", "payout")
        ]
        assert figures == [row.gross_fen, row.refunds_fen, row.fees_fen, row.service_fees_fen, row.payout_fen]
        sales, refunds, fees, deducted, paid = figures
        assert paid == sales - refunds - fees - deducted
        with translation.override("en"):  # the persona's language
            labels = [d.label for d in row.deductions]
        for label in labels:
            assert f"{label} <span" in html, label


def check_deductions(merchant) -> None:
    """All the merchant's settlements, oldest first: their deductions pay off the service fees charged
    in the order the ledger charged them (first in, first out), never more than a fee, and what is not
    paid off yet is the fees receivable balance."""
    batches = SettlementBatch.objects.filter(merchant=merchant).select_related("merchant", "journal")
    rows = settlement_rows(list(batches.order_by("business_date")))
    charges = list(
        Entry.objects.filter(account__kind=RECEIVABLE, journal__merchant=merchant, amount_fen__gt=0)
        .order_by("journal_id")
        .values_list("journal__reference", "amount_fen")
    )
    left = [[reference, amount] for reference, amount in charges]
    for row in rows:
        expected, take = [], row.service_fees_fen
        while take:
            charge = next(c for c in left if c[1] > 0)
            part = min(take, charge[1])
            expected.append((charge[0], part))
            charge[1] -= part
            take -= part
        assert [(d.charge, d.amount_fen) for d in row.deductions] == expected, row
    assert sum(amount for _reference, amount in left) == ledger(RECEIVABLE, merchant)


def signed_in(user) -> Client:
    """A console client of ``user``, signed in as the console tests sign in (``testing.sessions``, the
    login's own last step, where it exists; a bare ``force_login`` before it)."""
    try:
        from posfleet.testing.sessions import sign_in
    except ImportError:  # pragma: no cover - before the two-step login
        client = Client()
        client.force_login(user)
        return client
    return sign_in(Client(), user)


def cell(html: str, testid: str, until: str = "</") -> str:
    found = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?){re.escape(until)}', html, re.S)
    assert found, testid
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def fen_of(text: str) -> int:
    negative = text.startswith("-")
    fen = int(text.lstrip("+-").replace("¥", "").replace(",", "").replace(".", ""))
    return -fen if negative else fen


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(contracts=st.lists(CONTRACT, min_size=2, max_size=2), days=st.lists(DAY, min_size=4, max_size=4))
def test_property_every_figure_of_the_statements_and_the_money_page_reconciles_with_the_ledger(
    world, shop, contracts, days
):
    merchant, terminals = shop
    with transaction.atomic():
        run(merchant, terminals, contracts, days)
        with time_machine.travel(LOOKED_AT, tick=False):
            for month in MONTHS:
                check_statement(merchant, month)
            check_money_page(merchant, signed_in(world.user("merchant_a")))
        check_deductions(merchant)
        assert Deposit.objects.filter(merchant=merchant, status="held").count() <= 2
        transaction.set_rollback(True)
