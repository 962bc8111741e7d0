"""Deposits: collected when the contract is accepted, held, then released once — refunded in whole or
in part, the rest forfeited. "Once" is kept by the database: the release is a conditional UPDATE of a
`held` row in the same transaction as its journal (whose reference is unique), so of many concurrent
attempts exactly one succeeds and the others get ``deposit_already_refunded`` (409)."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.errors import AlreadyPosted, DepositAlreadyReleased
from posfleet.billing.models import AccountKind, Deposit, JournalKind, ServiceContract
from posfleet.billing.services.ledger import Line, merchant_account, post, provider_account
from posfleet.iam.stepup import require_fresh_step_up
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import NotFound, ValidationFailed


def deposit_collect(*, actor: Actor, contract: ServiceContract) -> Deposit:
    """Record the deposit paid for ``contract`` (Dr bank clearing, Cr the merchant's deposit held)."""
    if contract.deposit_fen <= 0:
        raise ValidationFailed(_("This contract asks for no deposit."))
    org = contract.merchant.organisation_id
    at = now()
    with transaction.atomic():
        journal = post(
            kind=JournalKind.DEPOSIT_COLLECT,
            reference=f"deposit_collect:{contract.pk}",
            lines=[
                Line(provider_account(AccountKind.BANK_CLEARING), contract.deposit_fen),
                Line(merchant_account(org, AccountKind.DEPOSIT_HELD), -contract.deposit_fen),
            ],
            business_date=today(),
            merchant_id=contract.merchant_id,
            memo=f"deposit for contract {contract.pk}",
            occurred_at=at,
        )
        deposit = Deposit.objects.create(
            contract=contract,
            merchant_id=contract.merchant_id,
            amount_fen=contract.deposit_fen,
            collected_at=at,
            collect_journal=journal,
        )
        record(
            actor,
            Entry(
                event_type=EventType.DEPOSIT_COLLECTED,
                subject_type="deposit",
                subject_id=str(deposit.pk),
                after={"amount_fen": deposit.amount_fen, "contract": contract.pk},
            ),
        )
    return deposit


def deposit_release(
    *, actor: Actor, deposit_id: int, refund_fen: int, reason: str, note: str = ""
) -> Deposit:
    """Refund ``refund_fen`` of the deposit and forfeit the rest, exactly once.

    Dr deposit held (all of it); Cr bank clearing (the refund, paid out); Cr penalty revenue (forfeit).
    Needs a fresh step-up (a refund is destructive) and the reviewer or admin role.
    """
    actor.require("billing.release_deposit")
    if isinstance(refund_fen, bool) or not isinstance(refund_fen, int) or refund_fen < 0:
        raise ValidationFailed(_("The refund is a whole, non-negative number of fen."), field="refund")
    if not reason.strip():
        raise ValidationFailed(
            _("Say why (e.g. contract closed, device returned in good order)."), field="reason"
        )
    require_fresh_step_up(actor)
    with transaction.atomic():
        # Lock the row (PostgreSQL: a concurrent release waits here, then sees it is no longer held).
        deposit = (
            Deposit.objects.select_for_update(of=("self",))
            .select_related("merchant")
            .filter(pk=deposit_id)
            .first()
        )
        if deposit is None:
            raise NotFound()
        if refund_fen > deposit.amount_fen:
            raise ValidationFailed(_("The refund cannot exceed the deposit."), field="refund")
        if deposit.status != Deposit.Status.HELD:
            raise DepositAlreadyReleased()
        forfeit = deposit.amount_fen - refund_fen
        org = deposit.merchant.organisation_id
        lines = [Line(merchant_account(org, AccountKind.DEPOSIT_HELD), deposit.amount_fen)]
        if refund_fen:
            lines.append(Line(provider_account(AccountKind.BANK_CLEARING), -refund_fen))
        if forfeit:
            lines.append(Line(provider_account(AccountKind.PENALTY_REVENUE), -forfeit))
        at = now()
        try:
            journal = post(
                kind=JournalKind.DEPOSIT_REFUND,
                reference=f"deposit_release:{deposit.pk}",
                lines=lines,
                business_date=today(),
                merchant_id=deposit.merchant_id,
                occurred_at=at,
                memo=clean_text(f"deposit {deposit.pk}: {reason}", 255),
            )
        except AlreadyPosted as exc:  # the unique journal reference: released by someone else first
            raise DepositAlreadyReleased() from exc
        released = Deposit.objects.filter(pk=deposit.pk, status=Deposit.Status.HELD).update(
            status=Deposit.Status.REFUNDED if refund_fen else Deposit.Status.FORFEITED,
            refunded_fen=refund_fen,
            forfeited_fen=forfeit,
            released_at=at,
            release_journal=journal,
        )
        if released != 1:  # someone released it between our read and our write: undo everything
            raise DepositAlreadyReleased()
        record(
            actor,
            Entry(
                event_type=EventType.DEPOSIT_RELEASED,
                subject_type="deposit",
                subject_id=str(deposit.pk),
                reason=reason[:48],
                note=clean_text(note),
                before={"status": "held"},
                after={"refunded_fen": refund_fen, "forfeited_fen": forfeit, "journal": journal.reference},
            ),
        )
        deposit.refresh_from_db()
    return deposit
