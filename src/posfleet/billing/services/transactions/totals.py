"""Day totals at ingest: each accepted approved transaction is added to the total of its merchant, date
and settlement day (created when there is none), and points at it. The settlement day is the date,
or the day after the latest settlement run when that run's day has come already: a run never meets
a new total of its own days, so it pays totals without marking them (``billing.services.settlement``;
ADR 0009). Runs under the money lock, inside the ingest call's transaction, so no run can begin
between reading the latest run and adding to its totals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

from django.db import connection

from posfleet.billing.models import DailyTotal, SettlementRun, TransactionKind, TransactionStatus
from posfleet.platform.bulk import insert_rows
from posfleet.platform.prepared import Prepared

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
    after = first_open_day()
    found = _open(sums, after)
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
            ("merchant", "txn_date", "settle_day", "txn_count", "gross_fen", "refunds_fen", "fees_fen"),
            ((merchant, day, max(day, after), *sums[(merchant, day)]) for merchant, day in missing),
        )
        found.update(_open(dict.fromkeys(missing), after))
    return found


# Read by every ingest: compiled once per connection (and list lengths; platform/prepared.py).
_LATEST_RUN = Prepared(
    lambda: SettlementRun.objects.order_by("-business_date").values_list("business_date")[:1]
)
_OPEN = Prepared(
    lambda merchants, days, after: DailyTotal.objects.filter(
        merchant_id__in=merchants, txn_date__in=days, settle_day__gte=after
    ).values_list("merchant_id", "txn_date", "settle_day", "pk"),
    merchants=[int],
    days=[date],
    after=date,
)


def first_open_day() -> date:
    """The first day no settlement run has begun for: the day after the latest run (runs go in date
    order), or the earliest date when there has been none."""
    latest = _LATEST_RUN.rows()
    return latest[0][0] + timedelta(days=1) if latest else date.min


def _open(keys: Iterable[Day], after: date) -> dict[Day, int]:
    """The unpaid totals of these (merchant, date) pairs: the ones settled on the date, or on
    ``after`` (the first open day) when the date's run has begun."""
    wanted = set(keys)
    merchants = sorted({m for m, _d in wanted})
    days = sorted({d for _m, d in wanted})
    found: dict[Day, int] = {}
    for start in range(0, len(merchants), 5000):
        rows = _OPEN.rows(merchants=merchants[start : start + 5000], days=days, after=after)
        found.update({(m, d): pk for m, d, s, pk in rows if (m, d) in wanted and s == max(d, after)})
    return found
