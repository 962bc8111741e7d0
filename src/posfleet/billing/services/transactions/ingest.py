"""Ingest a batch of transactions: validate each, price it with the plan in force on its date, record
it once, and book the money of the accepted ones — one capture (and one refund) journal per merchant.

A fixed number of queries per batch, whatever its size: the money lock, terminals by TID, stored rows
by natural key or external id, the originals of refunds and what was refunded of them, the terminals'
active periods, the plan book, then one INSERT per kind of row.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum
from django.utils.translation import gettext as _

from posfleet.audit.services import record
from posfleet.billing.errors import NoRatePlan, TerminalNotActive
from posfleet.billing.models import Transaction, TransactionKind, TransactionStatus
from posfleet.billing.natural_keys import EXACT_KEYS, natural_keys
from posfleet.billing.services.plans import PlanBook
from posfleet.billing.services.transactions import items as codes
from posfleet.billing.services.transactions.items import (
    MAX_BATCH,
    Key,
    TxnIn,
    TxnResult,
    check_item,
    refused,
)
from posfleet.billing.services.transactions.posting import money_lock
from posfleet.billing.services.transactions.rows import (
    STORED_FIELDS,
    New,
    Stored,
    TerminalRef,
    audit_entry,
    book,
    journal_kind,
    returned_fee,
)
from posfleet.billing.services.transactions.sales_months import add_to_sales_months
from posfleet.billing.services.transactions.totals import add_to_daily_totals
from posfleet.fleet import selectors as fleet
from posfleet.fleet.selectors import active_periods, was_active
from posfleet.platform.bulk import insert_returning
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import ValidationFailed
from posfleet.platform.prepared import Prepared

APPROVED, SALE = TransactionStatus.APPROVED, TransactionKind.SALE

# The columns ingest writes (``_row`` gives them in this order); the others take their defaults.
_COLUMNS = (
    "terminal",
    "merchant",
    "tid",
    "batch_no",
    "trace_no",
    "txn_date",
    "external_id",
    "occurred_at",
    "kind",
    "status",
    "method",
    "entry_mode",
    "amount_fen",
    "fee_fen",
    "card_masked",
    "response_code",
    "original",
    "plan_version",
    "capture_journal",
    "daily_total",
)
_KEY = ("tid", "batch_no", "trace_no", "txn_date")  # the natural key: the new rows' ids come back by it


def transactions_ingest(*, actor: Actor, items: Sequence[TxnIn]) -> list[TxnResult]:
    """Record up to 10,000 transactions; one result per item, in order.

    Idempotent: an item whose natural key (TID, batch, trace, date) or external id is stored with the
    same content returns the stored result (``replayed``) and changes nothing; the same key with other
    content is refused (``duplicate_key_conflict``). Refused items write nothing; the accepted ones are
    written, with their money, all together.
    """
    actor.require("billing.ingest_transactions")
    if len(items) > MAX_BATCH:
        raise ValidationFailed(
            _("At most %(max)s transactions per batch (got %(n)s).")
            % {"max": f"{MAX_BATCH:,}", "n": len(items)},
            field="items",
        )
    if not items:
        return []
    # Inside a caller's transaction (the gateway's approvals) it is part of it, without a savepoint:
    # an error fails the whole of it.
    with transaction.atomic(savepoint=False):
        return _Ingest(actor, list(items)).run()


class _Ingest:
    def __init__(self, actor: Actor, items: list[TxnIn]) -> None:
        self.actor = actor
        self.items = items
        self.results: list[TxnResult | None] = [None] * len(items)
        self.ingest_id = uuid.uuid4().hex
        self.new: dict[int, New] = {}
        self.new_by_key: dict[Key, New] = {}
        self.new_by_external: dict[str, New] = {}
        self.duplicate_of: dict[int, int] = {}
        self.totals: dict[tuple[int, date], int] = {}

    # -- reading, a fixed number of queries ------------------------------------------------------

    def run(self) -> list[TxnResult]:
        self.provider_id = money_lock()
        valid = []
        for index, item in enumerate(self.items):
            problem = check_item(item)
            if problem is not None:
                self.results[index] = refused(index, *problem)
            else:
                valid.append(index)
        valid = self._dedupe(valid)
        journals: dict[tuple[int, str], int] = {}
        if valid:
            self._load([self.items[i] for i in valid])
            for index in (i for i in valid if self.items[i].kind == SALE):
                self.results[index] = self._decide(index)
            new_sales = [n for n in self.new.values() if n.item.kind == SALE]
            self.new_by_key = {n.item.key: n for n in new_sales}
            self.new_by_external = {n.item.external_id: n for n in new_sales if n.item.external_id}
            for index in (i for i in valid if self.items[i].kind != SALE):
                self.results[index] = self._decide(index)
            if self.new:
                journals = self._write()
        for index, first in self.duplicate_of.items():
            self.results[index] = self._as_duplicate(index, first)
        if self.new:
            record(
                self.actor,
                audit_entry(self.ingest_id, len(self.items), self.results, list(self.new.values()), journals),
            )
        return [r for r in self.results if r is not None]

    def _dedupe(self, valid: list[int]) -> list[int]:
        """Within the batch, a second item with a key (or external id) already seen is a replay of the
        first; it is answered once the first is decided."""
        by_key: dict[Key, int] = {}
        by_external: dict[str, int] = {}
        firsts = []
        for index in valid:
            item = self.items[index]
            seen = by_key.get(item.key)
            if seen is None and item.external_id is not None:
                seen = by_external.get(item.external_id)
            if seen is not None:
                self.duplicate_of[index] = seen
                continue
            by_key[item.key] = index
            if item.external_id is not None:
                by_external[item.external_id] = index
            firsts.append(index)
        return firsts

    def _load(self, items: list[TxnIn]) -> None:
        originals = [i.original for i in items if i.original is not None]
        tids = {i.tid for i in items} | {o[0] for o in originals}
        self.terminals = {tid: TerminalRef(*bound) for tid, bound in fleet.bound_by_tid(tids).items()}
        self.stored_by_key, self.stored_by_external = self._stored(
            [i.key for i in items], [i.external_id for i in items if i.external_id]
        )
        self.originals_by_key, self.originals_by_external = self._stored(
            [tuple(o) for o in originals],  # type: ignore[misc]
            [i.original_external_id for i in items if i.original_external_id],
        )
        original_ids = {r.id for r in self.originals_by_key.values()} | {
            r.id for r in self.originals_by_external.values()
        }
        self.refunded: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # original id -> [amount, fee]
        if original_ids:  # what was already refunded or reversed of these originals (none: no query built)
            refunded = (
                Transaction.objects.filter(original_id__in=original_ids, status=APPROVED)
                .values("original_id")
                .annotate(amount=Sum("amount_fen"), fee=Sum("fee_fen"))
                .values_list("original_id", "amount", "fee")
            )
            for original_id, amount, fee in refunded:
                self.refunded[original_id] = [amount or 0, fee or 0]
        approved = [i for i in items if i.status == APPROVED and i.tid in self.terminals]
        self.periods = (
            active_periods(
                sorted({self.terminals[i.tid].id for i in approved}),
                min(i.occurred_at for i in approved),
                max(i.occurred_at for i in approved),
            )
            if approved
            else {}
        )
        self.book = PlanBook(sorted({t.merchant_id for t in self.terminals.values()}))

    @staticmethod
    def _stored(keys: list[Key], externals: list[str]) -> tuple[dict[Key, Stored], dict[str, Stored]]:
        """Stored rows with these natural keys or external ids (one query, none for none; the key
        filter may be widened, ``_by_keys``, and is narrowed here)."""
        if not keys and not externals:
            return {}, {}
        wanted = set(keys)
        if not externals and len(wanted) <= EXACT_KEYS:
            rows: Iterable[tuple[Any, ...]] = _STORED.rows(keys=sorted(wanted))
        else:
            query = Q(pk__in=[])
            if keys:
                query |= natural_keys(keys)
            if externals:
                query |= Q(external_id__in=set(externals))
            rows = Transaction.objects.filter(query).order_by().values_list(*STORED_FIELDS).iterator()
        by_key: dict[Key, Stored] = {}
        by_external: dict[str, Stored] = {}
        for values in rows:
            row = Stored(*values)
            key = (row.tid, row.batch_no, row.trace_no, row.txn_date)
            if key in wanted:
                by_key[key] = row
            if row.external_id is not None:
                by_external[row.external_id] = row
        return by_key, by_external

    # -- deciding, in memory ---------------------------------------------------------------------

    def _decide(self, index: int) -> TxnResult | None:
        item = self.items[index]
        stored = self.stored_by_key.get(item.key)
        by_external = self.stored_by_external.get(item.external_id) if item.external_id else None
        if stored is not None and by_external is not None and stored.id != by_external.id:
            return self._conflict(index)
        stored = stored or by_external
        if stored is not None:
            original = self._original(item)
            original_id = original.id if isinstance(original, Stored) else None
            if stored.content() != self._content(item, original_id):
                return self._conflict(index)
            return TxnResult(index, True, stored.id, stored.fee_fen, replayed=True)
        terminal = self.terminals.get(item.tid)
        if terminal is None:
            return refused(
                index,
                codes.UNKNOWN_TERMINAL,
                _("No terminal bound to a merchant has the TID %(tid)s.") % {"tid": item.tid},
            )
        approved = item.status == APPROVED
        if approved and not was_active(self.periods.get(terminal.id, []), item.occurred_at):
            return refused(index, TerminalNotActive.code, TerminalNotActive.title)
        if item.kind == SALE:
            return self._sale(index, item, terminal, approved)
        return self._follow_up(index, item, terminal, approved)

    def _sale(self, index: int, item: TxnIn, terminal: TerminalRef, approved: bool) -> TxnResult | None:
        fee, version_id = 0, None
        if approved:
            try:
                quote = self.book.quote(
                    terminal.merchant_id, terminal.id, item.txn_date, item.method, item.amount_fen
                )
            except NoRatePlan:
                return refused(index, NoRatePlan.code, NoRatePlan.title)
            except ValidationFailed as exc:
                return refused(index, codes.NO_RATE_FOR_METHOD, exc.detail)
            fee, version_id = quote.fee_fen, quote.version.pk
        self.new[index] = New(index, item, terminal, fee, version_id)
        return None

    def _follow_up(self, index: int, item: TxnIn, terminal: TerminalRef, approved: bool) -> TxnResult | None:
        original = self._original(item)
        if original is None or original.kind != SALE or original.status != APPROVED:
            return refused(
                index, codes.ORIGINAL_NOT_FOUND, _("The approved sale this refers to was not found.")
            )
        if original.merchant_id != terminal.merchant_id:
            return refused(
                index, codes.ORIGINAL_OTHER_MERCHANT, _("The original sale belongs to another merchant.")
            )
        if item.kind == TransactionKind.REVERSAL:
            if original.tid != item.tid:
                return refused(
                    index, codes.REVERSAL_OTHER_TERMINAL, _("A reversal is made on the sale's terminal.")
                )
            if original.txn_date != item.txn_date:
                return refused(
                    index, codes.REVERSAL_NOT_SAME_DAY, _("A reversal is made on the day of the sale.")
                )
            if original.amount_fen != item.amount_fen:
                return refused(
                    index,
                    codes.REVERSAL_NOT_FULL_AMOUNT,
                    _("A reversal cancels the whole amount of the sale."),
                )
        fee = 0
        if approved:
            done = self.refunded[original.id]
            total = done[0] + item.amount_fen
            if total > original.amount_fen:
                return refused(
                    index,
                    codes.REFUND_EXCEEDS_SALE,
                    _("Refunds would total %(total)s fen, more than the sale's %(amount)s fen.")
                    % {"total": total, "amount": original.amount_fen},
                )
            fee = returned_fee(original.fee_fen, original.amount_fen, done[0], done[1], item.amount_fen)
            done[0], done[1] = total, done[1] + fee
        self.new[index] = New(index, item, terminal, fee, original.plan_version_id, original)
        return None

    def _original(self, item: TxnIn) -> Stored | New | None:
        """The sale a refund names: stored, or accepted earlier in this batch."""
        if item.original is not None:
            key: Key = tuple(item.original)  # type: ignore[assignment]
            return self.originals_by_key.get(key) or self.new_by_key.get(key)
        if item.original_external_id is not None:
            external = item.original_external_id
            return self.originals_by_external.get(external) or self.new_by_external.get(external)
        return None

    def _content(self, item: TxnIn, original_id: int | None) -> tuple[Any, ...]:
        return (
            *item.key,
            item.occurred_at,
            item.method,
            item.entry_mode,
            item.amount_fen,
            item.kind,
            item.status,
            item.card_masked,
            item.response_code,
            item.external_id,
            original_id,
        )

    def _conflict(self, index: int) -> TxnResult:
        return refused(
            index,
            codes.DUPLICATE_KEY_CONFLICT,
            _("A transaction with this key or external id is recorded with different content."),
        )

    def _as_duplicate(self, index: int, first: int) -> TxnResult:
        result = self.results[first]
        assert result is not None
        if self.items[index] != self.items[first]:
            return self._conflict(index)
        if not result.ok:
            return refused(index, result.code or "", result.detail)
        return TxnResult(index, True, result.transaction_id, result.fee_fen, replayed=True)

    # -- writing ---------------------------------------------------------------------------------

    def _write(self) -> dict[tuple[int, str], int]:
        journals = book(self.ingest_id, list(self.new.values()), self.provider_id)
        self.totals = add_to_daily_totals(
            (n.merchant_id, n.txn_date, n.kind, n.status, n.amount_fen, n.fee_fen) for n in self.new.values()
        )
        add_to_sales_months(
            (n.terminal.agent_id, n.txn_date, n.item.method, n.terminal.model_id, n.status, n.amount_fen)
            for n in self.new.values()
            if n.item.kind == SALE
        )
        at = now()
        sales = [n for n in self.new.values() if n.item.kind == SALE]
        follow_ups = [n for n in self.new.values() if n.item.kind != SALE]
        for group in (sales, follow_ups):  # a refund's sale may be one of this batch's
            if not group:
                continue
            written = insert_returning(
                Transaction, _COLUMNS, (self._row(n, journals) for n in group), _KEY, ingested_at=at
            )
            for n in group:
                n.pk = written[n.item.key]
                self.results[n.index] = TxnResult(n.index, True, n.pk, n.fee_fen)
        return journals

    def _row(self, n: New, journals: dict[tuple[int, str], int]) -> tuple[Any, ...]:
        item = n.item
        journal = journals.get((n.merchant_id, journal_kind(item.kind))) if item.status == APPROVED else None
        return (
            n.terminal.id,
            n.merchant_id,
            *item.key,
            item.external_id,
            item.occurred_at,
            item.kind,
            item.status,
            item.method,
            item.entry_mode,
            item.amount_fen,
            n.fee_fen,
            item.card_masked,
            item.response_code,
            n.original.id if n.original is not None else None,
            n.plan_version_id,
            journal,
            self.totals[(n.merchant_id, item.txn_date)] if item.status == APPROVED else None,
        )


# The gateway's groups ask this for every group: compiled once per connection and number of keys.
_STORED = Prepared(
    lambda keys: Transaction.objects.filter(natural_keys(keys)).order_by().values_list(*STORED_FIELDS),
    keys=[(str, str, str, date)],
)
