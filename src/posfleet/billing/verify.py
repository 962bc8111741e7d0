"""`posfleet ledger verify`: every journal balances and is complete, every balance equals its entries,
and money is conserved (all entries sum to zero)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, F, Q, Sum

from posfleet.billing.models import Account, Deposit, Entry, Journal


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
    return report
