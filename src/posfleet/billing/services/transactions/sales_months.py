"""Sales by month at ingest (``billing.SalesMonth``, docs/adr/0036): each accepted sale, approved or
declined, is added to the row of its merchant's agent of the moment, its month, payment method,
terminal model and status (created when there is none). Runs inside the ingest call's transaction,
under the money lock, so no other writer adds to the same rows meanwhile; three statements per batch
at most."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from django.db import connection

from posfleet.billing.models import SalesMonth
from posfleet.platform.bulk import insert_rows
from posfleet.platform.prepared import Prepared

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
    found = _stored(sums.keys())
    if found:
        table = connection.ops.quote_name(SalesMonth._meta.db_table)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {table} SET sales = sales + %s, amount_fen = amount_fen + %s WHERE id = %s",  # noqa: S608
                [(*sums[key], pk) for key, pk in sorted(found.items(), key=lambda kv: kv[1])],
            )
    missing = [key for key in sums if key not in found]
    if missing:
        insert_rows(
            SalesMonth,
            ("agent", "month", "method", "model", "status", "sales", "amount_fen"),
            ((*key, *sums[key]) for key in missing),
        )


# Read by every ingest: compiled once per connection and list lengths (platform/prepared.py).
_STORED = Prepared(
    lambda agents, months: SalesMonth.objects.filter(agent_id__in=agents, month__in=months).values_list(
        "agent_id", "month", "method", "model_id", "status", "pk"
    ),
    agents=[int],
    months=[date],
)


def _stored(keys: Iterable[Key]) -> dict[Key, int]:
    """The rows there are of these keys (a batch spans a few agents and months: one query)."""
    wanted = set(keys)
    agents = {k[0] for k in wanted}
    months = {k[1] for k in wanted}
    rows = _STORED.rows(agents=sorted(agents), months=sorted(months))
    return {key: pk for *rest, pk in rows if (key := tuple(rest)) in wanted}
