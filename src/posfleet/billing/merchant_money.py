"""What a merchant's home reads of its money and its terminals' takings (``reports.merchant_home``):
the balances it owes and holds, and each terminal's last transaction in a shopkeeper's words. Public to
the read models above billing, which do not read its models directly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, Subquery

from posfleet.billing.models import AccountKind, Transaction, TransactionKind, TransactionStatus
from posfleet.billing.selectors import balances_of


@dataclass(frozen=True)
class MerchantBalances:
    owed_fen: int  # service fees charged, not yet kept back from a payout
    penalties_fen: int
    deposit_fen: int


def merchant_balances(organisation_id: int) -> MerchantBalances:
    balances = balances_of(organisation_id)
    return MerchantBalances(
        owed_fen=max(0, balances[AccountKind.FEES_RECEIVABLE]),
        penalties_fen=max(0, balances[AccountKind.PENALTIES_RECEIVABLE]),
        deposit_fen=balances[AccountKind.DEPOSIT_HELD],
    )


def last_transaction_annotations() -> dict[str, Any]:
    """Annotations of a terminal queryset with its last transaction for its current merchant:
    ``last_at``, ``last_fen``, ``last_kind``, ``last_status`` (the index on terminal and time: one
    look-up per row). A refurbished device's earlier merchants' sales are not its merchant's."""
    last = Transaction.objects.filter(
        terminal_id=OuterRef("pk"), merchant_id=OuterRef("merchant_id")
    ).order_by("-occurred_at", "-id")
    return {
        "last_at": Subquery(last.values("occurred_at")[:1]),
        "last_fen": Subquery(last.values("amount_fen")[:1]),
        "last_kind": Subquery(last.values("kind")[:1]),
        "last_status": Subquery(last.values("status")[:1]),
    }


def transaction_note(kind: str | None, status: str | None) -> str:
    """What the last transaction was when it was not an approved sale (``""`` otherwise)."""
    if kind is None or (kind == TransactionKind.SALE and status == TransactionStatus.APPROVED):
        return ""
    if status == TransactionStatus.DECLINED:
        return str(TransactionStatus.DECLINED.label)
    return str(TransactionKind(kind).label) if kind in TransactionKind.values else kind
