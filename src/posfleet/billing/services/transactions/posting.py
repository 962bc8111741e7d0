"""Posting many journals at once, for the bulk writers (transaction ingest, settlement).

``billing.services.ledger.post`` writes one journal with about five statements; ingest and settlement
write hundreds or thousands per call (one per merchant), so they use ``post_many``: the same checks
(int fen, non-zero entries merged per account, every journal balanced with at least two entries, one
journal per reference) and the same rows, written with one INSERT for the journals, one for the
entries and one UPDATE of the balances. The database's own guards (migration 0002: balance trigger,
append-only) check these rows exactly as they check ``post``'s.

Concurrency: every bulk writer first locks the provider's organisation row (``money_lock``), so
on PostgreSQL ingests and settlement chunks queue up one behind the other and never deadlock
(every one of them takes that lock first); on SQLite the IMMEDIATE transaction does the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from posfleet.billing.errors import AlreadyPosted, Unbalanced
from posfleet.billing.models import Account, Entry, Journal, JournalKind
from posfleet.iam.selectors import provider, provider_locked
from posfleet.platform.bulk import insert_returning, insert_rows
from posfleet.platform.clock import now
from posfleet.platform.prepared import Prepared


@dataclass
class JournalSpec:
    kind: JournalKind
    reference: str
    business_date: date
    merchant_id: int | None = None
    memo: str = ""
    # (account id, amount in fen; debit +, credit −); several lines on one account are merged.
    lines: list[tuple[int, int]] = field(default_factory=list)


def provider_organisation_id() -> int:
    root = provider()
    if root is None:
        raise RuntimeError("the provider organisation does not exist")
    return root.pk


def accounts(pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Account ids for ``(organisation id, kind)`` pairs, creating the missing ones (two queries)."""
    wanted = set(pairs)
    if not wanted:
        return {}
    orgs = {org for org, _kind in wanted}
    kinds = {kind for _org, kind in wanted}

    def load() -> dict[tuple[int, str], int]:
        rows = _ACCOUNTS.rows(orgs=sorted(orgs), kinds=sorted(kinds))
        return {(org, kind): pk for pk, org, kind in rows if (org, kind) in wanted}

    found = load()
    missing = wanted - found.keys()
    if missing:
        Account.objects.bulk_create(
            [Account(organisation_id=org, kind=kind) for org, kind in sorted(missing)], ignore_conflicts=True
        )
        found = load()
    return found


# Read by every ingest (and settlement chunk): compiled once per connection and list lengths.
_ACCOUNTS = Prepared(
    lambda orgs, kinds: Account.objects.filter(organisation_id__in=orgs, kind__in=kinds).values_list(
        "pk", "organisation_id", "kind"
    ),
    orgs=[int],
    kinds=[str],
)


def money_lock() -> int:
    """Lock the provider's organisation row for this transaction; returns its id.

    Every writer of ingest or settlement money takes this lock first, so on PostgreSQL they run one at
    a time, see each other's committed rows, and never wait for one another in a cycle. (SQLite's
    IMMEDIATE transactions serialise writers already.) Locking takes no write: a refused batch
    leaves no trace.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("money_lock() is taken inside a transaction")
    root = provider_locked()
    if root is None:
        raise RuntimeError("the provider organisation does not exist")
    return root


def post_many(
    specs: Sequence[JournalSpec], *, occurred_at: datetime | None = None, new_references: bool = False
) -> list[int]:
    """Write balanced journals, all or nothing; returns their ids in the order of ``specs``. Raises
    ``Unbalanced`` before writing anything, or ``AlreadyPosted`` when a reference exists (the caller's
    transaction must then roll back). ``new_references``: the caller made every reference unique
    itself (ingest: a fresh random id in each), so a clash can only be a bug; the database's unique
    constraint then fails the caller's transaction as it is, without the savepoint that turns a clash
    into ``AlreadyPosted`` (two round trips fewer for every group of the gateway's approvals)."""
    if not connection.in_atomic_block:
        raise RuntimeError("post_many() must run inside the transaction of the change")
    prepared: list[tuple[JournalSpec, list[tuple[int, int]]]] = []
    deltas: dict[int, int] = defaultdict(int)
    for spec in specs:
        merged: dict[int, int] = defaultdict(int)
        for account_id, amount in spec.lines:
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise TypeError("ledger amounts are int fen")
            merged[account_id] += amount
        entries = [(pk, amount) for pk, amount in merged.items() if amount != 0]
        total = sum(amount for _pk, amount in entries)
        if total != 0:
            raise Unbalanced(_("Debits and credits differ by %(fen)d fen.") % {"fen": total})
        if len(entries) < 2:
            raise Unbalanced(_("A journal needs at least two non-zero entries."))
        prepared.append((spec, entries))
        for pk, amount in entries:
            deltas[pk] += amount
    if not prepared:
        return []
    at = occurred_at or now()
    references = [spec.reference for spec, _entries in prepared]
    varying = ("kind", "reference", "business_date", "merchant", "memo", "entry_count")
    rows = [
        (spec.kind, spec.reference, spec.business_date, spec.merchant_id, spec.memo[:255], len(entries))
        for spec, entries in prepared
    ]
    try:
        with transaction.atomic(savepoint=not new_references):
            written = insert_returning(Journal, varying, rows, ("reference",), occurred_at=at)
    except IntegrityError as exc:
        if new_references:
            raise
        taken = Journal.objects.filter(reference__in=references[:5000]).values_list("reference", flat=True)
        raise AlreadyPosted(reference=taken.first() or "") from exc
    journal_ids = [written[(reference,)] for reference in references]
    insert_rows(
        Entry,
        ("journal", "account", "amount_fen"),
        (
            (journal_id, pk, amount)
            for journal_id, (_spec, entries) in zip(journal_ids, prepared, strict=True)
            for pk, amount in entries
        ),
    )
    move_balances(deltas)
    return journal_ids


def move_balances(deltas: dict[int, int]) -> None:
    """``balance += delta`` for every account, in id order, with one statement: an UPDATE joined to
    the deltas (``unnest`` of two arrays on PostgreSQL, a VALUES list on SQLite), not one UPDATE per
    account (10,000 round trips in a settlement run)."""
    moving = [(pk, d) for pk, d in sorted(deltas.items()) if d != 0]
    if not moving:
        return
    table = connection.ops.quote_name(Account._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS a SET balance_fen = a.balance_fen + d.delta "  # noqa: S608
                "FROM unnest(%s::bigint[], %s::bigint[]) AS d(id, delta) WHERE a.id = d.id",
                [[pk for pk, _d in moving], [d for _pk, d in moving]],
            )
            return
        for start in range(0, len(moving), 5000):  # SQLite: at most 32,766 parameters a statement
            part = moving[start : start + 5000]
            values = ", ".join(["(%s, %s)"] * len(part))
            cursor.execute(
                f"WITH d(id, delta) AS (VALUES {values}) "  # noqa: S608
                f"UPDATE {table} SET balance_fen = balance_fen + d.delta FROM d WHERE {table}.id = d.id",
                [value for row in part for value in row],
            )
