"""The settlement batch detail (结算明细): one merchant's day, its transactions and how the payout
adds up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from posfleet.billing.models import SettlementBatch, Transaction
from posfleet.billing.statements.figures import MethodLine, by_method, total
from posfleet.billing.statements.monthly import MerchantHeading, heading
from posfleet.billing.statements.settlements import SettlementRow, settlement_rows
from posfleet.platform.clock import now

# A day of one merchant is rarely more; the rest is one click away in the transaction search.
LISTED_MAX = 2000


@dataclass
class BatchDetail:
    batch: SettlementBatch
    row: SettlementRow  # its figures and deductions, as every settlement table shows them
    merchant: MerchantHeading
    generated_at: datetime
    methods: list[MethodLine]
    totals: MethodLine
    transactions: list[Transaction]
    transaction_count: int

    @property
    def more(self) -> int:
        """Transactions of the batch not listed (see the transaction search)."""
        return max(0, self.transaction_count - len(self.transactions))

    @property
    def adds_up(self) -> bool:
        """The batch's recorded figures equal those of its transactions, and its payout is its sales
        less refunds, fees and deductions."""
        r = self.row
        return self.row.adds_up and (r.gross_fen, r.refunds_fen, r.fees_fen) == (
            self.totals.sales_fen,
            self.totals.refunds_fen,
            self.totals.fees_fen,
        )


def batch_transactions(batch: SettlementBatch) -> QuerySet[Transaction]:
    return Transaction.objects.filter(batch.pays("daily_total__"))


def batch_detail(batch: SettlementBatch, *, listed: int = LISTED_MAX) -> BatchDetail:
    """``batch`` (already scoped by the caller) with its transactions by method and the first
    ``listed`` of them (the API pages through them itself: ``listed=0``)."""
    transactions = batch_transactions(batch)
    methods = by_method(transactions)
    totals = total(methods, _("Total"))
    rows = (
        list(transactions.select_related("terminal").order_by("occurred_at", "pk")[:listed]) if listed else []
    )
    return BatchDetail(
        batch=batch,
        row=settlement_rows([batch])[0],
        merchant=heading(batch.merchant),
        generated_at=now(),
        methods=methods,
        totals=totals,
        transactions=rows,
        transaction_count=totals.count,
    )
