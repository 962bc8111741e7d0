"""The merchant's next payout, as things stand (the console's merchant home), and the service fees a
settlement run charges first (one rule: ``billing.services.settlement.charge_service_fees`` reads it).
Split from ``billing.selectors``: what settlement will do next, not what it did."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Max, Min, QuerySet, Sum

from posfleet.billing.models import (
    Account,
    AccountKind,
    DailyTotal,
    ServiceFeeDue,
    SettlementBatch,
    SettlementRun,
)
from posfleet.fleet.states import IN_SERVICE


def service_fees_to_charge(up_to: date) -> QuerySet[ServiceFeeDue]:
    """The annual service/SIM fees the settlement run of ``up_to`` charges before it pays: due by then,
    not charged, not lapsed, of a terminal in service (a deactivated terminal's fee waits until it is
    reactivated, and lapses if it is closed instead)."""
    return ServiceFeeDue.objects.filter(
        due_on__lte=up_to,
        journal__isnull=True,
        lapsed_on__isnull=True,
        amount_fen__gt=0,
        contract__terminal__status__in=IN_SERVICE,
    )


@dataclass(frozen=True)
class NextPayout:
    """What the merchant's next settlement (T+1) is expected to pay, as things stand: the approved
    transactions no batch has paid yet, up to ``business_date``, less the fees the merchant owes by
    then (``deducted_fen``: service fees, oldest first, never more than the net)."""

    business_date: date  # the transactions of this day and before (not paid yet)
    paid_on: date  # business_date + 1
    first_day: date | None  # the earliest transaction date in it (None: nothing to pay)
    txn_count: int
    gross_fen: int  # approved sales
    refunds_fen: int  # approved refunds and reversals
    fees_fen: int  # sale fees less the fees refunds gave back
    owed_fen: int  # fees the merchant owes by then (charged, or charged first by that run)
    still_selling: bool  # the business date is today: its sales still add up

    @property
    def net_fen(self) -> int:
        return self.gross_fen - self.refunds_fen - self.fees_fen

    @property
    def deducted_fen(self) -> int:
        return min(self.owed_fen, self.net_fen) if self.net_fen > 0 else 0

    @property
    def payout_fen(self) -> int:
        """Paid out = sales − refunds − fees − deductions; 0 while the net is not positive (it waits)."""
        return self.net_fen - self.deducted_fen if self.net_fen > 0 else 0


def next_payout(merchant_id: int, organisation_id: int, on: date) -> NextPayout:
    """The merchant's next settlement as of ``on`` (ADR 0009): yesterday's run, unless it has run (or
    paid this merchant already), then today's (paid tomorrow). A day total is unpaid while no batch
    of its merchant is on or after its settlement day."""
    yesterday = on - timedelta(days=1)
    last_batch = SettlementBatch.objects.filter(merchant_id=merchant_id).aggregate(day=Max("business_date"))[
        "day"
    ]
    ran = SettlementRun.objects.filter(business_date=yesterday, status=SettlementRun.Status.DONE).exists()
    day = on if ran or (last_batch is not None and last_batch >= yesterday) else yesterday
    totals = DailyTotal.objects.filter(merchant_id=merchant_id, settle_day__lte=day)
    if last_batch is not None:
        totals = totals.filter(settle_day__gt=last_batch)
    sums = totals.aggregate(
        n=Sum("txn_count", default=0),
        g=Sum("gross_fen", default=0),
        r=Sum("refunds_fen", default=0),
        f=Sum("fees_fen", default=0),
        first=Min("txn_date"),
    )
    receivable = Account.objects.filter(
        organisation_id=organisation_id, kind=AccountKind.FEES_RECEIVABLE
    ).first()
    to_charge = service_fees_to_charge(day).filter(contract__merchant_id=merchant_id)
    owed = (
        max(0, receivable.natural_balance_fen if receivable else 0)
        + (to_charge.aggregate(s=Sum("amount_fen", default=0))["s"])
    )
    return NextPayout(
        business_date=day,
        paid_on=day + timedelta(days=1),
        first_day=sums["first"],
        txn_count=sums["n"],
        gross_fen=sums["g"],
        refunds_fen=sums["r"],
        fees_fen=sums["f"],
        owed_fen=owed,
        still_selling=day == on,
    )


def last_settlement(merchant_id: int) -> SettlementBatch | None:
    """The merchant's latest settlement batch (what was paid out last, and when)."""
    return SettlementBatch.objects.filter(merchant_id=merchant_id).order_by("-business_date").first()
