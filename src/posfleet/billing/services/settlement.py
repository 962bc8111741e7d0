"""T+1 settlement (结算): on day D+1, pay every merchant the net of its approved transactions up to D.

One run per business date (``SettlementRun``), merchants in id order, a chunk of merchants per
database transaction; the run's progress (``last_merchant_id``, ``merchants_done``) is written in the
same transaction as the chunk's batches, journals and marks, so a run that died resumes where the
last committed chunk ended and nothing is paid twice. Per merchant and day at most one batch (unique
constraint) and one journal (unique reference ``settlement:D:MID``).

What is paid is the merchants' day totals (``DailyTotal``, kept by ingest) whose settlement day is in
(the previous run's day, D]. Once the run of D has begun, ingest gives new totals a later settlement
day, so these totals no longer change: each chunk sums them, writes one INSERT of journals, one of
entries, one of batches and one UPDATE of balances — and nothing on the totals, which belong to the
batch by its merchant and days (``SettlementBatch.pays``). A merchant whose net is not positive
waits: its totals move on to the next day. See docs/adr/0009-transactions-and-settlement.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import (
    AccountKind,
    DailyTotal,
    SettlementBatch,
    SettlementRun,
    Transaction,
)
from posfleet.billing.payouts import service_fees_to_charge
from posfleet.billing.services.contracts import charge_fees_due
from posfleet.billing.services.settlement_chunk import pay_chunk
from posfleet.billing.services.transactions.posting import (
    accounts,
    money_lock,
)
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import Conflict, ValidationFailed

# Merchants per database transaction: a chunk is a handful of set-based statements, about 0.4 s for
# 10,000 merchants on PostgreSQL (bench/settlement.py); a run killed mid-chunk redoes at most that.
CHUNK = 10_000
FEE_CHUNK = 500  # service fees charged per database transaction
RUNNING, DONE, FAILED = SettlementRun.Status.RUNNING, SettlementRun.Status.DONE, SettlementRun.Status.FAILED

Progress = Callable[[int, int], None]


class SettlementInterrupted(RuntimeError):
    """Raised by ``fail_after``: the run stops as if the process had died (status stays running)."""


def settlement_run(
    *,
    actor: Actor,
    business_date: date,
    progress: Progress | None = None,
    fail_after: int | None = None,
    chunk_size: int = CHUNK,
    pause_ms: int = 0,
) -> SettlementRun:
    """Settle ``business_date`` (T+1: a day before today), or resume its run; a finished run is returned
    unchanged. ``fail_after=N`` stops after N merchants (crash tests); ``pause_ms`` sleeps that long per
    merchant inside each chunk's transaction (to kill a run mid-chunk in a test)."""
    actor.require("billing.run_settlement")
    if not isinstance(business_date, date) or isinstance(business_date, datetime):
        raise ValidationFailed(_("The business date is a date."), field="business_date")
    if business_date >= today():
        raise ValidationFailed(
            _("T+1: a day is settled once it is over (the latest is yesterday, %(day)s).")
            % {"day": today() - timedelta(days=1)},
            field="business_date",
        )
    run = _begin(business_date)
    if run.status == DONE:
        return run
    after = previous_run_day(business_date)  # the run pays settlement days in (after, business_date]
    try:
        charge_service_fees(actor=actor, up_to=business_date)
        candidates = list(  # who has something to be paid (the sums come chunk by chunk)
            DailyTotal.objects.filter(_days_of(business_date, after), merchant_id__gt=run.last_merchant_id)
            .order_by("merchant_id")
            .values_list("merchant_id", flat=True)
            .distinct()
        )
        total = run.merchants_done + len(candidates)
        SettlementRun.objects.filter(pk=run.pk).update(merchants_total=total)
        if progress:
            progress(run.merchants_done, total)
        done_now, position = 0, 0
        while position < len(candidates):
            size = max(1, chunk_size)
            if fail_after is not None:
                if done_now >= fail_after:
                    raise SettlementInterrupted(f"settlement stopped after {done_now} merchants (fail_after)")
                size = min(size, fail_after - done_now)
            chunk = candidates[position : position + size]
            run = _settle_chunk(run, after, chunk[-1], pause_ms)
            position += len(chunk)
            done_now += len(chunk)
            if progress:
                progress(run.merchants_done, max(total, run.merchants_done))
        return _finish(run, actor)
    except (SettlementInterrupted, Conflict):
        raise
    except Exception as exc:
        SettlementRun.objects.filter(pk=run.pk, status=RUNNING).update(
            status=FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise


def _begin(business_date: date) -> SettlementRun:
    """The day's run: a new one, or the unfinished one again (attempts + 1), or the finished one."""
    with transaction.atomic():
        money_lock()  # two days cannot both find the other unfinished and start
        run = SettlementRun.objects.select_for_update().filter(business_date=business_date).first()
        if run is None:
            _one_day_at_a_time(business_date)
            _in_date_order(business_date)
            try:
                with transaction.atomic():
                    return SettlementRun.objects.create(business_date=business_date, started_at=now())
            except IntegrityError:  # begun by someone else a moment ago
                run = SettlementRun.objects.select_for_update().get(business_date=business_date)
        if run.status != DONE:
            _one_day_at_a_time(business_date)
            SettlementRun.objects.filter(pk=run.pk).update(
                attempts=F("attempts") + 1, status=RUNNING, error=""
            )
            run.refresh_from_db()
    return run


def _one_day_at_a_time(business_date: date) -> None:
    """Days are settled one at a time: an unfinished run of another day is finished first (running
    it again resumes it). So the only change a run can meet is a late transaction arriving."""
    other = SettlementRun.objects.exclude(business_date=business_date).exclude(status=DONE).first()
    if other is not None:
        raise Conflict(
            _("The settlement of %(day)s has not finished; run it again to finish it first.")
            % {"day": other.business_date},
            business_date=str(other.business_date),
        )


def _in_date_order(business_date: date) -> None:
    """Days are settled in date order: a run pays everything up to its day, so once a later day has
    run an earlier one has nothing left (a transaction of it arriving late waits for the next run)."""
    later = SettlementRun.objects.filter(business_date__gt=business_date).aggregate(day=Max("business_date"))
    if later["day"] is not None:
        raise Conflict(
            _("Days up to %(day)s have been settled already; a late transaction is paid by the next run.")
            % {"day": later["day"]},
            business_date=str(later["day"]),
        )


def previous_run_day(business_date: date) -> date | None:
    """The day of the run before ``business_date``'s: its batches pay the days after it."""
    return SettlementRun.objects.filter(business_date__lt=business_date).aggregate(day=Max("business_date"))[
        "day"
    ]


def _days_of(day: date, after: date | None) -> Q:
    """The day totals the run of ``day`` pays: settlement days in (``after``, ``day``], ``after``
    being the previous run's day."""
    q = Q(settle_day__lte=day)
    return q & Q(settle_day__gt=after) if after is not None else q


class Totals(NamedTuple):
    """One merchant's unsettled money: what ``settlement_run`` pays it (before service fees)."""

    merchant_id: int
    txns: int
    gross_fen: int  # approved sales
    refunds_fen: int  # approved refunds and reversals
    fees_fen: int  # sale fees less the fees refunds gave back

    @property
    def net_fen(self) -> int:
        return self.gross_fen - self.refunds_fen - self.fees_fen


def unsettled_totals(business_date: date, first: int = 0, last: int | None = None) -> dict[int, Totals]:
    """Per merchant (ids in (first, last]), the approved transactions dated up to the day that no batch
    has paid yet (a day total is paid by its merchant's first batch on or after its settlement day)."""
    paid = SettlementBatch.objects.filter(
        merchant_id=OuterRef("merchant_id"), business_date__gte=OuterRef("settle_day")
    )
    qs = DailyTotal.objects.filter(txn_date__lte=business_date, merchant_id__gt=first).exclude(Exists(paid))
    if last is not None:
        qs = qs.filter(merchant_id__lte=last)
    return _sums(qs)


def _sums(qs: QuerySet[DailyTotal]) -> dict[int, Totals]:
    rows = (
        qs.order_by()
        .values("merchant_id")
        .annotate(
            n=Sum("txn_count"),
            gross=Sum("gross_fen"),
            refunds=Sum("refunds_fen"),
            fees=Sum("fees_fen"),
        )
        .values_list("merchant_id", "n", "gross", "refunds", "fees")
    )
    return {m: Totals(m, n, gross, refunds, fees) for m, n, gross, refunds, fees in rows}


def _settle_chunk(run: SettlementRun, after: date | None, last: int, pause_ms: int) -> SettlementRun:
    """Pay the merchants with ids in (the run's last merchant, ``last``] in one transaction, under the
    money lock (no other writer of money meanwhile). A late arrival never lands in these sums: since
    the run began, ingest gives new totals a later settlement day."""
    first = run.last_merchant_id
    with transaction.atomic():
        provider = money_lock()
        bank = accounts([(provider, AccountKind.BANK_CLEARING)])[(provider, AccountKind.BANK_CLEARING)]
        paid, waiting = pay_chunk(
            run_id=run.pk,
            day=run.business_date,
            after=after,
            ids_in=(first, last),
            bank_id=bank,
            at=now(),
        )
        _carry_over(run.business_date, after, waiting)
        merchants = paid + len(waiting)
        if pause_ms:
            time.sleep(pause_ms * merchants / 1000)
        moved = SettlementRun.objects.filter(pk=run.pk, status=RUNNING, last_merchant_id=first).update(
            last_merchant_id=last, merchants_done=F("merchants_done") + merchants
        )
        if moved != 1:  # another process is running this day's settlement: leave it to it
            raise Conflict(_("Another process is settling this day; try again when it has finished."))
    run.refresh_from_db()
    return run


def _carry_over(day: date, after: date | None, waiting: list[int]) -> None:
    """The totals of merchants whose net is not positive wait for the next run: their settlement
    day moves to the next day, added to a total already there (a transaction that arrived during
    this run) and its transactions moved with it. Rare: a day of refunds only."""
    if not waiting:
        return
    next_day = day + timedelta(days=1)
    moving = list(
        DailyTotal.objects.filter(_days_of(day, after), merchant_id__in=waiting).values_list(
            "pk", "merchant_id", "txn_date", "txn_count", "gross_fen", "refunds_fen", "fees_fen"
        )
    )
    there = {
        (m, d): pk
        for pk, m, d in DailyTotal.objects.filter(merchant_id__in=waiting, settle_day=next_day).values_list(
            "pk", "merchant_id", "txn_date"
        )
    }
    for pk, merchant, txn_date, n, gross, refunds, fees in moving:
        target = there.get((merchant, txn_date))
        if target is None:
            DailyTotal.objects.filter(pk=pk).update(settle_day=next_day)
            continue
        DailyTotal.objects.filter(pk=target).update(
            txn_count=F("txn_count") + n,
            gross_fen=F("gross_fen") + gross,
            refunds_fen=F("refunds_fen") + refunds,
            fees_fen=F("fees_fen") + fees,
        )
        Transaction.objects.filter(daily_total_id=pk).update(daily_total_id=target)
        DailyTotal.objects.filter(pk=pk).delete()


def _finish(run: SettlementRun, actor: Actor) -> SettlementRun:
    with transaction.atomic():
        sums = SettlementBatch.objects.filter(run=run).aggregate(
            batches=Count("id"),
            transactions=Sum("txn_count", default=0),
            gross_fen=Sum("gross_fen", default=0),
            refunds_fen=Sum("refunds_fen", default=0),
            fees_fen=Sum("fees_fen", default=0),
            service_fees_fen=Sum("service_fees_fen", default=0),
            payout_fen=Sum("payout_fen", default=0),
        )
        finished = SettlementRun.objects.filter(pk=run.pk, status=RUNNING).update(
            status=DONE, finished_at=now(), error=""
        )
        run.refresh_from_db()
        if finished:
            record(
                actor,
                Entry(
                    event_type=EventType.SETTLEMENT_RUN,
                    subject_type="settlement_run",
                    subject_id=run.business_date.isoformat(),
                    after={
                        **sums,
                        "merchants": run.merchants_done,
                        "waiting": run.merchants_done - sums["batches"],
                        "attempts": run.attempts,
                    },
                ),
            )
    return run


def charge_service_fees(*, actor: Actor, up_to: date) -> int:
    """Charge every annual service/SIM fee due on or before ``up_to`` that has no journal yet
    (``charge_fees_due``, a chunk per transaction). Returns how many.

    Only a terminal in service is charged: a deactivated terminal's fee waits until it is reactivated
    (and lapses if it is closed instead: ``billing.services.closure.contract_end``)."""
    actor.require("billing.run_settlement")
    due = list(service_fees_to_charge(up_to).order_by("pk").values_list("pk", flat=True))
    charged = 0
    for start in range(0, len(due), FEE_CHUNK):
        with transaction.atomic():
            provider = money_lock()
            charged += charge_fees_due(
                actor=actor, fee_ids=due[start : start + FEE_CHUNK], provider_id=provider
            )
    return charged
