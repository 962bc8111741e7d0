"""`posfleet ledger verify`: every journal balances and is complete, every balance equals its entries,
money is conserved (all entries sum to zero), and nothing points at a row that is not there; and what
settlement pays adds up: every day total equals its transactions, every settlement batch the day
totals of its days, a merchant's batches pay disjoint days, and every day total up to the last
finished run is paid; and the sales by month the reports read equal the sales."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.db import connection
from django.db.models import Count, F, Max, Q, Sum
from django.db.models.functions import TruncMonth

from posfleet.billing.models import (
    Account,
    DailyTotal,
    Deposit,
    Entry,
    Journal,
    SalesMonth,
    SettlementRun,
    Transaction,
)

# A batch pays its merchant's day totals with settle_day in (covers_after, business_date]. Every
# query below is bounded by one merchant and one window, so verify stays linear in the history.
_PAYS = (
    "t.merchant_id = b.merchant_id AND t.settle_day <= b.business_date"
    " AND (b.covers_after IS NULL OR t.settle_day > b.covers_after)"
)
BATCH_SUMS = f"""
SELECT b.id, b.merchant_id, b.business_date, b.txn_count, b.gross_fen, b.refunds_fen, b.fees_fen,
       COALESCE(SUM(t.txn_count), 0), COALESCE(SUM(t.gross_fen), 0), COALESCE(SUM(t.refunds_fen), 0),
       COALESCE(SUM(t.fees_fen), 0)
  FROM billing_settlementbatch AS b LEFT JOIN billing_dailytotal AS t ON {_PAYS}
 GROUP BY b.id, b.merchant_id, b.business_date, b.txn_count, b.gross_fen, b.refunds_fen, b.fees_fen
 ORDER BY b.id
"""  # noqa: S608 (constant text, no input)
# A merchant's batches pay disjoint windows: each starts at or after the previous batch's day.
OVERLAPS = """
SELECT id, merchant_id, business_date FROM (
  SELECT id, merchant_id, business_date, covers_after,
         LAG(business_date) OVER (PARTITION BY merchant_id ORDER BY business_date) AS previous
    FROM billing_settlementbatch) AS w
 WHERE previous IS NOT NULL AND (covers_after IS NULL OR covers_after < previous)
 ORDER BY id
"""
# Totals due by the last finished run that no batch pays (the first batch on or after their day).
UNPAID = f"""
SELECT t.id, t.merchant_id, t.txn_date, t.settle_day FROM billing_dailytotal AS t
 WHERE t.settle_day <= %s
   AND NOT EXISTS (SELECT 1 FROM billing_settlementbatch AS b WHERE {_PAYS})
 ORDER BY t.id
"""  # noqa: S608 (constant text, no input)


# Rows of the ledger that point at a row that is not there: (what, its table, the column, what it
# points at, that table). Foreign keys keep them on both databases (ADR 0019), but a superuser can
# switch a table's triggers off (``DISABLE TRIGGER ALL``, ``session_replication_role = replica``), and
# PostgreSQL held them with triggers between migrations 0009 and 0011: this finds what got past.
REFERENCES = [
    ("entry", "billing_entry", "journal_id", "journal", "billing_journal"),
    ("entry", "billing_entry", "account_id", "account", "billing_account"),
    ("journal", "billing_journal", "merchant_id", "merchant", "parties_merchant"),
    ("settlement batch", "billing_settlementbatch", "merchant_id", "merchant", "parties_merchant"),
    ("settlement batch", "billing_settlementbatch", "run_id", "settlement run", "billing_settlementrun"),
    ("settlement batch", "billing_settlementbatch", "journal_id", "journal", "billing_journal"),
]
ORPHANS = "\nUNION ALL\n".join(
    f"SELECT '{what}', c.id, '{target}', c.{column} FROM {table} AS c WHERE c.{column} IS NOT NULL"  # noqa: S608
    f" AND NOT EXISTS (SELECT 1 FROM {parent} AS p WHERE p.id = c.{column})"
    for what, table, column, target, parent in REFERENCES
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
    with connection.cursor() as cursor:
        cursor.execute(f"{ORPHANS} LIMIT %s", [limit])
        report.problems.extend(
            f"{kind} {pk} points at {target} {target_id}, which does not exist"
            for kind, pk, target, target_id in cursor.fetchall()
        )
    report.problems.extend(_settlement_problems(limit))
    report.problems.extend(_sales_month_problems(limit))
    return report


def _sales_month_problems(limit: int) -> list[str]:
    """The sales by month (``SalesMonth``) against the sales, counted again (one GROUP BY). A sale
    counts under the agent its merchant had when it was ingested, which no transaction records, so the
    recount compares each month, method, model and status summed over the agents, not each agent's
    share."""
    recount = (
        Transaction.objects.filter(kind="sale")
        .order_by()
        .values_list(TruncMonth("txn_date"), "method", "terminal__model_id", "status")
        .annotate(n=Count("id"), amount=Sum("amount_fen"))
    )
    counted = {tuple(key): (n, amount) for *key, n, amount in recount}
    stored = (
        SalesMonth.objects.order_by()
        .values_list("month", "method", "model_id", "status")
        .annotate(n=Sum("sales"), amount=Sum("amount_fen"))
    )
    problems = []
    for *key, n, amount in sorted(stored):
        if counted.pop(tuple(key), None) != (n, amount):
            month, method, _model, status = key
            problems.append(
                f"sales by month of {month:%Y-%m}, {method}, {status}: "
                f"{n} sales of {amount} fen, not what the transactions add up to"
            )
    problems.extend(
        f"sales of {month:%Y-%m}, {method}, {status} are missing from the sales by month"
        for month, method, _model, status in sorted(counted)
    )
    return problems[:limit]


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
    with connection.cursor() as cursor:
        cursor.execute(BATCH_SUMS)
        for pk, merchant, day, *sums in cursor.fetchall():
            stored, paid = [int(v) for v in sums[:4]], [int(v) for v in sums[4:]]
            if stored != paid:
                problems.append(
                    f"settlement batch {pk} (merchant {merchant}, {day}) does not equal its day totals"
                )
        cursor.execute(OVERLAPS)
        problems.extend(
            f"settlement batch {pk} (merchant {merchant}, {day}) pays days an earlier batch paid"
            for pk, merchant, day in cursor.fetchall()
        )
        finished = SettlementRun.objects.filter(status=SettlementRun.Status.DONE).aggregate(
            day=Max("business_date")
        )["day"]
        cursor.execute(UNPAID, [finished or date.min])
        problems.extend(
            f"day total {pk} (merchant {merchant}, {day}) was due on {settle_day} and is not paid"
            for pk, merchant, day, settle_day in cursor.fetchall()
        )
    return problems[:limit]
