"""A settlement batch as people read it (结算明细): its sales, refunds and fees, every deduction by the
charge it paid off, and the payout, which is sales − refunds − fees − deductions on every row.

The one read model of a batch: the console's money page and settlement list, the batch detail, the
monthly statement and the API's /settlements all render ``SettlementRow``s made here.

What a batch deducts is taken from the merchant's fees receivable (ADR 0009: ``deducted = min(fees
receivable, net)``), not from a particular fee. Which charges it paid off is read from the ledger: the
charges (debits of fees receivable: a service fee per terminal and contract year, or any other kind
posted there) are paid off first-in first-out by the credits, in the order the ledger recorded them
(journal ids). A deduction the charges do not explain is still shown, as "other", so the items of a
row always sum to what the batch deducted.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.utils.translation import gettext as _

from posfleet.billing.models import AccountKind, Entry, JournalKind, ServiceFeeDue, SettlementBatch

OTHER = "other"  # a deduction no charge in the ledger explains (never expected; shown, not hidden)


@dataclass(frozen=True)
class Deduction:
    """What one settlement kept back of one charge the merchant owed."""

    kind: str  # the charge's journal kind: "service_fee", another kind posted to fees receivable, or OTHER
    charge: str  # the charge's journal reference ("" for OTHER)
    terminal_sn: str  # the terminal a service fee is for ("" otherwise)
    period: int | None  # the contract year of a service fee
    due_on: date | None  # the charge's business date (a service fee's due date)
    amount_fen: int  # the part of the charge this settlement took

    @property
    def label(self) -> str:
        """What it is, in the active language: "Service fee of SN-…, year 2"."""
        if self.kind == JournalKind.SERVICE_FEE and self.terminal_sn:
            return _("Service fee of %(sn)s, year %(period)s") % {
                "sn": self.terminal_sn,
                "period": self.period,
            }
        if self.kind in JournalKind.values:
            return str(JournalKind(self.kind).label).capitalize()
        return _("Other amounts owed")


@dataclass(frozen=True)
class SettlementRow:
    """One settlement batch: the figures it recorded and the deductions that make up what it kept."""

    pk: int
    merchant_id: int
    merchant_mid: str
    merchant_name: str
    business_date: date  # the day of the takings (the run's day)
    paid_on: date
    run_id: int
    txn_count: int
    gross_fen: int  # sales
    refunds_fen: int  # refunds and reversals
    fees_fen: int  # fees on the sales, less those handed back with refunds
    service_fees_fen: int  # kept back for what the merchant owed: the sum of ``deductions``
    payout_fen: int
    deductions: tuple[Deduction, ...]
    journal: str | None  # reference of its ledger journal
    created_at: datetime

    @property
    def deducted_fen(self) -> int:
        return sum(d.amount_fen for d in self.deductions)

    @property
    def adds_up(self) -> bool:
        """Paid out = sales − refunds − fees − deductions, and the deductions are what was kept."""
        return (
            self.payout_fen == self.gross_fen - self.refunds_fen - self.fees_fen - self.service_fees_fen
            and self.deducted_fen == self.service_fees_fen
        )


def settlement_rows(batches: Sequence[SettlementBatch]) -> list[SettlementRow]:
    """``batches`` (already scoped by the caller, with their merchants and journals loaded:
    ``select_related("merchant", "journal")``) as rows, in the same order.
    Two queries however many batches: the fees receivable entries of their merchants, and the service
    fees those entries charged."""
    deductions = _deductions(batches)
    return [
        SettlementRow(
            pk=b.pk,
            merchant_id=b.merchant_id,
            merchant_mid=b.merchant.mid,
            merchant_name=b.merchant.name,
            business_date=b.business_date,
            paid_on=b.paid_on,
            run_id=b.run_id,
            txn_count=b.txn_count,
            gross_fen=b.gross_fen,
            refunds_fen=b.refunds_fen,
            fees_fen=b.fees_fen,
            service_fees_fen=b.service_fees_fen,
            payout_fen=b.payout_fen,
            deductions=deductions.get(b.pk, ()),
            journal=b.journal.reference if b.journal is not None else None,
            created_at=b.created_at,
        )
        for b in batches
    ]


@dataclass
class _Charge:
    journal_id: int
    kind: str
    reference: str
    day: date
    left: int


def _deductions(batches: Sequence[SettlementBatch]) -> dict[int, tuple[Deduction, ...]]:
    """Per batch that kept something back, what it paid off (first in, first out, in ledger order)."""
    keeping = [b for b in batches if b.service_fees_fen > 0]
    if not keeping:
        return {}
    batch_of_journal = {b.journal_id: b for b in keeping if b.journal_id is not None}
    organisations = {b.merchant.organisation_id for b in keeping}
    last = max(batch_of_journal, default=0)
    entries = list(
        Entry.objects.filter(
            account__organisation_id__in=organisations,
            account__kind=AccountKind.FEES_RECEIVABLE,
            journal_id__lte=last,
        )
        .order_by("journal_id", "id")
        .values_list(
            "account__organisation_id",
            "journal_id",
            "journal__kind",
            "journal__reference",
            "journal__business_date",
            "amount_fen",
        )
    )
    charged = [journal for _org, journal, _kind, _ref, _day, amount in entries if amount > 0]
    fees = {
        journal: (sn, period)
        for journal, sn, period in ServiceFeeDue.objects.filter(journal_id__in=charged).values_list(
            "journal_id", "contract__terminal__sn", "period"
        )
    }
    open_charges: dict[int, deque[_Charge]] = defaultdict(deque)
    found: dict[int, list[Deduction]] = {}
    for org, journal, kind, reference, day, amount in entries:
        if amount > 0:
            open_charges[org].append(_Charge(journal, kind, reference, day, amount))
            continue
        batch = batch_of_journal.get(journal)
        items = _pay_off(open_charges[org], -amount, fees)
        if batch is not None:
            found[batch.pk] = items
    result: dict[int, tuple[Deduction, ...]] = {}
    for b in keeping:
        items = found.get(b.pk, [])
        unexplained = b.service_fees_fen - sum(d.amount_fen for d in items)
        if unexplained:
            items = [*items, Deduction(OTHER, "", "", None, None, unexplained)]
        result[b.pk] = tuple(items)
    return result


def _pay_off(charges: deque[_Charge], amount: int, fees: dict[int, tuple[str, int]]) -> list[Deduction]:
    """Take ``amount`` off the oldest open charges; what each of them gave."""
    items: list[Deduction] = []
    while amount > 0 and charges:
        charge = charges[0]
        part = min(amount, charge.left)
        sn, period = fees.get(charge.journal_id, ("", None))
        items.append(Deduction(charge.kind, charge.reference, sn, period, charge.day, part))
        charge.left -= part
        amount -= part
        if charge.left == 0:
            charges.popleft()
    return items
