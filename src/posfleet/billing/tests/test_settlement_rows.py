"""A settlement batch as people read it (``SettlementRow``): sales, refunds, fees, every deduction by the
charge it paid off (service fees per terminal, in the order they were charged), and the payout — which is
sales − refunds − fees − deductions on every row. The console's tables, the batch detail, the monthly
statement and the API's /settlements all render this one read model."""

from __future__ import annotations

from datetime import date, datetime

import time_machine
from django.utils import translation

from posfleet.billing.models import ServiceFeeDue, SettlementBatch
from posfleet.billing.selectors import recent_settlements
from posfleet.billing.statements.settlements import Deduction, settlement_rows
from posfleet.billing.tests.test_statements import (
    SH,
    active_terminal,
    at,
    ingest,
    october,
    settle,
    txn,
)
from posfleet.testing.money import on_standard_plan, signed_contract

__all__ = ["october"]


def _row_figures(row):
    return (
        row.business_date,
        row.gross_fen,
        row.refunds_fen,
        row.fees_fen,
        [(d.kind, d.terminal_sn, d.period, d.due_on, d.amount_fen) for d in row.deductions],
        row.service_fees_fen,
        row.payout_fen,
    )


def test_the_recent_settlements_show_the_service_fee_deducted_by_terminal(october):
    rows = recent_settlements(october.merchant.pk)
    assert [_row_figures(r) for r in rows] == [
        (date(2026, 10, 6), 20000, 2500, 105, [], 0, 17395),
        (
            date(2026, 10, 5),
            540000,  # with September 30's ¥200.00, paid by the first run
            0,
            2228,
            [("service_fee", "SN-STMT-0001", 1, date(2026, 10, 1), 9900)],
            9900,
            527872,
        ),
    ]
    for row in rows:
        assert row.adds_up
        assert row.payout_fen == row.gross_fen - row.refunds_fen - row.fees_fen - row.deducted_fen
    with translation.override("en"):
        assert rows[1].deductions[0].label == "Service fee of SN-STMT-0001, year 1"


def test_deductions_follow_the_charges_in_order_across_settlements_and_terminals(world):
    """Two fees of ¥99.00 and ¥168.00 fall due on 2026-10-01; the first day's net (¥99.40) pays the
    first and ¥0.40 of the second; the second day pays the ¥167.60 left."""
    merchant = world.merchant_a
    on_standard_plan(merchant)
    one = active_terminal(world, "SN-DED-0001", merchant)
    two = active_terminal(world, "SN-DED-0002", merchant)
    with time_machine.travel(at(date(2026, 10, 1), 10), tick=False):
        signed_contract(one, starts_on=date(2026, 10, 1), deposit_fen=0, annual_fee_fen=9900)
        signed_contract(two, starts_on=date(2026, 10, 1), deposit_fen=0, annual_fee_fen=16800)
    ingest(txn(one, 1, 10000, day=date(2026, 10, 5)))  # fee 0.60: net 99.40
    settle(date(2026, 10, 5))
    ingest(txn(two, 2, 50000, day=date(2026, 10, 6)))  # fee 3.00: net 497.00
    settle(date(2026, 10, 6))

    batches = list(
        SettlementBatch.objects.filter(merchant=merchant)
        .select_related("merchant", "journal")
        .order_by("business_date")
    )
    rows = settlement_rows(batches)
    due = date(2026, 10, 1)
    assert [_row_figures(r) for r in rows] == [
        (
            date(2026, 10, 5),
            10000,
            0,
            60,
            [("service_fee", "SN-DED-0001", 1, due, 9900), ("service_fee", "SN-DED-0002", 1, due, 40)],
            9940,
            0,
        ),
        (date(2026, 10, 6), 50000, 0, 300, [("service_fee", "SN-DED-0002", 1, due, 16760)], 16760, 32940),
    ]
    assert all(r.adds_up for r in rows)
    charges = dict(ServiceFeeDue.objects.values_list("contract__terminal__sn", "journal__reference"))
    assert [d.charge for d in rows[0].deductions] == [charges["SN-DED-0001"], charges["SN-DED-0002"]]
    assert rows[0].deductions[1] == Deduction(
        kind="service_fee",
        charge=charges["SN-DED-0002"],
        terminal_sn="SN-DED-0002",
        period=1,
        due_on=due,
        amount_fen=40,
    )


def test_rows_of_many_merchants_are_read_in_a_fixed_number_of_queries(
    october, world, django_assert_num_queries
):
    on_standard_plan(world.merchant_b)
    other = active_terminal(world, "SN-DED-B001", world.merchant_b)
    with time_machine.travel(datetime(2026, 10, 1, 10, tzinfo=SH), tick=False):
        signed_contract(other, starts_on=date(2026, 10, 1), deposit_fen=0, annual_fee_fen=5000)
    ingest(txn(other, 9, 100000, day=date(2026, 10, 7)))
    settle(date(2026, 10, 7))
    batches = list(SettlementBatch.objects.select_related("merchant", "journal").order_by("pk"))
    with django_assert_num_queries(2):  # the fees receivable entries, the service fees they charged
        rows = settlement_rows(batches)
    assert [(r.merchant_mid, r.business_date, r.service_fees_fen) for r in rows] == [
        ("100000000000001", date(2026, 10, 5), 9900),
        ("100000000000001", date(2026, 10, 6), 0),
        ("100000000000002", date(2026, 10, 7), 5000),
    ]
    assert [d.terminal_sn for d in rows[2].deductions] == ["SN-DED-B001"]
