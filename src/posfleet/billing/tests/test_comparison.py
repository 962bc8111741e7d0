"""The cost comparison: every plan's monthly cost equals pricing each transaction one by one (caps,
minimums, versions changing mid-period, partial refunds); the merchant's own plan costs exactly the
fees stored at ingest; plans without a rate for a method are flagged, never recommended; the work is a
fixed number of queries however many transactions there are."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posfleet.billing.comparison import compare_plans, default_period
from posfleet.billing.models import DailyTotal, RatePlan, RatePlanVersion, Transaction
from posfleet.billing.services.plans import RuleSpec, plan_create, plan_version_add
from posfleet.billing.services.transactions import returned_fee
from posfleet.billing.statements import Month
from posfleet.billing.tests.test_statements import active_terminal, at, ingest, refund, txn
from posfleet.platform.money import fee_fen
from posfleet.testing.money import on_standard_plan, standard_plan
from posfleet.testing.personas import SYSTEM

MAY, OCTOBER = Month(2026, 5), Month(2026, 10)
SINCE = at(date(2026, 4, 1), 9)


def lite_plan() -> RatePlan:
    """Ours, cheaper, with a second version from 2026-08-15 (a change in the middle of a month)."""
    plan = plan_create(
        actor=SYSTEM,
        code="lite",
        name="Lite",
        effective_from=date(2026, 1, 1),
        rules={
            "credit": RuleSpec(Decimal("0.0055")),
            "debit": RuleSpec(Decimal("0.0050"), cap_fen=1800),
            "qr": RuleSpec(Decimal("0.0045")),
            "nfc": RuleSpec(Decimal("0.0055")),
            "foreign": RuleSpec(Decimal("0.0120")),
        },
    )
    plan_version_add(
        actor=SYSTEM,
        plan=plan,
        effective_from=date(2026, 8, 15),
        rules={
            "credit": RuleSpec(Decimal("0.0052"), min_fen=50),
            "debit": RuleSpec(Decimal("0.0050"), cap_fen=1500),
            "qr": RuleSpec(Decimal("0.0040")),
            "nfc": RuleSpec(Decimal("0.0052")),
            "foreign": RuleSpec(Decimal("0.0110")),
        },
    )
    return plan


def rival_plan() -> RatePlan:
    return plan_create(
        actor=SYSTEM,
        code="rival",
        name="Rival Pay",
        is_competitor=True,
        provider_name="Rival Payments Ltd",
        effective_from=date(2025, 1, 1),
        rules={
            "credit": RuleSpec(Decimal("0.0038"), min_fen=10),
            "debit": RuleSpec(Decimal("0.0038"), cap_fen=1500),
            "qr": RuleSpec(Decimal("0.0030")),
        },
    )


@pytest.fixture
def history(world):
    """Merchant A on the standard plan; six months of mixed transactions, refunds and a reversal."""
    on_standard_plan(world.merchant_a)
    terminal = active_terminal(world, "SN-CMP-0001", world.merchant_a, since=SINCE)
    trace = iter(range(1, 999_999))
    amounts = [83, 84, 999, 12_345, 100_000, 363_637, 500_000, 1_234_567]
    methods = ["credit", "debit", "qr", "nfc", "foreign"]
    for month in range(5, 11):
        day = date(2026, month, 14 if month != 8 else 15)
        sales = [txn(terminal, next(trace), a, m, day=day) for m in methods for a in amounts]
        ingest(*sales)
        later = day + timedelta(days=2)
        ingest(
            refund(sales[0 + 4], next(trace), 40_000, later),  # part of a ¥1,000.00 credit sale
            refund(sales[8 + 6], next(trace), 500_000, later),  # all of a capped debit sale
            refund(sales[16 + 3], next(trace), 12_345, day, kind="reversal"),  # a QR sale reversed
        )
        ingest(refund(sales[0 + 4], next(trace), 60_000, later + timedelta(days=1)))  # the rest of it
    return terminal


def naive(plan: RatePlan, merchant_id: int, first: Month, last: Month) -> list[int]:
    """The oracle: every transaction priced on its own, in the order recorded (no grouping)."""
    versions = list(RatePlanVersion.objects.filter(plan=plan).order_by("effective_from"))
    months = [first.plus(i) for i in range((last.year - first.year) * 12 + last.month - first.month + 1)]
    costs = [0] * len(months)
    refunded: dict[int, int] = defaultdict(int)
    returned: dict[int, int] = defaultdict(int)

    def sale_fee(method: str, amount: int, day: date) -> int | None:
        version = next((v for v in reversed(versions) if v.effective_from <= day), None)
        rule = version.rules.filter(method=method).first() if version else None
        return (
            None if rule is None else fee_fen(amount, rule.rate, cap_fen=rule.cap_fen, min_fen=rule.min_fen)
        )

    for t in Transaction.objects.filter(merchant_id=merchant_id, status="approved").order_by("id"):
        i = months.index(Month.of(t.txn_date)) if Month.of(t.txn_date) in months else None
        if t.kind == "sale":
            fee = sale_fee(t.method, t.amount_fen, t.txn_date)
            if i is not None and fee is not None:
                costs[i] += fee
            continue
        sale = t.original
        fee = sale_fee(sale.method, sale.amount_fen, sale.txn_date)
        if fee is None:
            continue
        back = returned_fee(fee, sale.amount_fen, refunded[sale.pk], returned[sale.pk], t.amount_fen)
        returned[sale.pk] += back
        refunded[sale.pk] += t.amount_fen
        if i is not None:
            costs[i] -= back
    return costs


def test_every_plan_costs_what_pricing_each_transaction_would(world, history):
    lite, rival = lite_plan(), rival_plan()
    result = compare_plans(merchant_id=world.merchant_a.pk, first=MAY, last=OCTOBER, on=date(2026, 11, 20))
    by_code = {p.code: p for p in result.plans}
    assert list(by_code) == ["standard", "lite", "rival"]  # current first, ours, then competitors
    for plan in (standard_plan(), lite, rival):
        assert by_code[plan.code].monthly_fen == naive(plan, world.merchant_a.pk, MAY, OCTOBER), plan.code
    standard = by_code["standard"]
    stored = Transaction.objects.filter(merchant=world.merchant_a, status="approved")
    sale_fees = sum(stored.filter(kind="sale").values_list("fee_fen", flat=True))
    returned = sum(stored.exclude(kind="sale").values_list("fee_fen", flat=True))
    assert standard.is_current
    assert standard.saving_fen == 0
    assert standard.total_fen == result.actual_total_fen == sale_fees - returned
    assert result.actual_fees_fen == standard.monthly_fen
    assert by_code["lite"].complete
    assert by_code["lite"].saving_fen == standard.total_fen - by_code["lite"].total_fen
    assert by_code["lite"].saving_fen > 0
    rival_cost = by_code["rival"]
    assert not rival_cost.complete
    assert rival_cost.unpriced_fen == {"nfc": 6 * 2_211_715, "foreign": 6 * 2_211_715}  # no rate for them
    assert result.best is by_code["lite"]  # rival is cheaper on what it prices but cannot price it all
    assert result.sales_total_fen == 6 * 5 * 2_211_715
    assert result.refunds_fen == [100_000 + 500_000 + 12_345] * 6


def test_no_transactions_and_no_plan(world):
    result = compare_plans(merchant_id=world.merchant_b.pk, first=MAY, last=OCTOBER, on=date(2026, 11, 20))
    assert result.current is None
    assert not result.has_transactions
    assert [p.total_fen for p in result.plans] == [0]  # the standard plan, seeded
    assert default_period(months=6, until=date(2026, 11, 20)) == (MAY, OCTOBER)


def test_the_comparison_is_a_fixed_number_of_queries_however_many_transactions(world):
    """20,000 rows written straight to the table (the grouping is what is measured, not ingest)."""
    on_standard_plan(world.merchant_a)
    lite_plan()
    terminal = active_terminal(world, "SN-CMP-BULK", world.merchant_a, since=SINCE)
    version = RatePlanVersion.objects.get(plan__code="standard", number=1)
    rows = []
    totals: dict[date, DailyTotal] = {}
    for n in range(20_000):
        day = date(2026, 5 + n % 6, 1 + n % 28)
        amount = 100 + (n * 7919) % 400_000
        total = totals.setdefault(day, DailyTotal(merchant=world.merchant_a, txn_date=day, settle_day=day))
        total.txn_count += 1
        total.gross_fen += amount
        rows.append(
            Transaction(
                terminal=terminal,
                merchant=world.merchant_a,
                tid=terminal.tid,
                batch_no=f"{n // 1000:06d}",
                trace_no=f"{n % 1000:06d}",
                txn_date=day,
                occurred_at=at(day),
                status="approved",
                method=["credit", "debit", "qr", "nfc"][n % 4],
                entry_mode="insert",
                amount_fen=amount,
                fee_fen=0,
                plan_version=version,
                daily_total=total,
            )
        )
    DailyTotal.objects.bulk_create(totals.values())
    Transaction.objects.bulk_create(rows, batch_size=5000)
    with CaptureQueriesContext(connection) as queries:
        result = compare_plans(
            merchant_id=world.merchant_a.pk, first=MAY, last=OCTOBER, on=date(2026, 11, 20)
        )
    assert sum(result.sales_count) == 20_000
    # one grouped query per month (7 pieces: lite changes version on 2026-08-15), the plan book (3),
    # the plans (1), the refunds (1), the contracts and the terminals (2): 14, for 20,000 rows as for 20
    assert len(queries) == 14, [q["sql"][:120] for q in queries]


METHODS = st.sampled_from(["credit", "debit", "qr", "nfc", "foreign"])
SALES = st.lists(st.tuples(METHODS, st.integers(min_value=1, max_value=3_000_000)), min_size=1, max_size=25)
REFUNDS = st.lists(st.tuples(st.integers(min_value=0, max_value=24), st.integers(1, 100)), max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sales=SALES, refunds=REFUNDS)
def test_property_the_own_plan_costs_exactly_the_stored_fees(world, sales, refunds):
    """For a period with one plan version: the comparison's total for the merchant's own plan is the sum
    of the fees stored on its transactions (sales' fees less those refunds handed back)."""
    with transaction.atomic():
        on_standard_plan(world.merchant_a)
        terminal = active_terminal(world, "SN-CMP-PROP", world.merchant_a, since=SINCE)
        day = date(2026, 9, 10)
        items = [txn(terminal, i + 1, amount, method, day=day) for i, (method, amount) in enumerate(sales)]
        ingest(*items)
        follow_ups = []
        left = {i: amount for i, (_m, amount) in enumerate(sales)}
        for n, (index, percent) in enumerate(refunds):
            if index in left and left[index] > 0:
                amount = max(1, left[index] * percent // 100)
                left[index] -= amount
                follow_ups.append(refund(items[index], 500 + n, amount, day + timedelta(days=1)))
        for item in follow_ups:  # one at a time: each refund sees the ones before it
            ingest(item)
        result = compare_plans(
            merchant_id=world.merchant_a.pk, first=Month(2026, 9), last=Month(2026, 9), on=date(2026, 11, 1)
        )
        stored = Transaction.objects.filter(merchant=world.merchant_a, status="approved")
        fees = sum(stored.filter(kind="sale").values_list("fee_fen", flat=True)) - sum(
            stored.exclude(kind="sale").values_list("fee_fen", flat=True)
        )
        assert result.current is not None
        assert result.current.total_fen == fees == result.actual_total_fen
        transaction.set_rollback(True)
