"""`posfleet ledger verify`: every journal balances and is complete, every balance equals its entries,
and money is conserved (all entries sum to zero); and what settlement pays adds up: every day total
equals its transactions, every settlement batch the day totals it closed."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, F, Q, Sum

from posfleet.billing.models import (
    Account,
    DailyTotal,
    Deposit,
    Entry,
    Journal,
    SettlementBatch,
    Transaction,
)


@dataclass
class LedgerReport:
    journals: int = 0
    entries: int = 0
    accounts: int = 0
    total_fen: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_ledger(limit: int = 20) -> LedgerReport:
    report = LedgerReport(
        journals=Journal.objects.count(), entries=Entry.objects.count(), accounts=Account.objects.count()
    )
    report.total_fen = Entry.objects.aggregate(total=Sum("amount_fen"))["total"] or 0
    if report.total_fen != 0:
        report.problems.append(f"the ledger does not balance: all entries sum to {report.total_fen} fen")
    bad_journals = (
        Journal.objects.annotate(total=Sum("entries__amount_fen"), n=Count("entries"))
        .filter(~Q(n=F("entry_count")) | ~Q(total=0) | Q(total__isnull=True))
        .order_by("id")
        .values_list("reference", "total", "n", "entry_count")[:limit]
    )
    for reference, total, n, declared in bad_journals:
        report.problems.append(f"journal {reference}: {n} of {declared} entries, summing to {total or 0} fen")
    bad_accounts = (
        Account.objects.annotate(total=Sum("entries__amount_fen"))
        .filter(~Q(balance_fen=F("total")) | (Q(total__isnull=True) & ~Q(balance_fen=0)))
        .order_by("id")
        .values_list("id", "organisation_id", "kind", "balance_fen", "total")[:limit]
    )
    for pk, org, kind, balance, total in bad_accounts:
        report.problems.append(
            f"account {pk} ({org}:{kind}) says {balance} fen but its entries sum to {total or 0} fen"
        )
    for deposit_id, status in (
        Deposit.objects.exclude(status=Deposit.Status.HELD)
        .filter(release_journal__isnull=True)
        .values_list("id", "status")[:limit]
    ):
        report.problems.append(f"deposit {deposit_id} is {status} without a release journal")
    report.problems.extend(_settlement_problems(limit))
    return report


def _settlement_problems(limit: int) -> list[str]:
    """Day totals against their transactions, batches against their day totals (two GROUP BYs)."""
    sale = Q(kind="sale")
    sums = (
        Transaction.objects.filter(daily_total__isnull=False)
        .order_by()
        .values("daily_total_id")
        .annotate(
            n=Count("id"),
            gross=Sum("amount_fen", filter=sale, default=0),
            refunds=Sum("amount_fen", filter=~sale, default=0),
            fees=Sum("fee_fen", filter=sale, default=0) - Sum("fee_fen", filter=~sale, default=0),
        )
        .values_list("daily_total_id", "n", "gross", "refunds", "fees")
    )
    found = {pk: rest for pk, *rest in sums}
    problems = []
    for pk, merchant, day, *stored in (
        DailyTotal.objects.order_by("id")
        .values_list("id", "merchant_id", "txn_date", "txn_count", "gross_fen", "refunds_fen", "fees_fen")
        .iterator(chunk_size=5000)
    ):
        if list(found.pop(pk, [0, 0, 0, 0])) != stored:
            problems.append(f"day total {pk} (merchant {merchant}, {day}) does not equal its transactions")
    problems.extend(f"transactions point at a missing day total {pk}" for pk in sorted(found))
    closed = (
        DailyTotal.objects.filter(settlement_batch__isnull=False)
        .order_by()
        .values("settlement_batch_id")
        .annotate(
            n=Sum("txn_count"), gross=Sum("gross_fen"), refunds=Sum("refunds_fen"), fees=Sum("fees_fen")
        )
        .values_list("settlement_batch_id", "n", "gross", "refunds", "fees")
    )
    paid = {pk: rest for pk, *rest in closed}
    for pk, merchant, day, *stored in (
        SettlementBatch.objects.order_by("id")
        .values_list(
            "id", "merchant_id", "business_date", "txn_count", "gross_fen", "refunds_fen", "fees_fen"
        )
        .iterator(chunk_size=5000)
    ):
        if list(paid.get(pk, [0, 0, 0, 0])) != stored:
            problems.append(
                f"settlement batch {pk} (merchant {merchant}, {day}) does not equal its day totals"
            )
    return problems[:limit]
