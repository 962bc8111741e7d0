"""The monthly merchant statement (对账单): transactions by payment method, the settlements paid in the
month, deposits, service fees, and the settlement payable from the opening to the closing balance.

One figure per thing, wherever the statement shows it. "Refunds and reversals" is what went back to
cardholders for the month's transactions (their amounts, by transaction date); the share of the sale's
fee a refund hands back is inside "Fees" (sale fees less those handed back). The settlement payable's
movements are those same figures, plus what the month's settlements paid out and deducted; what the
ledger booked in another month than the transactions' date, and anything else (corrections), are
lines of their own, so the movements always lead from the opening to the closing balance."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Min, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from posfleet.billing.models import (
    AccountKind,
    Deposit,
    JournalKind,
    ServiceFeeDue,
    SettlementBatch,
    Transaction,
)
from posfleet.billing.statements.figures import MethodLine, balance_at, by_method, movements, total
from posfleet.billing.statements.periods import Month
from posfleet.billing.statements.settlements import SettlementRow, settlement_rows
from posfleet.platform.clock import now


@dataclass(frozen=True)
class MerchantHeading:
    mid: str
    name: str
    legal_name: str
    organisation_id: int
    pk: int


@dataclass(frozen=True)
class SettlementLine:
    """The sums of the month's settlements (the per-batch lines are ``SettlementRow``s)."""

    pk: int
    business_date: date
    paid_on: date
    txn_count: int
    gross_fen: int
    refunds_fen: int
    fees_fen: int
    service_fees_fen: int
    payout_fen: int


@dataclass(frozen=True)
class DepositLine:
    pk: int
    contract_id: int
    terminal_sn: str
    amount_fen: int
    collected_on: date
    status: str  # at the end of the month: held, refunded or forfeited
    status_label: str | Promise
    refunded_fen: int  # in this month
    forfeited_fen: int  # in this month
    released_on: date | None


@dataclass(frozen=True)
class FeeDueLine:
    due_on: date
    contract_id: int
    terminal_sn: str
    period: int
    amount_fen: int
    charged: bool


@dataclass(frozen=True)
class Movement:
    kind: str  # sales, refunds, fees, other_month, paid_out, deducted, other (see FLOW_LABELS)
    label: str | Promise
    amount_fen: int  # positive: the merchant is owed more


@dataclass
class MonthlyStatement:
    merchant: MerchantHeading
    month: Month
    generated_at: datetime
    methods: list[MethodLine]
    totals: MethodLine
    settlements: list[SettlementRow]
    settlement_totals: SettlementLine
    deposits: list[DepositLine]
    deposit_held_fen: int  # at the end of the month
    deposit_refunded_fen: int  # in the month
    deposit_forfeited_fen: int
    fees_due: list[FeeDueLine]
    service_fees_due_fen: int  # falling due in the month
    service_fees_charged_fen: int  # charged to the merchant in the month
    service_fees_deducted_fen: int  # taken from the month's settlements
    service_fees_outstanding_fen: int  # owed at the end of the month
    opening_payable_fen: int
    closing_payable_fen: int
    payable_movements: list[Movement] = field(default_factory=list)

    @property
    def is_partial(self) -> bool:
        """The month is not over yet: the figures will still change."""
        return self.month.last_day >= self.generated_at.date()

    @property
    def first_day(self) -> date:
        return self.month.first_day

    @property
    def last_day(self) -> date:
        return self.month.last_day


def heading(merchant: object) -> MerchantHeading:
    return MerchantHeading(
        mid=merchant.mid,  # type: ignore[attr-defined]
        name=merchant.name,  # type: ignore[attr-defined]
        legal_name=getattr(merchant, "legal_name", ""),
        organisation_id=merchant.organisation_id,  # type: ignore[attr-defined]
        pk=merchant.pk,  # type: ignore[attr-defined]
    )


def _settlements(merchant_id: int, first: date, last: date) -> tuple[list[SettlementRow], SettlementLine]:
    batches = SettlementBatch.objects.filter(
        merchant_id=merchant_id, business_date__gte=first, business_date__lte=last
    )
    lines = settlement_rows(
        list(batches.select_related("merchant", "journal").order_by("business_date", "pk"))
    )
    names = ("txn_count", "gross_fen", "refunds_fen", "fees_fen", "service_fees_fen", "payout_fen")
    sums = batches.aggregate(**{name: Coalesce(Sum(name), 0) for name in names})
    totals = SettlementLine(pk=0, business_date=first, paid_on=last, **sums)
    return lines, totals


def _deposits(merchant_id: int, first: date, last: date, end: datetime) -> list[DepositLine]:
    lines = []
    deposits = (
        Deposit.objects.filter(merchant_id=merchant_id, collected_at__lt=end)
        .select_related("contract__terminal")
        .order_by("collected_at", "pk")
    )
    for d in deposits:
        released = d.released_at is not None and d.released_at < end
        status = d.status if released else Deposit.Status.HELD
        released_on = _local_date(d.released_at) if released and d.released_at else None
        in_month = released_on is not None and first <= released_on <= last
        lines.append(
            DepositLine(
                pk=d.pk,
                contract_id=d.contract_id,
                terminal_sn=d.contract.terminal.sn,
                amount_fen=d.amount_fen,
                collected_on=_local_date(d.collected_at),
                status=status,
                status_label=Deposit.Status(status).label,
                refunded_fen=d.refunded_fen if in_month else 0,
                forfeited_fen=d.forfeited_fen if in_month else 0,
                released_on=released_on,
            )
        )
    return lines


def _local_date(at: datetime) -> date:
    return timezone.localdate(at)


def _end_of(day: date) -> datetime:
    """The first moment after ``day`` in the provider's time zone."""
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def _fees_due(merchant_id: int, first: date, last: date) -> list[FeeDueLine]:
    rows = (
        ServiceFeeDue.objects.filter(contract__merchant_id=merchant_id, due_on__gte=first, due_on__lte=last)
        .select_related("contract__terminal")
        .order_by("due_on", "pk")
    )
    return [
        FeeDueLine(
            due_on=f.due_on,
            contract_id=f.contract_id,
            terminal_sn=f.contract.terminal.sn,
            period=f.period,
            amount_fen=f.amount_fen,
            charged=f.journal_id is not None,
        )
        for f in rows
    ]


# The settlement payable's movements, in the order they are shown.
FLOW_LABELS: dict[str, Promise] = {
    "sales": _("Sales"),
    "refunds": _("Refunds and reversals"),
    "fees": _("Fees"),
    "other_month": _("Booked in another month than the transactions' date"),
    "paid_out": _("Paid out"),
    "deducted": _("Deducted from settlements"),
    "other": _("Other movements (corrections)"),
}
TAKINGS_JOURNALS = (JournalKind.CAPTURE, JournalKind.REFUND)


def payable_flow(
    totals: MethodLine, settled: SettlementLine, ledger: dict[str, int], opening: int, closing: int
) -> list[Movement]:
    """The settlement payable from ``opening`` to ``closing``: the month's sales, refunds and fees and
    what its settlements paid out and deducted — the statement's own figures — and, when the ledger
    moved otherwise, what it booked for transactions of another month (its capture and refund journals
    are dated by the latest transaction of an ingest call) and any other movement. ``ledger``: the
    payable's natural change in the month by journal kind."""
    takings = totals.sales_fen - totals.refunds_fen - totals.fees_fen
    booked = sum(ledger.get(kind, 0) for kind in TAKINGS_JOURNALS)
    amounts = {
        "sales": totals.sales_fen,
        "refunds": -totals.refunds_fen,
        "fees": -totals.fees_fen,
        "other_month": booked - takings,
        "paid_out": -settled.payout_fen,
        "deducted": -settled.service_fees_fen,
    }
    amounts["other"] = closing - opening - sum(amounts.values())
    shown_when_zero = {"sales", "refunds", "fees", "paid_out", "deducted"}
    return [
        Movement(kind, FLOW_LABELS[kind], amount)
        for kind, amount in amounts.items()
        if amount or kind in shown_when_zero
    ]


def monthly_statement(merchant: object, month: Month) -> MonthlyStatement:
    """The statement of ``merchant`` (a parties Merchant) for ``month``: every figure is an aggregate."""
    head = heading(merchant)
    first, last = month.first_day, month.last_day
    end = _end_of(last)
    transactions = Transaction.objects.filter(merchant_id=head.pk, txn_date__gte=first, txn_date__lte=last)
    methods = by_method(transactions)
    settlements, settlement_totals = _settlements(head.pk, first, last)
    deposits = _deposits(head.pk, first, last, end)
    fees_due = _fees_due(head.pk, first, last)
    org = head.organisation_id
    charged = movements(org, AccountKind.FEES_RECEIVABLE, first, last).get(JournalKind.SERVICE_FEE, 0)
    totals = total(methods, _("Total"))
    opening = balance_at(org, AccountKind.SETTLEMENT_PAYABLE, month.plus(-1).last_day)
    closing = balance_at(org, AccountKind.SETTLEMENT_PAYABLE, last)
    ledger = movements(org, AccountKind.SETTLEMENT_PAYABLE, first, last)
    return MonthlyStatement(
        merchant=head,
        month=month,
        generated_at=now(),
        methods=methods,
        totals=totals,
        settlements=settlements,
        settlement_totals=settlement_totals,
        deposits=deposits,
        deposit_held_fen=sum(d.amount_fen for d in deposits if d.status == Deposit.Status.HELD),
        deposit_refunded_fen=sum(d.refunded_fen for d in deposits),
        deposit_forfeited_fen=sum(d.forfeited_fen for d in deposits),
        fees_due=fees_due,
        service_fees_due_fen=sum(f.amount_fen for f in fees_due),
        service_fees_charged_fen=charged,
        service_fees_deducted_fen=settlement_totals.service_fees_fen,
        service_fees_outstanding_fen=balance_at(org, AccountKind.FEES_RECEIVABLE, last),
        opening_payable_fen=opening,
        closing_payable_fen=closing,
        payable_movements=payable_flow(totals, settlement_totals, ledger, opening, closing),
    )


def statement_months(merchant_id: int, *, until: date, limit: int = 24) -> list[Month]:
    """The months with something to state (transactions, settlements or fees due), newest first, from
    the first such month up to the month of ``until``; at most ``limit``."""
    firsts = [
        Transaction.objects.filter(merchant_id=merchant_id).aggregate(d=Min("txn_date"))["d"],
        SettlementBatch.objects.filter(merchant_id=merchant_id).aggregate(d=Min("business_date"))["d"],
        Deposit.objects.filter(merchant_id=merchant_id).aggregate(d=Min("collected_at"))["d"],
    ]
    days = [_local_date(d) if isinstance(d, datetime) else d for d in firsts if d is not None]
    if not days:
        return []
    start, stop = Month.of(min(days)), Month.of(until)
    months: list[Month] = []
    current = stop
    while current >= start and len(months) < limit:
        months.append(current)
        current = current.plus(-1)
    return months
