"""Day totals at ingest: each accepted approved transaction is added to the open total of its merchant
and date (created when there is none), and points at it. Settlement then pays and closes totals, not
transaction rows (``billing.services.settlement``; ADR 0009). Runs under the money lock, inside the
ingest call's transaction, so no other writer can open or close a total meanwhile."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from django.db import connection

from posfleet.billing.models import DailyTotal, TransactionKind, TransactionStatus
from posfleet.platform.bulk import insert_rows

Day = tuple[int, date]  # (merchant id, transaction date)


def add_to_daily_totals(rows: Iterable[tuple[int, date, str, str, int, int]]) -> dict[Day, int]:
    """``rows``: (merchant id, date, kind, status, amount, fee) of the accepted transactions. Adds the
    approved ones to their open day totals and returns the totals' ids by (merchant, date)."""
    sums: dict[Day, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # count, gross, refunds, fees
    for merchant, day, kind, status, amount, fee in rows:
        if status != TransactionStatus.APPROVED:
            continue
        line = sums[(merchant, day)]
        line[0] += 1
        if kind == TransactionKind.SALE:
            line[1] += amount
            line[3] += fee
        else:
            line[2] += amount
            line[3] -= fee
    if not sums:
        return {}
    found = _open(sums)
    if found:
        table = connection.ops.quote_name(DailyTotal._meta.db_table)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {table} SET txn_count = txn_count + %s, gross_fen = gross_fen + %s, "  # noqa: S608
                "refunds_fen = refunds_fen + %s, fees_fen = fees_fen + %s WHERE id = %s",
                [(*sums[key], pk) for key, pk in sorted(found.items(), key=lambda kv: kv[1])],
            )
    missing = sorted(sums.keys() - found.keys())
    if missing:
        insert_rows(
            DailyTotal,
            ("merchant", "txn_date", "txn_count", "gross_fen", "refunds_fen", "fees_fen"),
            ((merchant, day, *sums[(merchant, day)]) for merchant, day in missing),
        )
        found.update(_open(dict.fromkeys(missing)))
    return found


def _open(keys: Iterable[Day]) -> dict[Day, int]:
    """The open (unsettled) totals of these (merchant, date) pairs."""
    wanted = set(keys)
    merchants = sorted({m for m, _d in wanted})
    days = sorted({d for _m, d in wanted})
    found: dict[Day, int] = {}
    for start in range(0, len(merchants), 5000):
        rows = DailyTotal.objects.filter(
            settlement_batch__isnull=True, merchant_id__in=merchants[start : start + 5000], txn_date__in=days
        ).values_list("merchant_id", "txn_date", "pk")
        found.update({(m, d): pk for m, d, pk in rows if (m, d) in wanted})
    return found
