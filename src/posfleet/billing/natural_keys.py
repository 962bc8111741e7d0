"""The acquirer's natural key of a transaction — (TID, batch, trace, date), unique — and the look-ups
by it: ingest's idempotency check and the gateway's duplicate check (``94``)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Collection, Iterable
from datetime import date

from django.db.models import Q

from posfleet.billing.models import Transaction
from posfleet.platform.prepared import Prepared

# Up to this many natural keys are looked up one by one, each through the natural key's unique index
# (an OR of exact keys: SQLite's OR-by-union, PostgreSQL's BitmapOr), so a busy terminal's earlier
# sales of the day are not read again for every new one (the gateway posts a few at a time, all day).
# A larger feed reads its TIDs × dates instead (the unique index's first two columns): about the rows
# it brings anyway, and no SQL expression as deep as the feed is long. A size class of ``Prepared``'s
# lists (a power of two), so that a list padded to its class is still looked up exactly.
EXACT_KEYS = 128
NaturalKey = tuple[str, str, str, date]  # (tid, batch_no, trace_no, txn_date): the acquirer's key


def natural_keys(keys: Iterable[NaturalKey]) -> Q:
    """Transactions that may have these natural keys: exactly those (up to ``EXACT_KEYS``), or their
    dates × their TIDs, narrowed by the caller. Not IN lists of batches and traces too: the planner
    would probe their cross product."""
    distinct = set(keys)
    if len(distinct) <= EXACT_KEYS:
        exact = (
            Q(tid=tid, batch_no=batch, trace_no=trace, txn_date=day) for tid, batch, trace, day in distinct
        )
        return functools.reduce(operator.or_, exact, Q(pk__in=[]))
    return Q(txn_date__in={k[3] for k in distinct}, tid__in={k[0] for k in distinct})


# Asked for every sale the gateway receives: compiled once per connection and size of list.
_RECORDED = Prepared(
    lambda keys: (
        Transaction.objects.filter(natural_keys(keys))
        .order_by()
        .values_list("pk", "tid", "batch_no", "trace_no", "txn_date")
    ),
    keys=[(str, str, str, date)],
)


def transactions_recorded(keys: Collection[NaturalKey]) -> dict[NaturalKey, int]:
    """The ids of the transactions recorded under these natural keys (TID, batch, trace, date); a key
    that is free is not in the answer (the gateway's ``94`` when it is taken). One query."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = (
        _RECORDED.rows(keys=list(wanted)) if len(wanted) <= EXACT_KEYS else _RECORDED.build(keys=list(wanted))
    )
    found = {(tid, batch, trace, day): pk for pk, tid, batch, trace, day in rows}
    return {key: pk for key, pk in found.items() if key in wanted}
