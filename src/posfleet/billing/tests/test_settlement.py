"""T+1 settlement: exact batches and journals per merchant, service fees charged once and deducted,
merchants whose net is not positive wait, a second run changes nothing, a stopped run resumes."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db.models import F
from django.utils.translation import override

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import (
    Account,
    AccountKind,
    DailyTotal,
    Journal,
    ServiceFeeDue,
    SettlementBatch,
    SettlementRun,
    Transaction,
)
from posfleet.billing.selectors import with_settlement
from posfleet.billing.services.settlement import SettlementInterrupted, settlement_run, unsettled_totals
from posfleet.billing.services.settlement_chunk import SettlementCorrupt
from posfleet.billing.services.transactions import transactions_ingest
from posfleet.billing.tasks import settle_yesterday
from posfleet.billing.tests.test_transactions import (
    DAY,
    INGEST,
    active_terminal,
    at,
    ledger_state,
    refund_of,
    txn,
)
from posfleet.billing.verify import verify_ledger
from posfleet.parties.services import merchant_create
from posfleet.platform.context import Actor
from posfleet.platform.errors import Conflict, PermissionDenied, ValidationFailed
from posfleet.testing.money import balance, on_standard_plan, signed_contract
from posfleet.testing.personas import SYSTEM
from posfleet.testing.refusals import assert_nothing_recorded

JOB = Actor.job("test-settlement")
NEXT = DAY + timedelta(days=1)


@pytest.fixture
def shops(world):
    """Merchants A and B on the standard plan, one active terminal each."""
    on_standard_plan(world.merchant_a)
    on_standard_plan(world.merchant_b)
    return active_terminal(world, "SN-SET-A1"), active_terminal(world, "SN-SET-B1", merchant=world.merchant_b)


def unpaid():
    """Transactions no batch has paid (declines included: they are never paid)."""
    return with_settlement(Transaction.objects.all()).filter(settled_by__isnull=True)


def ingest(*items):
    results = transactions_ingest(actor=INGEST, items=list(items))
    assert all(r.ok for r in results), [(r.code, r.detail) for r in results if not r.ok]
    return results


def nothing_settled():
    """Around a refused settlement: runs, batches, day totals, transactions and balances as they were,
    nothing recorded."""
    return assert_nothing_recorded(
        SettlementRun.objects.all(),
        SettlementBatch.objects.all(),
        DailyTotal.objects.all(),
        Transaction.objects.all(),
        Account.objects.all(),
    )


def batch_of(merchant, day=DAY) -> SettlementBatch:
    return SettlementBatch.objects.get(merchant=merchant, business_date=day)


def amounts(batch: SettlementBatch) -> tuple[int, ...]:
    return (
        batch.txn_count,
        batch.gross_fen,
        batch.refunds_fen,
        batch.fees_fen,
        batch.service_fees_fen,
        batch.payout_fen,
    )


def test_each_merchant_gets_one_exact_batch_and_journal(world, shops):
    a, b = shops
    credit = txn(a, 1, 10000)  # fee 60
    ingest(
        credit,
        txn(a, 2, 500000, "debit"),  # fee 2000 (capped)
        txn(a, 3, 10000, "qr"),  # fee 48
        txn(a, 4, 3000, status="declined", response_code="51"),
        refund_of(credit, 5, 2500),  # gives back 15 of the 60
        txn(a, 6, 10000, day=NEXT, occurred_at=at(NEXT)),  # tomorrow's: not settled today
        txn(b, 7, 20000, "nfc"),  # fee 120
    )
    run = settlement_run(actor=JOB, business_date=DAY)
    assert (run.status, run.merchants_total, run.merchants_done, run.attempts) == ("done", 2, 2, 1)
    fees_a = 60 + 2000 + 48 - 15
    assert amounts(batch_of(world.merchant_a)) == (4, 520000, 2500, fees_a, 0, 520000 - 2500 - fees_a)
    assert amounts(batch_of(world.merchant_b)) == (1, 20000, 0, 120, 0, 19880)
    batch = batch_of(world.merchant_a)
    assert (batch.paid_on, batch.run_id) == (NEXT, run.pk)
    assert batch.journal.reference == f"settlement:2026-11-03:{world.merchant_a.mid}"
    assert sorted(batch.journal.entries.values_list("amount_fen", flat=True)) == [-515407, 515407]
    assert Transaction.objects.filter(batch.pays("daily_total__")).count() == 4
    assert unpaid().count() == 2  # the decline, tomorrow's
    # What stays owed to A is tomorrow's sale; B is paid in full.
    assert balance(world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE) == 10000 - 60
    assert balance(world.merchant_b.organisation_id, AccountKind.SETTLEMENT_PAYABLE) == 0
    event = AuditEvent.objects.get(event_type=EventType.SETTLEMENT_RUN)
    assert (event.subject_id, event.after["batches"], event.after["payout_fen"]) == (
        "2026-11-03",
        2,
        515407 + 19880,
    )
    assert verify_ledger().ok


def test_a_day_total_ingest_did_not_write_fails_the_run_and_pays_nothing(world, shops):
    """Ingest opens a merchant's settlement payable with the day total it writes; a total without
    one (written by hand) breaks that, and the run says so instead of paying around it."""
    a, _b = shops
    ingest(txn(a, 1, 10000))
    DailyTotal.objects.create(
        merchant=world.merchant_a1, txn_date=DAY, settle_day=DAY, txn_count=1, gross_fen=500
    )
    with (
        assert_nothing_recorded(  # the run's own row says it failed; nothing else is written
            SettlementBatch.objects.all(),
            DailyTotal.objects.all(),
            Transaction.objects.all(),
            Account.objects.all(),
        ),
        pytest.raises(
            SettlementCorrupt, match=rf"merchants \[{world.merchant_a1.pk}\] have day totals but no"
        ),
    ):
        settlement_run(actor=JOB, business_date=DAY)
    run = SettlementRun.objects.get(business_date=DAY)
    assert run.status == "failed"
    assert "no settlement payable account" in run.error
    assert SettlementBatch.objects.count() == 0


def test_due_service_fees_are_charged_once_and_deducted(world, shops):
    a, b = shops
    signed_contract(a, deposit_fen=0, annual_fee_fen=9900)  # due 2024-01-01
    signed_contract(b, deposit_fen=0, annual_fee_fen=99900)
    later = signed_contract(
        active_terminal(world, "SN-SET-A2"), deposit_fen=0, annual_fee_fen=5000, starts_on=NEXT
    )
    ingest(txn(a, 1, 100000), txn(b, 2, 20000))  # nets 99400 and 19880
    settlement_run(actor=JOB, business_date=DAY)
    assert amounts(batch_of(world.merchant_a)) == (1, 100000, 0, 600, 9900, 89500)
    assert amounts(batch_of(world.merchant_b)) == (1, 20000, 0, 120, 19880, 0)  # all of it, still owed
    assert balance(world.merchant_a.organisation_id, AccountKind.FEES_RECEIVABLE) == 0
    assert balance(world.merchant_b.organisation_id, AccountKind.FEES_RECEIVABLE) == 99900 - 19880
    charged = ServiceFeeDue.objects.filter(journal__isnull=False)
    assert sorted(charged.values_list("amount_fen", flat=True)) == [9900, 99900]
    assert ServiceFeeDue.objects.get(contract=later).journal is None  # not due yet
    assert {d.journal.reference for d in charged} == {f"service_fee:{d.pk}" for d in charged}
    assert AuditEvent.objects.filter(event_type=EventType.SERVICE_FEE_CHARGED).count() == 2
    # The next day charges nothing twice and takes the rest of B's fee from B's next takings.
    first_charges = sorted(charged.values_list("pk", "journal_id"))
    ingest(txn(b, 3, 100000, day=NEXT, occurred_at=at(NEXT)))
    settlement_run(actor=JOB, business_date=NEXT)
    assert sorted(charged.exclude(contract=later).values_list("pk", "journal_id")) == first_charges
    assert Journal.objects.filter(kind="service_fee").count() == 3
    assert amounts(batch_of(world.merchant_b, NEXT)) == (1, 100000, 0, 600, 80020, 19380)
    assert ServiceFeeDue.objects.get(contract=later).journal is not None  # due on NEXT: charged now
    assert verify_ledger().ok


def test_a_merchant_whose_net_is_not_positive_waits(world, shops):
    a, _b = shops
    sale = txn(a, 1, 10000)
    ingest(sale)
    settlement_run(actor=JOB, business_date=DAY)
    ingest(refund_of(sale, 2, 4000, txn_date=NEXT, occurred_at=at(NEXT)))  # only a refund on NEXT
    run = settlement_run(actor=JOB, business_date=NEXT)
    assert (run.merchants_done, run.batches.count()) == (1, 0)
    assert Transaction.objects.get(trace_no="000002").settlement_batch is None
    assert balance(world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE) == -(4000 - 24)
    third = NEXT + timedelta(days=1)
    ingest(txn(a, 3, 5000, day=third, occurred_at=at(third)))
    settlement_run(actor=JOB, business_date=third)
    assert amounts(batch_of(world.merchant_a, third)) == (2, 5000, 4000, 30 - 24, 0, 5000 - 4000 - 6)
    assert balance(world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE) == 0
    assert (
        AuditEvent.objects.get(event_type=EventType.SETTLEMENT_RUN, subject_id=NEXT.isoformat()).after[
            "waiting"
        ]
        == 1
    )
    assert verify_ledger().ok


def test_a_waiting_merchants_totals_join_a_late_arrival_of_the_same_date(world, shops, monkeypatch):
    """A merchant that waits (net not positive) carries its totals to the next day; one that arrived
    during the run for the same date and merchant is already there: the two become one total, with
    every transaction in it, and the next run pays them together."""
    from posfleet.billing.services import settlement

    a, _b = shops
    sale = txn(a, 1, 10000)
    ingest(sale)
    settlement_run(actor=JOB, business_date=DAY)
    ingest(refund_of(sale, 2, 4000, txn_date=NEXT, occurred_at=at(NEXT)))  # only a refund on NEXT
    summed = settlement.pay_chunk

    def late_sale(*args, **kwargs):
        ingest(txn(a, 3, 1000, day=NEXT, occurred_at=at(NEXT)))  # NEXT's run has begun: settled after
        return summed(*args, **kwargs)

    monkeypatch.setattr(settlement, "pay_chunk", late_sale)
    settlement_run(actor=JOB, business_date=NEXT)
    monkeypatch.setattr(settlement, "pay_chunk", summed)
    third = NEXT + timedelta(days=1)
    totals = DailyTotal.objects.filter(merchant=world.merchant_a, txn_date=NEXT)
    assert [(t.settle_day, t.txn_count, t.gross_fen, t.refunds_fen) for t in totals] == [
        (third, 2, 1000, 4000)
    ]
    assert set(
        Transaction.objects.filter(trace_no__in=["000002", "000003"]).values_list("daily_total", flat=True)
    ) == {totals.get().pk}
    assert verify_ledger().ok
    ingest(txn(a, 4, 5000, day=third, occurred_at=at(third)))
    settlement_run(actor=JOB, business_date=third)
    assert amounts(batch_of(world.merchant_a, third)) == (3, 6000, 4000, 30 + 6 - 24, 0, 6000 - 4000 - 12)
    assert unpaid().count() == 0
    assert verify_ledger().ok


def test_an_earlier_day_is_refused_once_a_later_one_has_run(world, shops):
    a, _b = shops
    ingest(txn(a, 1, 10000, day=NEXT, occurred_at=at(NEXT)))
    settlement_run(actor=JOB, business_date=NEXT)
    with override("en"), nothing_settled(), pytest.raises(Conflict) as late:
        settlement_run(actor=JOB, business_date=DAY)
    assert str(late.value.detail) == (
        f"Days up to {NEXT} have been settled already; a late transaction is paid by the next run."
    )


def test_a_second_run_changes_nothing_and_late_arrivals_settle_next_day(world, shops):
    a, b = shops
    ingest(txn(a, 1, 10000), txn(b, 2, 10000))
    first = settlement_run(actor=JOB, business_date=DAY)
    ingest(txn(a, 3, 7000))  # a late arrival dated DAY
    before = (ledger_state(), SettlementBatch.objects.count(), AuditEvent.objects.count())
    again = settlement_run(actor=JOB, business_date=DAY)
    assert (again.pk, again.attempts, again.status) == (first.pk, 1, "done")
    assert (ledger_state(), SettlementBatch.objects.count(), AuditEvent.objects.count()) == before
    assert Transaction.objects.get(trace_no="000003").settlement_batch is None
    settlement_run(actor=JOB, business_date=NEXT)
    assert amounts(batch_of(world.merchant_a, NEXT)) == (1, 7000, 0, 42, 0, 6958)
    assert not SettlementBatch.objects.filter(merchant=world.merchant_b, business_date=NEXT).exists()
    assert verify_ledger().ok


def make_merchants(world, n: int, first: int = 10):
    shops = []
    for i in range(first, first + n):
        merchant = merchant_create(
            actor=SYSTEM,
            agent=world.agent_a,
            mid=f"1000000000001{i:02d}",
            kind="individual",
            name=f"Shop {i}",
            legal_name=f"Owner {i}",
            mcc="5411",
        )
        on_standard_plan(merchant)
        shops.append(active_terminal(world, f"SN-SET-M{i:02d}", merchant=merchant))
    return shops


def test_a_stopped_run_resumes_to_the_same_result(world):
    shops = make_merchants(world, 5)
    for n, shop in enumerate(shops):
        ingest(*(txn(shop, trace, 1000 * (n + 1) + trace) for trace in range(1, 4)))
    expected = {t.merchant_id: t.net_fen for t in unsettled_totals(DAY).values()}
    assert len(expected) == 5
    with pytest.raises(SettlementInterrupted):
        settlement_run(actor=JOB, business_date=DAY, fail_after=2, chunk_size=1)
    run = SettlementRun.objects.get(business_date=DAY)
    assert (run.status, run.merchants_done, run.merchants_total, SettlementBatch.objects.count()) == (
        "running",
        2,
        5,
        2,
    )
    assert not AuditEvent.objects.filter(event_type=EventType.SETTLEMENT_RUN).exists()
    with pytest.raises(SettlementInterrupted):  # again, 2 more; then the rest
        settlement_run(actor=JOB, business_date=DAY, fail_after=2)
    run = settlement_run(actor=JOB, business_date=DAY)
    assert (run.status, run.merchants_done, run.attempts) == ("done", 5, 3)
    assert dict(SettlementBatch.objects.values_list("merchant_id", "payout_fen")) == expected
    assert Journal.objects.filter(kind="settlement").count() == 5
    assert unpaid().count() == 0
    assert AuditEvent.objects.get(event_type=EventType.SETTLEMENT_RUN).after["batches"] == 5
    assert verify_ledger().ok


def test_refusals_change_nothing(world, shops, actor_of):
    a, _b = shops
    ingest(txn(a, 1, 10000))
    with (
        override("en"),
        time_machine.travel(at(DAY, 23)),
        nothing_settled(),
        pytest.raises(ValidationFailed) as early,
    ):
        settlement_run(actor=JOB, business_date=DAY)
    assert "T+1" in str(early.value.detail)
    for user in ("merchant_a", "agent_a", "reviewer"):
        with nothing_settled(), pytest.raises(PermissionDenied):
            settlement_run(actor=actor_of(world.user(user)), business_date=DAY)
    assert SettlementRun.objects.count() == 0
    assert settlement_run(actor=actor_of(world.user("admin")), business_date=DAY).status == "done"
    assert verify_ledger().ok


def test_the_settle_command_and_the_daily_task(world, shops, capsys):
    a, _b = shops
    ingest(txn(a, 1, 10000), txn(a, 2, 10000, day=NEXT, occurred_at=at(NEXT)))
    call_command("settle", "--date", DAY.isoformat())
    out = capsys.readouterr().out
    assert "settled 1 of 1 merchants" in out
    assert "Settlement of 2026-11-03: done after 1 attempt(s); 1 batches paying ¥99.40 on 2026-11-04" in out
    call_command("settle", "--date", DAY.isoformat())  # again: reported, nothing new
    assert SettlementBatch.objects.count() == 1
    with nothing_settled(), pytest.raises(CommandError) as refused:
        call_command("settle", "--date", "2026-13-01")
    assert refused.value.returncode == 2
    with time_machine.travel(at(NEXT + timedelta(days=1), 2)):  # the scheduler, on D+1 after midnight
        run = settle_yesterday()
    assert (run.business_date, batch_of(world.merchant_a, NEXT).payout_fen) == (NEXT, 9940)
    event = AuditEvent.objects.get(event_type=EventType.SETTLEMENT_RUN, subject_id=NEXT.isoformat())
    assert event.actor_label == "settle_yesterday"
    assert verify_ledger().ok


def test_the_command_stops_on_request_and_resumes(world, capsys):
    shops = make_merchants(world, 3)
    for shop in shops:
        ingest(txn(shop, 1, 10000))
    with pytest.raises(CommandError) as stopped:
        call_command("settle", "--date", DAY.isoformat(), "--fail-after", "1")
    assert stopped.value.returncode == 1
    assert "run the command again to resume" in str(stopped.value)
    assert SettlementBatch.objects.count() == 1
    call_command("settle", "--date", DAY.isoformat())
    assert "done after 2 attempt(s); 3 batches paying ¥298.20" in capsys.readouterr().out
    assert verify_ledger().ok


def test_a_late_arrival_while_settling_waits_for_the_next_run(world, shops, monkeypatch):
    """A transaction of the day that arrives once the day's run has begun (here after the run listed
    its merchants, as its chunk begins) is not in the run's sums: ingest gives it the next day, so
    the run pays what it listed, and the next run pays the late one."""
    from posfleet.billing.services import settlement

    a, b = shops
    ingest(txn(a, 1, 10000), txn(b, 2, 10000))
    summed = settlement.pay_chunk
    calls = []

    def late_arrival(*args, **kwargs):
        if not calls:
            ingest(txn(a, 3, 5000))  # after the listing, before the chunk's sums
        calls.append(args)
        return summed(*args, **kwargs)

    monkeypatch.setattr(settlement, "pay_chunk", late_arrival)
    settlement_run(actor=JOB, business_date=DAY)
    assert len(calls) == 1  # one chunk
    assert amounts(batch_of(world.merchant_a)) == (1, 10000, 0, 60, 0, 9940)
    assert amounts(batch_of(world.merchant_b)) == (1, 10000, 0, 60, 0, 9940)
    assert unpaid().count() == 1  # the late one, for the next run
    settlement_run(actor=JOB, business_date=NEXT)
    assert amounts(batch_of(world.merchant_a, NEXT)) == (1, 5000, 0, 30, 0, 4970)
    assert unpaid().count() == 0
    assert verify_ledger().ok


def test_days_are_settled_one_at_a_time(world, shops):
    a, b = shops
    ingest(txn(a, 1, 10000), txn(b, 2, 10000), txn(a, 3, 700, day=NEXT, occurred_at=at(NEXT)))
    with pytest.raises(SettlementInterrupted):
        settlement_run(actor=JOB, business_date=DAY, fail_after=1)
    with override("en"), nothing_settled(), pytest.raises(Conflict) as unfinished:
        settlement_run(actor=JOB, business_date=NEXT)
    assert str(unfinished.value.detail) == (
        "The settlement of 2026-11-03 has not finished; run it again to finish it first."
    )
    assert not SettlementRun.objects.filter(business_date=NEXT).exists()
    settlement_run(actor=JOB, business_date=DAY)
    assert settlement_run(actor=JOB, business_date=NEXT).status == "done"
    assert amounts(batch_of(world.merchant_a, NEXT)) == (1, 700, 0, 4, 0, 696)
    assert verify_ledger().ok


def test_day_totals_add_up_and_close_once(world, shops):
    """Ingest keeps one open total per merchant and day (a second call adds to it); settlement closes
    it; a late arrival for a settled day opens a new one, paid by the next run."""
    a, b = shops
    ingest(txn(a, 1, 10000), txn(b, 2, 10000))
    ingest(txn(a, 3, 5000, "qr"), txn(a, 4, 3000, status="declined", response_code="51"))
    total = DailyTotal.objects.get(merchant=world.merchant_a, txn_date=DAY)
    assert (total.txn_count, total.gross_fen, total.refunds_fen, total.fees_fen) == (2, 15000, 0, 60 + 24)
    assert Transaction.objects.get(trace_no="000004").daily_total is None  # a decline moves no money
    settlement_run(actor=JOB, business_date=DAY)
    assert total.settle_day == DAY
    assert Transaction.objects.get(trace_no="000003").settlement_batch == batch_of(world.merchant_a)
    ingest(txn(a, 5, 2000))  # dated DAY, after DAY was settled
    late = DailyTotal.objects.get(merchant=world.merchant_a, txn_date=DAY, settle_day=NEXT)
    assert (late.txn_count, late.gross_fen) == (1, 2000)
    assert Transaction.objects.get(trace_no="000005").settlement_batch is None
    settlement_run(actor=JOB, business_date=NEXT)
    assert Transaction.objects.get(trace_no="000005").settlement_batch == batch_of(world.merchant_a, NEXT)
    assert Transaction.objects.get(trace_no="000003").settlement_batch == batch_of(world.merchant_a)
    assert amounts(batch_of(world.merchant_a, NEXT)) == (1, 2000, 0, 12, 0, 1988)
    assert verify_ledger().ok


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda: Transaction.objects.filter(trace_no="000001").update(amount_fen=10001), "day total"),
        (lambda: DailyTotal.objects.update(fees_fen=1), "day total"),
        (
            lambda: SettlementBatch.objects.update(
                gross_fen=F("gross_fen") + 1, payout_fen=F("payout_fen") + 1
            ),
            "batch",
        ),
        (lambda: SettlementBatch.objects.update(covers_after=F("business_date")), "is not paid"),
        (lambda: SettlementBatch.objects.update(covers_after=None), "an earlier batch paid"),
    ],
)
def test_verify_finds_settlement_money_that_does_not_add_up(world, shops, change, needle):
    a, _b = shops
    ingest(txn(a, 1, 10000))
    settlement_run(actor=JOB, business_date=DAY)
    ingest(txn(a, 2, 3000, day=NEXT, occurred_at=at(NEXT)))
    settlement_run(actor=JOB, business_date=NEXT)  # two batches of merchant a: DAY, then NEXT
    assert verify_ledger().ok
    change()
    report = verify_ledger()
    assert not report.ok
    assert any(needle in problem for problem in report.problems), report.problems
