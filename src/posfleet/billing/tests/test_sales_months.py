"""Sales by month (``SalesMonth``): what ingest adds up for the reports equals the sales — approved and
declined apart, per agent (the merchant's, when the sale was made), month, method and terminal model;
refunds, reversals, replays and refused items add nothing — each reader sees its own agents' rows, and
``ledger verify`` finds rows that do not add up."""

from __future__ import annotations

import importlib
from datetime import date

import pytest
from django.db import connection

from posfleet.billing.models import SalesMonth
from posfleet.billing.selectors import sales_months_visible_to
from posfleet.billing.services.transactions import transactions_ingest
from posfleet.billing.tests.test_transactions import INGEST, active_terminal, refund_of, txn
from posfleet.billing.verify import verify_ledger
from posfleet.parties.models import Merchant
from posfleet.testing.money import on_standard_plan

pytestmark = pytest.mark.django_db

NOV, DEC = date(2026, 11, 1), date(2026, 12, 1)


def months(qs=None) -> dict[tuple, tuple[int, int]]:
    return {
        (r.agent_id, r.month, r.method, r.model_id, r.status): (r.sales, r.amount_fen)
        for r in (qs if qs is not None else SalesMonth.objects.all())
    }


@pytest.fixture
def shops(world):
    on_standard_plan(world.merchant_a)
    on_standard_plan(world.merchant_b)
    return (
        active_terminal(world, "SN-SM-0001"),
        active_terminal(world, "SN-SM-0002", merchant=world.merchant_b),
    )


def test_ingest_adds_each_sale_to_its_agent_month_method_model_and_status(world, shops):
    a, b = shops
    agent_a, agent_b, model = world.agent_a.pk, world.agent_b.pk, a.model_id
    sale = txn(a, 1, 10000, day=date(2026, 11, 3))
    first = [
        sale,
        txn(a, 2, 2500, day=date(2026, 11, 30)),
        txn(a, 3, 700, "qr", day=date(2026, 11, 30)),
        txn(a, 4, 900, status="declined", response_code="51", day=date(2026, 11, 30)),
        txn(b, 5, 1200, day=date(2026, 12, 1)),
        txn(a, 6, -5, day=date(2026, 11, 3)),  # refused: not a sale that happened
    ]
    results = transactions_ingest(actor=INGEST, items=first)
    assert [r.ok for r in results] == [True, True, True, True, True, False]
    expected = {
        (agent_a, NOV, "credit", model, "approved"): (2, 12500),
        (agent_a, NOV, "qr", model, "approved"): (1, 700),
        (agent_a, NOV, "credit", model, "declined"): (1, 900),
        (agent_b, DEC, "credit", b.model_id, "approved"): (1, 1200),
    }
    assert months() == expected

    # A refund and a reversal are not sales; a replayed sale is the same sale; a new one adds to its row.
    later = [
        refund_of(sale, 7, 4000),
        refund_of(txn(a, 2, 2500, day=date(2026, 11, 30)), 8, 2500, kind="reversal"),
        sale,
        txn(a, 9, 100, day=date(2026, 11, 4)),
    ]
    assert all(r.ok for r in transactions_ingest(actor=INGEST, items=later))
    expected[(agent_a, NOV, "credit", model, "approved")] = (3, 12600)
    assert months() == expected
    assert verify_ledger().ok


def test_a_sale_counts_under_the_agent_its_merchant_had_then(world, shops):
    """A merchant that moves to another agent takes its later sales with it; its earlier ones stay its
    former agent's business. Each agent reads only its own subtree's rows."""
    a, _b = shops
    transactions_ingest(actor=INGEST, items=[txn(a, 1, 10000)])
    Merchant.objects.filter(pk=world.merchant_a.pk).update(agent=world.agent_b)
    transactions_ingest(actor=INGEST, items=[txn(a, 2, 300)])
    Merchant.objects.filter(pk=world.merchant_a.pk).update(agent=world.agent_a1)  # agent A's sub-agent
    transactions_ingest(actor=INGEST, items=[txn(a, 3, 20), txn(a, 4, 5)])
    model = a.model_id
    assert months() == {
        (world.agent_a.pk, NOV, "credit", model, "approved"): (1, 10000),
        (world.agent_b.pk, NOV, "credit", model, "approved"): (1, 300),
        (world.agent_a1.pk, NOV, "credit", model, "approved"): (2, 25),
    }
    assert set(months(sales_months_visible_to(world.user("agent_a")))) == {  # its subtree
        (world.agent_a.pk, NOV, "credit", model, "approved"),
        (world.agent_a1.pk, NOV, "credit", model, "approved"),
    }
    assert set(months(sales_months_visible_to(world.user("agent_b")))) == {
        (world.agent_b.pk, NOV, "credit", model, "approved")
    }
    assert len(months(sales_months_visible_to(world.user("admin")))) == 3
    assert months(sales_months_visible_to(world.user("merchant_a"))) == {}
    assert verify_ledger().ok


def test_verify_finds_sales_by_month_that_do_not_add_up(world, shops):
    a, _b = shops
    transactions_ingest(actor=INGEST, items=[txn(a, 1, 10000), txn(a, 2, 300, "qr")])
    assert verify_ledger().ok
    SalesMonth.objects.filter(method="credit").update(sales=2)
    assert verify_ledger().problems == [
        "sales by month of 2026-11, credit, approved: 2 sales of 10000 fen, "
        "not what the transactions add up to"
    ]
    SalesMonth.objects.filter(method="qr").delete()
    assert "sales of 2026-11, qr, approved are missing from the sales by month" in verify_ledger().problems


def test_the_migration_counts_the_sales_there_are(world, shops):
    """Migration 0016 fills the table from the transactions a database already holds."""
    a, b = shops
    transactions_ingest(
        actor=INGEST,
        items=[txn(a, 1, 10000), txn(a, 2, 300, "qr", day=date(2026, 11, 30)), txn(b, 3, 55)],
    )
    kept = months()
    SalesMonth.objects.all().delete()
    migration = importlib.import_module("posfleet.billing.migrations.0016_sales_by_month")

    class Editor:  # what the migration uses of a schema editor (a real one cannot run in a test)
        connection = connection

        @staticmethod
        def execute(sql: str) -> None:
            with connection.cursor() as cursor:
                cursor.execute(sql)

    migration.count(None, Editor)
    assert months() == kept
    assert verify_ledger().ok
