"""What ingest works with: a terminal by its TID, a stored transaction, an accepted item; and how the
accepted items' money is booked (one capture and one refund journal per merchant and call)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from posfleet.audit.services import Entry
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import AccountKind, JournalKind, TransactionKind, TransactionStatus
from posfleet.billing.services.transactions.items import TxnIn, TxnResult
from posfleet.billing.services.transactions.posting import (
    JournalSpec,
    accounts,
    post_many,
)
from posfleet.platform.money import to_fen

APPROVED, SALE = TransactionStatus.APPROVED, TransactionKind.SALE


class TerminalRef(NamedTuple):
    id: int
    merchant_id: int
    organisation_id: int
    mid: str
    model_id: int
    agent_id: int  # the merchant's agent


class Stored(NamedTuple):
    """A stored transaction, as much as ingest needs of it."""

    id: int
    terminal_id: int
    merchant_id: int
    tid: str
    batch_no: str
    trace_no: str
    txn_date: date
    occurred_at: datetime
    method: str
    entry_mode: str
    amount_fen: int
    kind: str
    status: str
    card_masked: str
    response_code: str
    external_id: str | None
    original_id: int | None
    fee_fen: int
    plan_version_id: int | None

    def content(self) -> tuple[Any, ...]:
        return (*self[3:17],)


STORED_FIELDS = Stored._fields


@dataclass
class New:
    """An accepted item about to be written."""

    index: int
    item: TxnIn
    terminal: TerminalRef
    fee_fen: int
    plan_version_id: int | None
    original: Stored | New | None = None
    pk: int | None = None  # once written

    @property
    def amount_fen(self) -> int:
        return self.item.amount_fen

    @property
    def kind(self) -> str:
        return self.item.kind

    @property
    def status(self) -> str:
        return self.item.status

    @property
    def merchant_id(self) -> int:
        return self.terminal.merchant_id

    @property
    def tid(self) -> str:
        return self.item.tid

    @property
    def txn_date(self) -> date:
        return self.item.txn_date

    @property
    def id(self) -> int:
        """The row's id once written; before, a stand-in key (negative) for the batch's refund totals."""
        return self.pk if self.pk is not None else -self.index - 1


def book(ingest_id: str, new: list[New], provider: int) -> dict[tuple[int, str], int]:
    """One capture journal (sales) and one refund journal (refunds, reversals) per merchant:
    capture: Dr bank clearing gross, Cr the merchant's settlement payable gross − fee, Cr fee revenue
    fee; refund: the mirror, with the fees given back (``provider``: its organisation's id, from the
    money lock). Returns journal ids by (merchant, kind)."""
    sums: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])  # amount, fee
    latest: dict[tuple[int, str], date] = {}
    terminals: dict[int, TerminalRef] = {}
    for n in new:
        if n.item.status != APPROVED:
            continue
        slot = (n.terminal.merchant_id, journal_kind(n.item.kind))
        sums[slot][0] += n.amount_fen
        sums[slot][1] += n.fee_fen
        latest[slot] = max(latest.get(slot, n.item.txn_date), n.item.txn_date)
        terminals[n.terminal.merchant_id] = n.terminal
    if not sums:
        return {}
    ids = accounts(
        [(provider, AccountKind.BANK_CLEARING), (provider, AccountKind.FEE_REVENUE)]
        + [(t.organisation_id, AccountKind.SETTLEMENT_PAYABLE) for t in terminals.values()]
    )
    bank, revenue = ids[(provider, AccountKind.BANK_CLEARING)], ids[(provider, AccountKind.FEE_REVENUE)]
    specs = []
    slots = sorted(sums)
    for merchant_id, kind in slots:
        amount, fee = sums[(merchant_id, kind)]
        terminal = terminals[merchant_id]
        payable = ids[(terminal.organisation_id, AccountKind.SETTLEMENT_PAYABLE)]
        sign = 1 if kind == JournalKind.CAPTURE else -1
        specs.append(
            JournalSpec(
                kind=JournalKind(kind),
                reference=f"{kind}:{ingest_id}:{terminal.mid}",
                business_date=latest[(merchant_id, kind)],
                merchant_id=merchant_id,
                memo=f"ingest {ingest_id}",
                lines=[
                    (bank, sign * amount),
                    (payable, -sign * (amount - fee)),
                    (revenue, -sign * fee),
                ],
            )
        )
    journals = post_many(specs, new_references=True)  # each reference names this call's ingest id
    return dict(zip(slots, journals, strict=True))


def returned_fee(sale_fee: int, sale_amount: int, refunded: int, returned: int, amount: int) -> int:
    """The fee a refund of ``amount`` gives back: the sale's fee in proportion to what has been refunded
    in all (round half up), less what earlier refunds gave back — so a full refund, in one part or many,
    returns exactly the sale's fee and never more."""
    due = to_fen(Decimal(sale_fee) * (refunded + amount) / Decimal(sale_amount))
    return max(0, min(due, sale_fee) - returned)


def journal_kind(kind: str) -> str:
    return JournalKind.CAPTURE if kind == SALE else JournalKind.REFUND


def audit_entry(
    ingest_id: str,
    received: int,
    results: list[TxnResult | None],
    new: list[New],
    journals: dict[tuple[int, str], int],
) -> Entry:
    """The one audit event of an ingest call that wrote something: counts and sums."""
    done = [r for r in results if r is not None]
    refused_by_code: dict[str, int] = defaultdict(int)
    for r in done:
        if not r.ok:
            refused_by_code[r.code or ""] += 1
    approved = [n for n in new if n.status == APPROVED]
    return Entry(
        event_type=EventType.TRANSACTIONS_INGESTED,
        subject_type="ingest",
        subject_id=ingest_id,
        after={
            "received": received,
            "recorded": len(new),
            "declined": len(new) - len(approved),
            "replayed": sum(1 for r in done if r.ok and r.replayed),
            "refused": sum(refused_by_code.values()),
            "refused_by_code": dict(sorted(refused_by_code.items())),
            "merchants": len({n.merchant_id for n in new}),
            "journals": len(journals),
            "sales_fen": sum(n.amount_fen for n in approved if n.kind == SALE),
            "fees_fen": sum(n.fee_fen for n in approved if n.kind == SALE),
            "refunds_fen": sum(n.amount_fen for n in approved if n.kind != SALE),
            "fees_returned_fen": sum(n.fee_fen for n in approved if n.kind != SALE),
        },
    )
