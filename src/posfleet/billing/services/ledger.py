"""Posting to the double-entry ledger: one balanced journal per money movement, at most once per
reference, entries appended never changed, balances kept in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from posfleet.billing.errors import AlreadyPosted, Unbalanced
from posfleet.billing.models import Account, AccountKind, Entry, Journal, JournalKind
from posfleet.iam.selectors import provider
from posfleet.platform.clock import now


@dataclass(frozen=True)
class Line:
    account: Account
    amount_fen: int  # debit +, credit −


def account_for(organisation_id: int, kind: AccountKind) -> Account:
    account, _created = Account.objects.get_or_create(organisation_id=organisation_id, kind=kind)
    return account


def provider_account(kind: AccountKind) -> Account:
    root = provider()
    if root is None:
        raise RuntimeError("the provider organisation does not exist")
    return account_for(root.pk, kind)


def merchant_account(merchant_organisation_id: int, kind: AccountKind) -> Account:
    return account_for(merchant_organisation_id, kind)


def post(
    *,
    kind: JournalKind,
    reference: str,
    lines: Sequence[Line],
    business_date: date,
    merchant_id: int | None = None,
    memo: str = "",
    reverses: Journal | None = None,
    occurred_at: datetime | None = None,
) -> Journal:
    """Write one balanced journal. Raises ``Unbalanced`` (nothing written) or ``AlreadyPosted`` when a
    journal with ``reference`` exists. Call inside the transaction of the change it accounts for."""
    if not connection.in_atomic_block:
        raise RuntimeError("post() must run inside the transaction of the change")
    merged: dict[int, int] = defaultdict(int)
    accounts: dict[int, Account] = {}
    for line in lines:
        if isinstance(line.amount_fen, bool) or not isinstance(line.amount_fen, int):
            raise TypeError("ledger amounts are int fen")
        merged[line.account.pk] += line.amount_fen
        accounts[line.account.pk] = line.account
    entries = [(pk, amount) for pk, amount in merged.items() if amount != 0]
    if sum(amount for _pk, amount in entries) != 0:
        raise Unbalanced(
            _("Debits and credits differ by %(fen)d fen.") % {"fen": sum(a for _p, a in entries)}
        )
    if len(entries) < 2:
        raise Unbalanced(_("A journal needs at least two non-zero entries."))
    try:
        with transaction.atomic():
            journal = Journal.objects.create(
                kind=kind,
                reference=reference,
                business_date=business_date,
                occurred_at=occurred_at or now(),
                merchant_id=merchant_id,
                memo=memo[:255],
                entry_count=len(entries),
                reverses=reverses,
            )
    except IntegrityError as exc:
        if Journal.objects.filter(reference=reference).exists():
            raise AlreadyPosted(reference=reference) from exc
        raise AlreadyPosted(_("This journal was reversed already."), reference=reference) from exc
    Entry.objects.bulk_create(
        [Entry(journal=journal, account_id=pk, amount_fen=amount) for pk, amount in entries]
    )
    for pk, amount in sorted(entries):  # a fixed order: concurrent posters lock accounts alike
        Account.objects.filter(pk=pk).update(balance_fen=F("balance_fen") + amount)
    return journal


def reverse(*, journal: Journal, memo: str = "", business_date: date | None = None) -> Journal:
    """A correction: a new journal with every entry negated, linked to the original (at most once)."""
    lines = [
        Line(entry.account, -entry.amount_fen)
        for entry in journal.entries.select_related("account").order_by("id")
    ]
    return post(
        kind=JournalKind.CORRECTION,
        reference=f"reversal:{journal.reference}"[:120],
        lines=lines,
        business_date=business_date or now().date(),
        merchant_id=journal.merchant_id,
        memo=memo or f"reverses {journal.reference}",
        reverses=journal,
    )
