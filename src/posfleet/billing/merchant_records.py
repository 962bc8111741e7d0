"""A merchant's records whole, for its data backup (closure/backup.py) and its closure statement:
every transaction, settlement and contract, the months with something to state, and a month's statement
as PDF. Unscoped: the caller checked who may read the merchant's data."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import ExtractMonth, ExtractYear

from posfleet.billing.models import Deposit, ServiceContract, ServiceFeeDue, SettlementBatch, Transaction
from posfleet.billing.selectors import with_settlement
from posfleet.billing.statements.monthly import monthly_statement
from posfleet.billing.statements.periods import Month
from posfleet.billing.statements.render import MONTHLY_DOCUMENT, render_pdf
from posfleet.iam.selectors import provider


def merchant_transactions(merchant_id: int) -> QuerySet[Transaction]:
    """Every transaction of the merchant, in the order they were recorded, each with the batch that
    paid it (``settled_by``)."""
    return with_settlement(Transaction.objects.filter(merchant_id=merchant_id)).order_by("id")


def merchant_settlements(merchant_id: int) -> QuerySet[SettlementBatch]:
    """Every settlement batch of the merchant, oldest business date first."""
    return SettlementBatch.objects.filter(merchant_id=merchant_id).order_by("business_date", "id")


def merchant_contracts(merchant_id: int) -> QuerySet[ServiceContract]:
    """Every service contract of the merchant (offered, active or ended), oldest first."""
    return ServiceContract.objects.filter(merchant_id=merchant_id).order_by("id")


def activity_months(merchant_id: int, until: date) -> list[Month]:
    """The months up to ``until``'s with something of the merchant's to state — transactions,
    settlements, a deposit collected or a service fee due — oldest first (a month with none of these
    has no statement worth keeping)."""
    found: set[tuple[int, int]] = set()
    sources: tuple[tuple[QuerySet[Any], str], ...] = (
        (Transaction.objects.filter(merchant_id=merchant_id, txn_date__lte=until), "txn_date"),
        (SettlementBatch.objects.filter(merchant_id=merchant_id, business_date__lte=until), "business_date"),
        (Deposit.objects.filter(merchant_id=merchant_id, collected_at__date__lte=until), "collected_at"),
        (ServiceFeeDue.objects.filter(contract__merchant_id=merchant_id, due_on__lte=until), "due_on"),
    )
    for qs, field in sources:
        rows = qs.order_by().annotate(y=ExtractYear(field), m=ExtractMonth(field)).values_list("y", "m")
        found.update(rows.distinct())
    return [Month(year, month) for year, month in sorted(found)]


def statement_pdf(merchant: Any, month: Month) -> bytes:
    """The merchant's monthly statement of ``month`` as PDF bytes, in the active language: the same
    document the console and the API hand out."""
    root = provider()
    context = {"statement": monthly_statement(merchant, month), "provider_name": root.name if root else ""}
    return render_pdf(MONTHLY_DOCUMENT, context)
