"""Money at closure (注销, DOMAIN.md workflow 4 steps 3, 4, 8 and 9): what a closure quote shows, and the
postings a closure case makes — each at most once, whatever retries or crashes come between:

- ``contract_end``: the contract ends; fees due by then are charged, later ones (and any that waited
  while the terminal was deactivated) lapse, and the early-termination penalty is charged;
- ``closure_charge``: a damage charge (inspection) or the recovery fee (device not returned);
- ``deposit_settle``: the deposit pays what the merchant owes (fees first, then penalties and charges)
  and the rest is refunded; what the deposit cannot cover stays owed (a receivable: a debt that blocks
  re-application). Its journal's reference is the manual release's (``deposit_release:<id>``), so a
  deposit is released once, by one or the other;
- ``closure_credit``: the contract's recovery value for a device returned as new (grade A), credited
  after the deposit: it pays what is still owed (fees, then penalties) and the rest is paid out.

"Once" comes from the database each time: a unique journal reference, a compare-and-set on the row
that changes. A step that runs again after a crash finds its journal and reads back what it did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import transaction
from django.db.models import Max, Sum
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.errors import AlreadyPosted, DepositAlreadyReleased
from posfleet.billing.models import (
    AccountKind,
    DailyTotal,
    Deposit,
    Journal,
    JournalKind,
    PenaltyRule,
    ServiceContract,
    ServiceFeeDue,
    SettlementBatch,
    SettlementRun,
    Transaction,
)
from posfleet.billing.selectors import amounts_owed
from posfleet.billing.services.contracts import charge_fees_due, months_between, penalty_for
from posfleet.billing.services.ledger import Line, merchant_account, post, provider_account
from posfleet.billing.services.transactions.posting import money_lock
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import NotFound, ValidationFailed

CHARGE_KINDS = ("damage", "recovery")


# -- what a quote reads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractFacts:
    contract_id: int
    terminal_id: int
    starts_on: str
    min_term_months: int
    months_served: int
    penalty_rule: str
    penalty_fen: int
    fees_to_charge_fen: int  # due by the closing day, not charged yet: charged at closure
    fees_lapsing_fen: int  # due later (or waiting while deactivated): never charged
    recovery_fee_fen: int
    recovery_value_fen: int  # credited if the device comes back as new (grade A)
    damage_prices: dict[str, int]
    deposit_id: int | None
    deposit_held_fen: int


@dataclass(frozen=True)
class MerchantFacts:
    unsettled_gross_fen: int
    unsettled_refunds_fen: int
    unsettled_fees_fen: int
    fees_owed_fen: int  # charged, not yet paid (deducted from settlements or the deposit)
    penalties_owed_fen: int
    last_settled_day: str | None
    contracts: list[ContractFacts] = field(default_factory=list)

    @property
    def unsettled_net_fen(self) -> int:
        return self.unsettled_gross_fen - self.unsettled_refunds_fen - self.unsettled_fees_fen


@dataclass(frozen=True)
class SetOff:
    """What a deposit does at closure: it pays the fees owed, then the penalties owed, and the rest is
    refunded; what it cannot cover stays owed (the shortfall)."""

    to_fees_fen: int
    to_penalties_fen: int
    refund_fen: int
    shortfall_fen: int

    @property
    def kept_fen(self) -> int:
        """The part of the deposit that does not come back."""
        return self.to_fees_fen + self.to_penalties_fen


def deposit_set_off(deposit_fen: int, fees_owed_fen: int, penalties_owed_fen: int) -> SetOff:
    """The one rule of a deposit at closure (``deposit_settle`` posts it, the closure quote and the
    comparison's cost of leaving foresee it): fees first, then penalties, the rest refunded."""
    to_fees = min(deposit_fen, fees_owed_fen)
    to_penalties = min(deposit_fen - to_fees, penalties_owed_fen)
    return SetOff(
        to_fees_fen=to_fees,
        to_penalties_fen=to_penalties,
        refund_fen=deposit_fen - to_fees - to_penalties,
        shortfall_fen=fees_owed_fen - to_fees + penalties_owed_fen - to_penalties,
    )


@dataclass(frozen=True)
class Leaving:
    """What closing a merchant's terminals on a day would cost it, by the closure quote's rules
    (``closure_facts``: each contract's early-termination penalty; ``deposit_set_off``: what its
    deposit pays and what comes back). ``fees_owed_fen`` and ``penalties_owed_fen`` are owed whether
    the merchant leaves or not (charged and unpaid, and the fees due by that day)."""

    on: date
    contracts: list[ContractFacts]
    penalty_fen: int
    deposit_held_fen: int
    fees_owed_fen: int
    penalties_owed_fen: int
    set_off: SetOff

    @property
    def penalty_from_deposit_fen(self) -> int:
        """The part of the deposit that pays the new penalty — the deposit lost by leaving (the
        penalties owed before are paid first: they are owed anyway)."""
        return max(0, self.set_off.to_penalties_fen - self.penalties_owed_fen)


def leaving_cost(*, merchant_id: int, organisation_id: int, terminal_ids: list[int], on: date) -> Leaving:
    """The cost of closing ``terminal_ids`` of the merchant on ``on``: the same facts as the closure
    quote of those terminals on that day, and the deposit set off against them."""
    facts = closure_facts(
        merchant_id=merchant_id, organisation_id=organisation_id, terminal_ids=terminal_ids, on=on
    )
    penalty = sum(c.penalty_fen for c in facts.contracts)
    fees = facts.fees_owed_fen + sum(c.fees_to_charge_fen for c in facts.contracts)
    deposit = sum(c.deposit_held_fen for c in facts.contracts)
    return Leaving(
        on=on,
        contracts=facts.contracts,
        penalty_fen=penalty,
        deposit_held_fen=deposit,
        fees_owed_fen=fees,
        penalties_owed_fen=facts.penalties_owed_fen,
        set_off=deposit_set_off(deposit, fees, facts.penalties_owed_fen + penalty),
    )


def last_settled_day() -> date | None:
    """The latest business date whose settlement run finished."""
    value = SettlementRun.objects.filter(status=SettlementRun.Status.DONE).aggregate(day=Max("business_date"))
    return value["day"]


def closure_facts(
    *, merchant_id: int, organisation_id: int, terminal_ids: list[int], on: date
) -> MerchantFacts:
    """Everything a closure quote of these terminals of the merchant shows, as of ``on``."""
    settled = last_settled_day()
    totals = DailyTotal.objects.filter(merchant_id=merchant_id)
    if settled is not None:
        totals = totals.filter(settle_day__gt=settled)
    sums = totals.aggregate(g=Sum("gross_fen"), r=Sum("refunds_fen"), f=Sum("fees_fen"))
    fees_owed, penalties_owed = amounts_owed(organisation_id)
    contracts = []
    for contract in ServiceContract.objects.filter(
        terminal_id__in=terminal_ids, merchant_id=merchant_id, status=ServiceContract.Status.ACTIVE
    ).order_by("pk"):
        unpaid = ServiceFeeDue.objects.filter(contract=contract, journal__isnull=True, lapsed_on__isnull=True)
        deposit = Deposit.objects.filter(contract=contract, status=Deposit.Status.HELD).first()
        contracts.append(
            ContractFacts(
                contract_id=contract.pk,
                terminal_id=contract.terminal_id,
                starts_on=contract.starts_on.isoformat(),
                min_term_months=contract.min_term_months,
                months_served=months_between(contract.starts_on, on),
                penalty_rule=contract.penalty_rule,
                penalty_fen=penalty_for(contract, on),
                fees_to_charge_fen=unpaid.filter(due_on__lte=on).aggregate(s=Sum("amount_fen"))["s"] or 0,
                fees_lapsing_fen=unpaid.filter(due_on__gt=on).aggregate(s=Sum("amount_fen"))["s"] or 0,
                recovery_fee_fen=contract.recovery_fee_fen,
                recovery_value_fen=contract.recovery_value_fen,
                damage_prices={k: int(v) for k, v in (contract.damage_prices or {}).items()},
                deposit_id=deposit.pk if deposit else None,
                deposit_held_fen=deposit.amount_fen if deposit else 0,
            )
        )
    return MerchantFacts(
        unsettled_gross_fen=sums["g"] or 0,
        unsettled_refunds_fen=sums["r"] or 0,
        unsettled_fees_fen=sums["f"] or 0,
        fees_owed_fen=fees_owed,
        penalties_owed_fen=penalties_owed,
        last_settled_day=settled.isoformat() if settled else None,
        contracts=contracts,
    )


def final_settlement(*, merchant_id: int, terminal_ids: list[int], stopped_on: date) -> dict[str, Any] | None:
    """The final settlement of the terminals ``terminal_ids`` of a merchant, stopped on ``stopped_on``:
    None while one of their approved sales up to that day waits for its T+1 run (the day's totals it
    is in have not been paid yet); then what was paid to the merchant since that day (the batches:
    evidence for the case) and what is left unsettled of the merchant's — only a non-positive net,
    which waits for sales a closed terminal no longer makes (the closure statement shows it)."""
    settled = last_settled_day()
    sales = Transaction.objects.filter(
        terminal_id__in=terminal_ids, txn_date__lte=stopped_on, daily_total__isnull=False
    )
    if settled is not None:
        sales = sales.filter(daily_total__settle_day__gt=settled)
    if sales.exists() and (settled is None or settled < stopped_on):
        return None
    batches = list(
        SettlementBatch.objects.filter(merchant_id=merchant_id, business_date__gte=stopped_on)
        .order_by("business_date")
        .values("pk", "business_date", "paid_on", "payout_fen", "journal__reference")
    )
    waiting = DailyTotal.objects.filter(merchant_id=merchant_id, txn_date__lte=stopped_on)
    if settled is not None:
        waiting = waiting.filter(settle_day__gt=settled)
    left = waiting.aggregate(g=Sum("gross_fen"), r=Sum("refunds_fen"), f=Sum("fees_fen"))
    return {
        "settled_through": settled.isoformat() if settled else None,
        "batches": [
            {
                "id": b["pk"],
                "date": b["business_date"].isoformat(),
                "paid_on": b["paid_on"].isoformat(),
                "payout_fen": b["payout_fen"],
                "journal": b["journal__reference"],
            }
            for b in batches
        ],
        "paid_fen": sum(b["payout_fen"] for b in batches),
        "unsettled_net_fen": (left["g"] or 0) - (left["r"] or 0) - (left["f"] or 0),
    }


# -- the postings --------------------------------------------------------------------------------------


def _journal_reference(reference: str) -> Journal | None:
    return Journal.objects.filter(reference=reference).first()


def contract_end(*, actor: Actor, contract_id: int, ends_on: date, why: str) -> dict[str, Any]:
    """End the active contract ``contract_id`` on ``ends_on``: charge its fees due by then, lapse the
    rest, charge the early-termination penalty (reference ``closure_penalty:<contract>``). Once: a
    contract already ended answers what was done. Returns the evidence (journal references, sums)."""
    actor.require("billing.end_contract")
    with transaction.atomic():
        provider_id = money_lock()
        contract = ServiceContract.objects.select_for_update().filter(pk=contract_id).first()
        if contract is None:
            raise NotFound()
        penalty_ref = f"closure_penalty:{contract.pk}"
        if contract.status == ServiceContract.Status.ENDED:
            return _ended_evidence(contract, penalty_ref)
        if contract.status != ServiceContract.Status.ACTIVE:
            raise ValidationFailed(_("Only a contract in force can be ended."), field="contract")
        unpaid = ServiceFeeDue.objects.filter(contract=contract, journal__isnull=True, lapsed_on__isnull=True)
        charge_fees_due(
            actor=actor,
            fee_ids=list(unpaid.filter(due_on__lte=ends_on).values_list("pk", flat=True)),
            provider_id=provider_id,
        )
        unpaid.filter(journal__isnull=True).update(lapsed_on=ends_on)
        penalty = penalty_for(contract, ends_on)
        if penalty:
            post(
                kind=JournalKind.PENALTY,
                reference=penalty_ref,
                lines=[
                    Line(
                        merchant_account(contract.merchant.organisation_id, AccountKind.PENALTIES_RECEIVABLE),
                        penalty,
                    ),
                    Line(provider_account(AccountKind.PENALTY_REVENUE), -penalty),
                ],
                business_date=today(),
                merchant_id=contract.merchant_id,
                memo=clean_text(f"early-termination penalty, contract {contract.pk}: {why}", 255),
            )
        ServiceContract.objects.filter(pk=contract.pk, status=ServiceContract.Status.ACTIVE).update(
            status=ServiceContract.Status.ENDED, ended_on=ends_on
        )
        contract.refresh_from_db()
        evidence = _ended_evidence(contract, penalty_ref)
        record(
            actor,
            Entry(
                event_type=EventType.CONTRACT_ENDED,
                subject_type="contract",
                subject_id=str(contract.pk),
                reason="closure",
                note=clean_text(why),
                before={"status": "active"},
                after=evidence,
            ),
        )
    return evidence


def _ended_evidence(contract: ServiceContract, penalty_ref: str) -> dict[str, Any]:
    fees = ServiceFeeDue.objects.filter(contract=contract)
    charged = fees.filter(journal__isnull=False, due_on__lte=contract.ended_on or today())
    penalty = _journal_reference(penalty_ref)
    return {
        "contract": contract.pk,
        "ended_on": contract.ended_on.isoformat() if contract.ended_on else None,
        "fees_charged": [f"service_fee:{pk}" for pk in charged.values_list("pk", flat=True)],
        "fees_charged_fen": charged.aggregate(s=Sum("amount_fen"))["s"] or 0,
        "fees_lapsed_fen": fees.filter(lapsed_on__isnull=False).aggregate(s=Sum("amount_fen"))["s"] or 0,
        "penalty_fen": _debit_of(penalty),
        "penalty_journal": penalty.reference if penalty else None,
        "penalty_rule": contract.penalty_rule if contract.penalty_rule != PenaltyRule.NONE else None,
    }


def _debit_of(journal: Journal | None) -> int:
    if journal is None:
        return 0
    return int(journal.entries.filter(amount_fen__gt=0).aggregate(s=Sum("amount_fen"))["s"] or 0)


def closure_charge(
    *,
    actor: Actor,
    merchant_id: int,
    organisation_id: int,
    kind: str,
    amount_fen: int,
    reference: str,
    memo: str,
) -> dict[str, Any]:
    """Charge the merchant ``amount_fen`` for damage or a device not returned (Dr penalties receivable,
    Cr penalty revenue), once per ``reference``. Returns the evidence (journal reference, amount)."""
    actor.require("billing.end_contract")
    if kind not in CHARGE_KINDS:
        raise ValidationFailed(_("Unknown charge."), field="kind")
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen < 0:
        raise ValidationFailed(_("The charge is a whole, non-negative number of fen."), field="amount")
    if amount_fen == 0:
        return {"journal": None, "amount_fen": 0}
    with transaction.atomic():
        money_lock()
        existing = _journal_reference(reference)
        if existing is not None:
            return {"journal": existing.reference, "amount_fen": _debit_of(existing)}
        org = organisation_id
        journal = post(
            kind=JournalKind.PENALTY,
            reference=reference,
            lines=[
                Line(merchant_account(org, AccountKind.PENALTIES_RECEIVABLE), amount_fen),
                Line(provider_account(AccountKind.PENALTY_REVENUE), -amount_fen),
            ],
            business_date=today(),
            merchant_id=merchant_id,
            memo=clean_text(memo, 255),
        )
        record(
            actor,
            Entry(
                event_type=EventType.PENALTY_CHARGED,
                subject_type="journal",
                subject_id=journal.reference,
                reason=kind,
                after={"amount_fen": amount_fen, "merchant": merchant_id},
            ),
        )
    return {"journal": journal.reference, "amount_fen": amount_fen}


def closure_credit(
    *,
    actor: Actor,
    merchant_id: int,
    organisation_id: int,
    amount_fen: int,
    reference: str,
    memo: str,
) -> dict[str, Any]:
    """Credit the merchant ``amount_fen``: the recovery value of a device returned as new, once per
    ``reference``. Dr the provider's device recovery (an expense); Cr the merchant's fees receivable up
    to the fees it still owes, then its penalties receivable up to the penalties it still owes, and the
    rest Cr bank clearing (paid out to the merchant, as a deposit refund is). A journal with that
    reference answers what it did. Returns the evidence: journal reference, amount, what it paid of the
    fees and of the penalties, what was paid out, and what is still owed after it."""
    actor.require("billing.end_contract")
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen < 0:
        raise ValidationFailed(_("The credit is a whole, non-negative number of fen."), field="amount")
    org = organisation_id
    if amount_fen == 0:
        return _credit_evidence(None, org)
    with transaction.atomic():
        money_lock()
        existing = _journal_reference(reference)
        if existing is not None:
            return _credit_evidence(existing, org)
        fees_owed, penalties_owed = amounts_owed(org)
        to_fees = min(amount_fen, fees_owed)
        to_penalties = min(amount_fen - to_fees, penalties_owed)
        paid_out = amount_fen - to_fees - to_penalties
        lines = [Line(provider_account(AccountKind.DEVICE_RECOVERY), amount_fen)]
        if to_fees:
            lines.append(Line(merchant_account(org, AccountKind.FEES_RECEIVABLE), -to_fees))
        if to_penalties:
            lines.append(Line(merchant_account(org, AccountKind.PENALTIES_RECEIVABLE), -to_penalties))
        if paid_out:
            lines.append(Line(provider_account(AccountKind.BANK_CLEARING), -paid_out))
        journal = post(
            kind=JournalKind.RECOVERY_CREDIT,
            reference=reference,
            lines=lines,
            business_date=today(),
            merchant_id=merchant_id,
            memo=clean_text(memo, 255),
        )
        evidence = _credit_evidence(journal, org)
        record(
            actor,
            Entry(
                event_type=EventType.RECOVERY_CREDITED,
                subject_type="journal",
                subject_id=journal.reference,
                reason="recovery_value",
                after={**evidence, "merchant": merchant_id},
            ),
        )
    return evidence


def _credit_evidence(journal: Journal | None, org: int) -> dict[str, Any]:
    """What the recovery credit ``journal`` did, read from its entries (nothing when None)."""
    paid: dict[str, int] = {
        AccountKind.FEES_RECEIVABLE: 0,
        AccountKind.PENALTIES_RECEIVABLE: 0,
        AccountKind.BANK_CLEARING: 0,
    }
    if journal is not None:
        for kind, amount in journal.entries.values_list("account__kind", "amount_fen"):
            if kind in paid and amount < 0:
                paid[kind] -= amount
    fees_owed, penalties_owed = amounts_owed(org)
    return {
        "journal": journal.reference if journal is not None else None,
        "amount_fen": _debit_of(journal),
        "paid_fees_fen": paid[AccountKind.FEES_RECEIVABLE],
        "paid_penalties_fen": paid[AccountKind.PENALTIES_RECEIVABLE],
        "paid_out_fen": paid[AccountKind.BANK_CLEARING],
        "still_owed_fen": fees_owed + penalties_owed,
    }


def deposit_settle(*, actor: Actor, deposit_id: int, why: str) -> dict[str, Any]:
    """Release the held deposit ``deposit_id`` at closure: it pays the fees and then the penalties the
    merchant owes, and the rest is refunded to the merchant — computed here, never typed. Exactly once:
    a deposit released already (by this or by ``deposit_release``) answers what its release did.
    Returns the evidence: refund, what it paid, the journal, and what is still owed after it."""
    actor.require("billing.end_contract")
    with transaction.atomic():
        money_lock()
        deposit = (
            Deposit.objects.select_for_update(of=("self",))
            .select_related("merchant")
            .filter(pk=deposit_id)
            .first()
        )
        if deposit is None:
            raise NotFound()
        org = deposit.merchant.organisation_id
        if deposit.status != Deposit.Status.HELD:
            return _released_evidence(deposit, org)
        fees_owed, penalties_owed = amounts_owed(org)
        set_off = deposit_set_off(deposit.amount_fen, fees_owed, penalties_owed)
        to_fees, to_penalties, refund = set_off.to_fees_fen, set_off.to_penalties_fen, set_off.refund_fen
        lines = [Line(merchant_account(org, AccountKind.DEPOSIT_HELD), deposit.amount_fen)]
        if to_fees:
            lines.append(Line(merchant_account(org, AccountKind.FEES_RECEIVABLE), -to_fees))
        if to_penalties:
            lines.append(Line(merchant_account(org, AccountKind.PENALTIES_RECEIVABLE), -to_penalties))
        if refund:
            lines.append(Line(provider_account(AccountKind.BANK_CLEARING), -refund))
        at = now()
        try:
            journal = post(
                kind=JournalKind.DEPOSIT_REFUND,
                reference=f"deposit_release:{deposit.pk}",
                lines=lines,
                business_date=today(),
                merchant_id=deposit.merchant_id,
                occurred_at=at,
                memo=clean_text(f"deposit {deposit.pk} at closure: {why}", 255),
            )
        except AlreadyPosted as exc:  # released by someone else first: the row lock makes this rare
            raise DepositAlreadyReleased() from exc
        released = Deposit.objects.filter(pk=deposit.pk, status=Deposit.Status.HELD).update(
            status=Deposit.Status.REFUNDED if refund else Deposit.Status.FORFEITED,
            refunded_fen=refund,
            forfeited_fen=deposit.amount_fen - refund,
            released_at=at,
            release_journal=journal,
        )
        if released != 1:
            raise DepositAlreadyReleased()
        deposit.refresh_from_db()
        evidence = _released_evidence(deposit, org)
        record(
            actor,
            Entry(
                event_type=EventType.DEPOSIT_RELEASED,
                subject_type="deposit",
                subject_id=str(deposit.pk),
                reason="closure",
                note=clean_text(why),
                before={"status": "held"},
                after=evidence,
            ),
        )
    return evidence


def _released_evidence(deposit: Deposit, org: int) -> dict[str, Any]:
    journal = deposit.release_journal
    applied = {"fees": 0, "penalties": 0}
    if journal is not None:
        for entry in journal.entries.select_related("account"):
            if entry.account.kind == AccountKind.FEES_RECEIVABLE:
                applied["fees"] = -entry.amount_fen
            elif entry.account.kind == AccountKind.PENALTIES_RECEIVABLE:
                applied["penalties"] = -entry.amount_fen
    fees_owed, penalties_owed = amounts_owed(org)
    return {
        "deposit": deposit.pk,
        "status": deposit.status,
        "deposit_fen": deposit.amount_fen,
        "refund_fen": deposit.refunded_fen,
        "paid_fees_fen": applied["fees"],
        "paid_penalties_fen": applied["penalties"],
        "journal": journal.reference if journal else None,
        "still_owed_fen": fees_owed + penalties_owed,
    }
