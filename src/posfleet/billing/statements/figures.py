"""Aggregates shared by the statements: transactions by payment method, a ledger balance at a date.

Every figure is one SQL aggregate over the rows it summarises; Python only arranges the results.
A follow-up (refund or reversal) counts as money back to the cardholder; the fee on a follow-up is
the fee handed back with it, so the fees of a period are those of its sales less those of its
follow-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils.functional import Promise

from posfleet.billing.models import (
    AccountKind,
    Entry,
    PaymentMethod,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from posfleet.billing.models.ledger import DEBIT_NORMAL

APPROVED = Q(status=TransactionStatus.APPROVED)
SALE = APPROVED & Q(kind=TransactionKind.SALE)
FOLLOW_UP = APPROVED & ~Q(kind=TransactionKind.SALE)
DECLINED = Q(status=TransactionStatus.DECLINED)


def _sum(field: str, condition: Q) -> Coalesce:
    return Coalesce(Sum(field, filter=condition), 0)


FIGURES: dict[str, Any] = {
    "sales_count": Count("id", filter=SALE),
    "sales_fen": _sum("amount_fen", SALE),
    "refunds_count": Count("id", filter=FOLLOW_UP),
    "refunds_fen": _sum("amount_fen", FOLLOW_UP),
    "sale_fees_fen": _sum("fee_fen", SALE),
    "returned_fees_fen": _sum("fee_fen", FOLLOW_UP),
    "declined_count": Count("id", filter=DECLINED),
}


@dataclass(frozen=True)
class MethodLine:
    """One payment method's (or the total's) figures over a set of transactions."""

    method: str
    label: str | Promise
    sales_count: int = 0
    sales_fen: int = 0
    refunds_count: int = 0
    refunds_fen: int = 0
    fees_fen: int = 0
    declined_count: int = 0

    @property
    def net_fen(self) -> int:
        """What the merchant keeps: sales less refunds less fees."""
        return self.sales_fen - self.refunds_fen - self.fees_fen

    @property
    def count(self) -> int:
        return self.sales_count + self.refunds_count + self.declined_count


def method_label(method: str) -> str | Promise:
    try:
        return PaymentMethod(method).label
    except ValueError:
        return method


def by_method(transactions: QuerySet[Transaction]) -> list[MethodLine]:
    """The transactions' figures per payment method (methods without any row are left out),
    in the order of ``PaymentMethod``."""
    rows = {
        row["method"]: row
        for row in transactions.order_by().values("method").annotate(**FIGURES).values("method", *FIGURES)
    }
    order = [m for m in PaymentMethod.values if m in rows] + sorted(set(rows) - set(PaymentMethod.values))
    return [_line(method, method_label(method), rows[method]) for method in order]


def _line(method: str, label: str | Promise, row: dict[str, int]) -> MethodLine:
    return MethodLine(
        method=method,
        label=label,
        sales_count=row["sales_count"],
        sales_fen=row["sales_fen"],
        refunds_count=row["refunds_count"],
        refunds_fen=row["refunds_fen"],
        fees_fen=row["sale_fees_fen"] - row["returned_fees_fen"],
        declined_count=row["declined_count"],
    )


def total(lines: list[MethodLine], label: str | Promise) -> MethodLine:
    return MethodLine(
        method="total",
        label=label,
        sales_count=sum(x.sales_count for x in lines),
        sales_fen=sum(x.sales_fen for x in lines),
        refunds_count=sum(x.refunds_count for x in lines),
        refunds_fen=sum(x.refunds_fen for x in lines),
        fees_fen=sum(x.fees_fen for x in lines),
        declined_count=sum(x.declined_count for x in lines),
    )


def balance_at(organisation_id: int, kind: AccountKind, day: date) -> int:
    """The natural balance (what is owed or held, positive) of an account after the journals of
    business dates up to and including ``day``; 0 when the account does not exist."""
    raw = (
        Entry.objects.filter(
            account__organisation_id=organisation_id, account__kind=kind, journal__business_date__lte=day
        ).aggregate(total=Coalesce(Sum("amount_fen"), 0))["total"]
        or 0
    )
    return raw if kind in DEBIT_NORMAL else -raw


def movements(organisation_id: int, kind: AccountKind, first: date, last: date) -> dict[str, int]:
    """The natural change of an account in ``first``..``last`` by journal kind (positive: the balance
    grew)."""
    rows = (
        Entry.objects.filter(
            account__organisation_id=organisation_id,
            account__kind=kind,
            journal__business_date__gte=first,
            journal__business_date__lte=last,
        )
        .order_by()
        .values("journal__kind")
        .annotate(total=Sum("amount_fen"))
    )
    sign = 1 if kind in DEBIT_NORMAL else -1
    return {row["journal__kind"]: sign * row["total"] for row in rows if row["total"]}
