"""Transactions: priced at ingest with the plan in force on their date, recorded once (replays return
the stored result), only from terminals active at the time, refunds and reversals linked and bounded,
declines without money; one capture journal per merchant per call; the ledger balances after each."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.utils.translation import override

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import Account, AccountKind, DailyTotal, Entry, Journal, Transaction
from posfleet.billing.natural_keys import _RECORDED, transactions_recorded
from posfleet.billing.services.plans import RuleSpec, plan_version_add
from posfleet.billing.services.transactions import MAX_BATCH, TxnIn, transactions_ingest
from posfleet.billing.services.transactions.ingest import EXACT_KEYS
from posfleet.billing.verify import verify_ledger
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Status
from posfleet.platform.context import Actor
from posfleet.platform.errors import PermissionDenied, ValidationFailed
from posfleet.testing.money import balance, on_standard_plan, standard_plan
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.refusals import assert_nothing_recorded

SH = ZoneInfo("Asia/Shanghai")
ACTIVATED = datetime(2026, 11, 2, 9, 0, tzinfo=SH)  # the terminals below became active then
DAY = date(2026, 11, 3)
INGEST = Actor.job("test-ingest")


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SH)


def active_terminal(world, sn: str, merchant=None, when: datetime = ACTIVATED):
    with time_machine.travel(when, tick=False):
        return make_terminal(world, sn, Status.ACTIVE, merchant=merchant)


def txn(terminal, trace: int, amount: int, method: str = "credit", day: date = DAY, **fields) -> TxnIn:
    defaults = {
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
    return TxnIn(**{**defaults, **fields})


def refund_of(sale: TxnIn, trace: int, amount: int, kind: str = "refund", **fields) -> TxnIn:
    return txn_like(sale, trace, amount, kind=kind, original=sale.key, **fields)


def txn_like(sale: TxnIn, trace: int, amount: int, **fields) -> TxnIn:
    values = {**sale.__dict__, "trace_no": f"{trace:06d}", "amount_fen": amount, "external_id": None}
    values.update(fields)
    return TxnIn(**values)


def ledger_state() -> tuple[int, int, list[tuple[int, int]]]:
    return (
        Journal.objects.count(),
        Entry.objects.count(),
        sorted(Account.objects.values_list("pk", "balance_fen")),
    )


def nothing_ingested():
    """Around refused items: no transaction, day total or balance changed, nothing recorded."""
    return assert_nothing_recorded(Transaction.objects.all(), DailyTotal.objects.all(), Account.objects.all())


def codes(results) -> list[str | None]:
    return [r.code if not r.ok else None for r in results]


@pytest.fixture
def shop(world):
    """Merchant A on the standard plan with one terminal active since ACTIVATED."""
    on_standard_plan(world.merchant_a)
    return active_terminal(world, "SN-TXN-0001")


def test_fees_at_ingest_per_method_with_the_debit_cap(world, shop):
    items = [
        txn(shop, 1, 10000, "credit"),  # 0.60 %
        txn(shop, 2, 10000, "debit"),  # 0.55 %
        txn(shop, 3, 500000, "debit"),  # 0.55 % would be 27.50: capped at 20.00
        txn(shop, 4, 10000, "qr"),  # 0.48 %
        txn(shop, 5, 10000, "nfc"),  # 0.60 %
        txn(shop, 6, 10000, "foreign"),  # 1.25 %
        txn(shop, 7, 83, "credit"),  # 0.498 fen -> 0 (half up needs 0.5)
        txn(shop, 8, 84, "credit"),  # 0.504 fen -> 1
    ]
    results = transactions_ingest(actor=INGEST, items=items)
    assert [r.fee_fen for r in results] == [60, 55, 2000, 48, 60, 125, 0, 1]
    assert all(r.ok and not r.replayed for r in results)
    rows = list(Transaction.objects.order_by("trace_no"))
    assert [r.fee_fen for r in rows] == [60, 55, 2000, 48, 60, 125, 0, 1]
    assert [r.pk for r in rows] == [r.transaction_id for r in results]
    assert {r.plan_version.number for r in rows} == {1}
    assert {r.plan_version.plan.code for r in rows} == {"standard"}
    journal = Journal.objects.get()
    assert (journal.kind, journal.reference[-16:]) == ("capture", f":{world.merchant_a.mid}")
    assert {r.capture_journal_id for r in rows} == {journal.pk}
    gross, fees = 10000 * 5 + 500000 + 83 + 84, 60 + 55 + 2000 + 48 + 60 + 125 + 1
    assert balance(world.provider.pk, AccountKind.BANK_CLEARING) == gross
    assert balance(world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE) == gross - fees
    assert balance(world.provider.pk, AccountKind.FEE_REVENUE) == fees
    event = AuditEvent.objects.get(event_type=EventType.TRANSACTIONS_INGESTED)
    assert (event.actor_label, event.after["recorded"], event.after["fees_fen"]) == ("test-ingest", 8, fees)
    assert event.after["sales_fen"] == gross
    assert verify_ledger().ok


def test_a_new_plan_version_applies_from_its_date(world, shop):
    with time_machine.travel(at(date(2026, 11, 4))):
        plan_version_add(
            actor=SYSTEM,
            plan=standard_plan(),
            effective_from=date(2026, 11, 10),
            rules={"credit": RuleSpec(Decimal("0.0058")), "debit": RuleSpec(Decimal("0.005"), cap_fen=1800)},
        )
    items = [
        txn(shop, 1, 100000, day=date(2026, 11, 9)),
        txn(shop, 2, 100000, day=date(2026, 11, 10)),
        txn(shop, 3, 1000000, "debit", day=date(2026, 11, 9)),
        txn(shop, 4, 1000000, "debit", day=date(2026, 11, 10)),
    ]
    results = transactions_ingest(actor=INGEST, items=items)
    assert [r.fee_fen for r in results] == [600, 580, 2000, 1800]
    versions = dict(Transaction.objects.values_list("trace_no", "plan_version__number"))
    assert versions == {"000001": 1, "000002": 2, "000003": 1, "000004": 2}
    assert verify_ledger().ok


def test_a_replayed_batch_returns_the_stored_results_and_changes_nothing(world, shop):
    sale = txn(shop, 1, 10000, external_id="acq-1")
    items = [
        sale,
        txn(shop, 2, 5000, "qr", status="declined", response_code="51"),
        refund_of(sale, 3, 2500),
        txn(shop, 4, 3000, "debit"),
    ]
    first = transactions_ingest(actor=INGEST, items=items)
    before = (ledger_state(), Transaction.objects.count(), AuditEvent.objects.count())
    again = transactions_ingest(actor=INGEST, items=items)
    assert [(r.transaction_id, r.fee_fen, r.ok) for r in again] == [
        (r.transaction_id, r.fee_fen, r.ok) for r in first
    ]
    assert [r.replayed for r in first] == [False] * 4
    assert [r.replayed for r in again] == [True] * 4
    assert (ledger_state(), Transaction.objects.count(), AuditEvent.objects.count()) == before
    assert Transaction.objects.count() == 4
    assert verify_ledger().ok


@pytest.mark.parametrize("group", [3, EXACT_KEYS + 20], ids=["a few keys, looked up exactly", "a large feed"])
def test_replays_are_found_among_a_busy_terminals_day(world, shop, group):
    """A terminal with many sales that day: a few postings (the gateway's) look up exactly their keys, a
    large feed reads the day's rows of its TIDs; either way a replay is a replay, and a key that
    differs only in its batch is a new sale."""
    day = [txn(shop, n, 1000 + n) for n in range(1, 150)]
    stored = transactions_ingest(actor=INGEST, items=day)
    assert all(r.ok and not r.replayed for r in stored)
    replays = day[:group]
    other_batch = txn_like(day[0], 1, 777, batch_no="000002")
    before = (ledger_state(), Transaction.objects.count())
    again = transactions_ingest(actor=INGEST, items=replays)
    assert [r.replayed for r in again] == [True] * group
    assert [r.transaction_id for r in again] == [r.transaction_id for r in stored[:group]]
    assert (ledger_state(), Transaction.objects.count()) == before
    new = transactions_ingest(actor=INGEST, items=[other_batch, day[-1]])
    assert [(r.ok, r.replayed) for r in new] == [(True, False), (True, True)]
    assert Transaction.objects.filter(batch_no="000002").get().amount_fen == 777
    assert verify_ledger().ok


def _plan_of(queryset) -> tuple[set[str], int]:
    """The indexes a query reads ``billing_transaction`` through, and the rows it read and threw away
    (PostgreSQL: the plan as run; SQLite: its query plan, which reports no counts)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
            nodes, indexes, thrown = [(plan[0] if isinstance(plan, list) else plan)["Plan"]], set(), 0
            while nodes:
                node = nodes.pop()
                nodes.extend(node.get("Plans", []))
                if "Index Name" in node:
                    indexes.add(node["Index Name"])
                elif node.get("Relation Name") == "billing_transaction" and node["Node Type"] == "Seq Scan":
                    indexes.add("Seq Scan")  # read through no index
                thrown += node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
            return indexes, thrown
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        details = [row[-1] for row in cursor.fetchall() if "billing_transaction" in row[-1]]
        return {d.split(" USING ")[-1] for d in details}, 0


def test_a_few_keys_are_read_through_the_natural_key_alone_on_a_table_never_analysed(world, shop):
    """The gateway's duplicate check and its poster's look-up — a sale of each of a few busy terminals
    — in a table the database has no statistics for (a new one, as on a first day): only the keys' own
    rows are read, through the natural key's unique index, not the terminals' whole day. (Their days
    are declines written directly: 3,000 each, enough that reading them would show.)"""
    terminals = [shop, *(active_terminal(world, f"SN-TXN-BUSY{n}", merchant=shop.merchant) for n in (1, 2))]
    Transaction.objects.bulk_create(
        Transaction(
            terminal=t,
            merchant=t.merchant,
            tid=t.tid,
            batch_no="000001",
            trace_no=f"{n:06d}",
            txn_date=DAY,
            occurred_at=at(DAY, 8 + n // 600, n % 60),
            status="declined",
            response_code="51",
            method="qr",
            entry_mode="scan",
            amount_fen=100 + n,
        )
        for t in terminals
        for n in range(1, 3001)
    )
    wanted = [(t.tid, "000001", f"{n:06d}", DAY) for t, n in zip(terminals, (7, 1500, 2999), strict=True)]
    indexes, thrown = _plan_of(_RECORDED.build(keys=wanted))
    assert transactions_recorded(wanted).keys() == set(wanted)
    assert thrown == 0
    if connection.vendor == "postgresql":
        assert indexes == {"transaction_natural_key"}
    else:  # SQLite names the key's index after the table; what matters is that all four columns are used
        assert indexes, "the look-up reads billing_transaction through no index"
        key = {"tid=?", "txn_date=?", "batch_no=?", "trace_no=?"}
        assert all(set(i.rpartition("(")[2].rstrip(")").split(" AND ")) == key for i in indexes), indexes


def test_the_same_key_with_other_content_is_refused(world, shop):
    sale = txn(shop, 1, 10000, external_id="acq-1")
    stored = transactions_ingest(actor=INGEST, items=[sale])[0]
    changed = [
        txn_like(sale, 1, 10001, external_id="acq-1"),  # same key and id, other amount
        txn_like(sale, 1, 10000, external_id="acq-2"),  # same key, other external id
        txn_like(sale, 9, 10000, external_id="acq-1"),  # other key, same external id
        txn_like(sale, 1, 10000, external_id="acq-1", method="debit"),
    ]
    with override("en"), nothing_ingested():
        results = transactions_ingest(actor=INGEST, items=changed)
    assert codes(results) == ["duplicate_key_conflict"] * 4
    assert (
        results[0].detail == "A transaction with this key or external id is recorded with different content."
    )
    replay = transactions_ingest(actor=INGEST, items=[sale])[0]
    assert (replay.ok, replay.replayed, replay.transaction_id) == (True, True, stored.transaction_id)
    assert verify_ledger().ok


def test_a_duplicate_inside_one_batch_is_a_replay_of_the_first(world, shop):
    sale = txn(shop, 1, 10000)
    results = transactions_ingest(actor=INGEST, items=[sale, txn(shop, 2, 700), sale, txn_like(sale, 1, 99)])
    assert [(r.ok, r.replayed, r.code) for r in results] == [
        (True, False, None),
        (True, False, None),
        (True, True, None),
        (False, False, "duplicate_key_conflict"),
    ]
    assert results[2].transaction_id == results[0].transaction_id
    assert Transaction.objects.count() == 2
    assert balance(world.provider.pk, AccountKind.BANK_CLEARING) == 10700
    assert verify_ledger().ok


def test_declines_are_recorded_without_money(world, shop):
    results = transactions_ingest(
        actor=INGEST, items=[txn(shop, 1, 10000, status="declined", response_code="51")]
    )
    assert (results[0].ok, results[0].fee_fen) == (True, 0)
    row = Transaction.objects.get()
    assert (row.status, row.fee_fen, row.capture_journal_id, row.plan_version_id) == (
        "declined",
        0,
        None,
        None,
    )
    assert (Journal.objects.count(), Entry.objects.count()) == (0, 0)
    assert balance(world.provider.pk, AccountKind.BANK_CLEARING) == 0
    # A decline needs no plan and no active terminal: a suspended terminal's declines are recorded too.
    with time_machine.travel(at(DAY, 15), tick=False):
        terminal_transition(actor=SYSTEM, sn=shop.sn, action="suspend", reason="risk")
    later = transactions_ingest(
        actor=INGEST,
        items=[txn(shop, 2, 10000, status="declined", response_code="58", occurred_at=at(DAY, 16))],
    )
    assert later[0].ok
    assert verify_ledger().ok


def test_approved_transactions_need_a_terminal_active_at_the_time(world, shop):
    for when, action, reason in (
        (at(date(2026, 11, 5), 9), "suspend", "risk"),
        (at(date(2026, 11, 6), 9), "resume", ""),
        (at(date(2026, 11, 7), 9), "deactivate", "cost"),
    ):
        with time_machine.travel(when, tick=False):
            terminal_transition(actor=SYSTEM, sn=shop.sn, action=action, reason=reason)
    items = [
        txn(shop, 1, 1000, day=date(2026, 11, 2), occurred_at=ACTIVATED - timedelta(minutes=1)),  # before
        txn(shop, 2, 2000, day=date(2026, 11, 2), occurred_at=ACTIVATED),  # the first active instant
        txn(shop, 3, 3000, day=date(2026, 11, 5), occurred_at=at(date(2026, 11, 5), 10)),  # suspended
        txn(shop, 4, 4000, day=date(2026, 11, 6), occurred_at=at(date(2026, 11, 6), 10)),  # resumed
        txn(shop, 5, 5000, day=date(2026, 11, 7), occurred_at=at(date(2026, 11, 7), 9)),  # deactivated
        txn(shop, 6, 6000, day=date(2026, 11, 8), occurred_at=at(date(2026, 11, 8), 10)),  # still so
    ]
    with override("en"):
        results = transactions_ingest(actor=INGEST, items=items)
    assert codes(results) == [
        "terminal_not_active",
        None,
        "terminal_not_active",
        None,
        "terminal_not_active",
        "terminal_not_active",
    ]
    assert results[0].detail == "The terminal was not active at the time of the transaction."
    assert sorted(Transaction.objects.values_list("amount_fen", flat=True)) == [2000, 4000]
    assert balance(world.provider.pk, AccountKind.BANK_CLEARING) == 6000
    assert verify_ledger().ok


def test_each_refused_item_says_why_and_writes_nothing(world, shop):
    on_standard_plan(world.merchant_b)
    unplanned = active_terminal(world, "SN-TXN-A1", merchant=world.merchant_a1)
    items = [
        txn(shop, 1, 0),
        txn(shop, 2, -5),
        txn(shop, 3, 12.5),  # type: ignore[arg-type]
        txn(shop, 4, True),  # type: ignore[arg-type]
        txn(shop, 5, 100, method="cash"),
        txn(shop, 6, 100, entry_mode="wave"),
        txn(shop, 7, 100, kind="chargeback"),
        txn(shop, 8, 100, status="pending"),
        txn(shop, 9, 100, occurred_at=datetime(2026, 11, 3, 10, 0)),  # no time zone
        txn(shop, 10, 100, card_masked="6222021234567890123"),  # a full card number
        txn(shop, 11, 100, tid="99999999"),
        txn(shop, 12, 100, tid="bad"),
        txn(unplanned, 13, 100),
        txn(shop, 14, 100, kind="refund"),  # names no original
        txn(shop, 15, 100, original=("00000001", "000001", "000001", DAY)),  # a sale naming one
        txn(shop, 16, 100, response_code="approved"),
        txn(shop, 17, 100, external_id="x" * 65),
    ]
    with nothing_ingested():
        results = transactions_ingest(actor=INGEST, items=items)
    assert codes(results) == [
        "invalid_amount",
        "invalid_amount",
        "invalid_amount",
        "invalid_amount",
        "invalid_method",
        "invalid_entry_mode",
        "invalid_kind",
        "invalid_status",
        "invalid_time",
        "invalid_card",
        "unknown_terminal",
        "invalid_key",
        "no_rate_plan",
        "original_missing",
        "original_not_allowed",
        "invalid_response_code",
        "invalid_external_id",
    ]
    assert all(r.detail for r in results)
    assert Transaction.objects.count() == 0


def test_refunds_are_linked_return_fees_in_proportion_and_cannot_exceed_the_sale(world, shop):
    sale = txn(shop, 1, 10000)  # fee 60
    first = transactions_ingest(actor=INGEST, items=[sale, refund_of(sale, 2, 3333)])
    assert [r.fee_fen for r in first] == [60, 20]  # 60 × 3333 / 10000 = 19.998 -> 20
    second = transactions_ingest(
        actor=INGEST, items=[refund_of(sale, 3, 3333), refund_of(sale, 4, 3334), refund_of(sale, 5, 1)]
    )
    assert [r.fee_fen for r in second[:2]] == [20, 20]  # cumulative 40 -> 40; all of it: 60
    assert codes(second) == [None, None, "refund_exceeds_sale"]
    refunds = Transaction.objects.filter(kind="refund").order_by("trace_no")
    assert {r.original_id for r in refunds} == {first[0].transaction_id}
    assert sum(r.fee_fen for r in refunds) == 60
    assert Journal.objects.filter(kind="refund").count() == 2
    # The sale is refunded in full: nothing is owed to anybody any more.
    for org, kind in (
        (world.provider.pk, AccountKind.BANK_CLEARING),
        (world.provider.pk, AccountKind.FEE_REVENUE),
        (world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE),
    ):
        assert balance(org, kind) == 0
    assert verify_ledger().ok


def test_reversals_cancel_the_whole_sale_on_its_day(world, shop):
    other = active_terminal(world, "SN-TXN-0002")
    sale = txn(shop, 1, 20000, external_id="s-1")  # fee 120
    assert transactions_ingest(actor=INGEST, items=[sale])[0].fee_fen == 120
    results = transactions_ingest(
        actor=INGEST,
        items=[
            refund_of(
                sale, 2, 20000, kind="reversal", txn_date=date(2026, 11, 4), occurred_at=at(date(2026, 11, 4))
            ),
            refund_of(sale, 3, 19999, kind="reversal"),
            refund_of(sale, 4, 20000, kind="reversal", tid=other.tid),
            txn_like(sale, 5, 20000, kind="reversal", original_external_id="s-1"),
            refund_of(sale, 6, 1),  # nothing left to refund
        ],
    )
    assert codes(results) == [
        "reversal_not_same_day",
        "reversal_not_full_amount",
        "reversal_other_terminal",
        None,
        "refund_exceeds_sale",
    ]
    assert results[3].fee_fen == 120
    reversal = Transaction.objects.get(kind="reversal")
    assert reversal.original.external_id == "s-1"
    assert balance(world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE) == 0
    assert verify_ledger().ok


def test_a_refund_needs_an_approved_sale_of_the_same_merchant(world, shop):
    on_standard_plan(world.merchant_b)
    theirs = active_terminal(world, "SN-TXN-B1", merchant=world.merchant_b)
    their_sale = txn(theirs, 1, 10000)
    declined = txn(shop, 2, 10000, status="declined")
    transactions_ingest(actor=INGEST, items=[their_sale, declined])
    with nothing_ingested():
        results = transactions_ingest(
            actor=INGEST,
            items=[
                refund_of(their_sale, 3, 100, tid=shop.tid),
                refund_of(declined, 4, 100),
                refund_of(txn(shop, 99, 1), 5, 100),  # no such sale
                txn(shop, 6, 100, kind="refund", original_external_id="nope"),
            ],
        )
    assert codes(results) == [
        "original_other_merchant",
        "original_not_found",
        "original_not_found",
        "original_not_found",
    ]
    assert Transaction.objects.filter(kind="refund").count() == 0
    assert verify_ledger().ok


def test_one_capture_journal_per_merchant_per_call(world, shop):
    on_standard_plan(world.merchant_b)
    theirs = active_terminal(world, "SN-TXN-B2", merchant=world.merchant_b)
    second = active_terminal(world, "SN-TXN-0003")
    sale = txn(shop, 1, 10000)
    items = [sale, txn(second, 2, 20000), txn(theirs, 3, 30000), refund_of(sale, 4, 5000)]
    transactions_ingest(actor=INGEST, items=items)
    journals = sorted(Journal.objects.values_list("kind", "merchant__mid", "entry_count"))
    assert journals == [
        ("capture", world.merchant_a.mid, 3),
        ("capture", world.merchant_b.mid, 3),
        ("refund", world.merchant_a.mid, 3),
    ]
    capture_a = Journal.objects.get(kind="capture", merchant=world.merchant_a)
    assert sorted(capture_a.entries.values_list("amount_fen", flat=True)) == [-29820, -180, 30000]
    assert AuditEvent.objects.filter(event_type=EventType.TRANSACTIONS_INGESTED).count() == 1
    transactions_ingest(actor=INGEST, items=[txn(shop, 5, 100)])
    assert Journal.objects.filter(kind="capture", merchant=world.merchant_a).count() == 2
    assert verify_ledger().ok


def test_batches_are_bounded_and_only_admins_ingest(world, shop, actor_of):
    item = txn(shop, 1, 100)
    with nothing_ingested(), pytest.raises(ValidationFailed):
        transactions_ingest(actor=INGEST, items=[item] * (MAX_BATCH + 1))
    for actor in (
        actor_of(world.user("merchant_a")),
        actor_of(world.user("agent_a")),
        actor_of(world.user("reviewer")),
        Actor(kind="token", user=world.user("admin"), read_only=True),
    ):
        with nothing_ingested(), pytest.raises(PermissionDenied):
            transactions_ingest(actor=actor, items=[item])
    assert (Transaction.objects.count(), Journal.objects.count()) == (0, 0)
    assert transactions_ingest(actor=actor_of(world.user("admin")), items=[item])[0].ok
    assert transactions_ingest(actor=INGEST, items=[]) == []
    assert verify_ledger().ok
