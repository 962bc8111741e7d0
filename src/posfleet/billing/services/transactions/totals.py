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

from posfleet.billing.models import DailyTotal, SettlementRun, TransactionKind, TransactionStatus
from posfleet.platform.bulk import add_rows
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
    added = add_rows(
        DailyTotal,
        ("merchant", "txn_date", "settle_day", "txn_count", "gross_fen", "refunds_fen", "fees_fen"),
        ((merchant, day, max(day, after), *line) for (merchant, day), line in sorted(sums.items())),
        ("merchant", "txn_date", "settle_day"),
        ("txn_count", "gross_fen", "refunds_fen", "fees_fen"),
    )
    return {(merchant, day): pk for (merchant, day, _settle_day), pk in added.items()}


# Read by every ingest: compiled once per connection (and list lengths; platform/prepared.py).
_LATEST_RUN = Prepared(
    lambda: SettlementRun.objects.order_by("-business_date").values_list("business_date")[:1]
)


def first_open_day() -> date:
    """The first day no settlement run has begun for: the day after the latest run (runs go in date
    order), or the earliest date when there has been none."""
    latest = _LATEST_RUN.rows()
    return latest[0][0] + timedelta(days=1) if latest else date.min
