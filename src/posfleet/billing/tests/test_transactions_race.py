"""Ingest under concurrency (threads, SQLite and PostgreSQL): the same batch sent 12 times at once is
recorded once and every sender gets the same ids; refunds racing for one sale never exceed it.
And the refund-fee rule as a property: parts add up to the whole, never more, never negative."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from posfleet.billing.models import AccountKind, Journal, Transaction
from posfleet.billing.services.transactions import returned_fee, transactions_ingest
from posfleet.billing.tests.test_transactions import INGEST, active_terminal, refund_of, txn
from posfleet.billing.verify import verify_ledger
from posfleet.testing.money import balance, on_standard_plan
from posfleet.testing.personas import build_world

SENDERS = 12


def race(work, n: int = SENDERS) -> list[object]:
    outcomes: list[object] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def attempt(i: int) -> None:
        try:
            barrier.wait()
            result: object = work(i)
        except Exception as exc:  # any exception is a failure of the guarantee
            result = f"error:{type(exc).__name__}:{exc}"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_sent_at_once_is_recorded_once():
    world = build_world()
    on_standard_plan(world.merchant_a)
    shop = active_terminal(world, "SN-RACE-T1")
    sale = txn(shop, 1, 10000, external_id="race-1")
    items = [sale, txn(shop, 2, 2000, "qr"), refund_of(sale, 3, 4000), txn(shop, 4, 900, status="declined")]
    outcomes = race(
        lambda i: [
            (r.ok, r.transaction_id, r.fee_fen) for r in transactions_ingest(actor=INGEST, items=items)
        ]
    )
    assert len({repr(o) for o in outcomes}) == 1, outcomes
    assert all(ok for ok, _id, _fee in outcomes[0])  # type: ignore[attr-defined]
    assert Transaction.objects.count() == 4
    assert Journal.objects.count() == 2  # one capture, one refund: from the one call that wrote
    assert balance(world.provider.pk, AccountKind.BANK_CLEARING) == 10000 + 2000 - 4000
    assert verify_ledger().ok


@pytest.mark.django_db(transaction=True)
def test_refunds_racing_for_one_sale_never_exceed_it():
    world = build_world()
    on_standard_plan(world.merchant_a)
    shop = active_terminal(world, "SN-RACE-T2")
    sale = txn(shop, 1, 10000)
    transactions_ingest(actor=INGEST, items=[sale])
    outcomes = race(
        lambda i: transactions_ingest(actor=INGEST, items=[refund_of(sale, 10 + i, 3000)])[0].code
    )
    assert sorted(outcomes, key=str) == [None] * 3 + ["refund_exceeds_sale"] * (SENDERS - 3)
    assert sum(Transaction.objects.filter(kind="refund").values_list("amount_fen", flat=True)) == 9000
    assert verify_ledger().ok


@given(
    amount=st.integers(min_value=1, max_value=10**9),
    rate_bp=st.integers(min_value=0, max_value=10_000),
    cuts=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=12),
)
def test_refund_fees_add_up_to_the_sale_fee(amount, rate_bp, cuts):
    fee = amount * rate_bp // 10_000
    parts, left = [], amount
    for cut in cuts:
        if left == 0:
            break
        part = min(left, cut)
        parts.append(part)
        left -= part
    if left:
        parts.append(left)
    refunded = returned = 0
    for part in parts:
        back = returned_fee(fee, amount, refunded, returned, part)
        assert 0 <= back <= part
        refunded, returned = refunded + part, returned + back
        assert returned <= fee
    assert returned == fee  # refunded in full: the whole fee came back, not a fen more
