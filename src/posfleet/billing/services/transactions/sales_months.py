"""Sales by month at ingest (``billing.SalesMonth``, docs/adr/0036): each accepted sale, approved or
declined, is added to the row of its merchant's agent of the moment, its month, payment method,
terminal model and status (created when there is none). Runs inside the ingest call's transaction,
under the money lock, so no other writer adds to the same rows meanwhile; one statement per batch
(an upsert that adds, ``platform.bulk.add_rows``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from posfleet.billing.models import SalesMonth
from posfleet.platform.bulk import add_rows

# (agent id, month's first day, method, terminal model id, status)
Key = tuple[int, date, str, int, str]


def add_to_sales_months(sales: Iterable[tuple[int, date, str, int, str, int]]) -> None:
    """``sales``: (merchant's agent id, date, method, terminal model id, status, amount) of the
    accepted sales."""
    sums: dict[Key, list[int]] = defaultdict(lambda: [0, 0])  # sales, amount
    for agent, day, method, model, status, amount in sales:
        line = sums[(agent, day.replace(day=1), method, model, status)]
        line[0] += 1
        line[1] += amount
    if not sums:
        return
    add_rows(
        SalesMonth,
        ("agent", "month", "method", "model", "status", "sales", "amount_fen"),
        ((*key, *line) for key, line in sorted(sums.items())),
        ("agent", "month", "method", "model", "status"),
        ("sales", "amount_fen"),
    )
