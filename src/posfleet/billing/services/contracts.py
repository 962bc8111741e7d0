"""Service contracts: offered (shown before signing), accepted (fees fall due, the deposit is
collected), and what ending early would cost."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import Case, Value, When
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, record, record_many
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import (
    AccountKind,
    JournalKind,
    PenaltyRule,
    RatePlan,
    ServiceContract,
    ServiceFeeDue,
)
from posfleet.billing.services.deposits import deposit_collect
from posfleet.billing.services.transactions.posting import JournalSpec, accounts, money_lock, post_many
from posfleet.fleet import selectors as fleet
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import Conflict, ValidationFailed

DAMAGE_GRADES = ("A", "B", "C")


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def months_between(start: date, end: date) -> int:
    """Whole months from ``start`` to ``end`` (a month counts once its day-of-month is reached)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day:
        months -= 1
    return max(0, months)


@dataclass(frozen=True)
class Terms:
    starts_on: date
    term_months: int = 12
    annual_fee_fen: int = 0
    deposit_fen: int = 0
    min_term_months: int = 0
    penalty_rule: str = PenaltyRule.NONE
    penalty_fixed_fen: int = 0
    penalty_monthly_fen: int = 0
    penalty_cap_fen: int | None = None
    recovery_fee_fen: int = 0
    recovery_value_fen: int = 0  # credited at closure when the device comes back as new (grade A)
    damage_prices: dict[str, int] | None = None


def check_terms(terms: Terms) -> None:
    amounts = [
        terms.annual_fee_fen,
        terms.deposit_fen,
        terms.penalty_fixed_fen,
        terms.penalty_monthly_fen,
        terms.recovery_fee_fen,
        terms.recovery_value_fen,
        *(terms.damage_prices or {}).values(),
    ]
    if any(not isinstance(a, int) or isinstance(a, bool) or a < 0 for a in amounts):
        raise ValidationFailed(_("Amounts are whole fen and cannot be negative."), field="terms")
    if terms.penalty_cap_fen is not None and terms.penalty_cap_fen < 0:
        raise ValidationFailed(_("Amounts are whole fen and cannot be negative."), field="penalty_cap")
    if not 1 <= terms.term_months <= 60 or terms.term_months % 12:
        raise ValidationFailed(_("The term is 12, 24, 36, 48 or 60 months."), field="term_months")
    if terms.min_term_months > terms.term_months:
        raise ValidationFailed(_("The minimum term cannot exceed the term."), field="min_term_months")
    if terms.penalty_rule not in PenaltyRule.values:
        raise ValidationFailed(_("Unknown penalty rule."), field="penalty_rule")
    if set(terms.damage_prices or {}) - set(DAMAGE_GRADES):
        raise ValidationFailed(_("Damage prices are given for grades A, B and C."), field="damage_prices")


def contract_offer(
    *, actor: Actor, terminal_id: int, merchant, plan: RatePlan, terms: Terms
) -> ServiceContract:
    """Prepare the terms for a merchant to read before signing (status ``offered``)."""
    actor.require("billing.offer_contract", merchant)
    if plan.is_competitor:
        raise ValidationFailed(_("A competitor's plan is for comparison only."), field="plan")
    check_terms(terms)
    with transaction.atomic():
        contract = ServiceContract.objects.create(
            terminal_id=terminal_id,
            merchant=merchant,
            plan=plan,
            starts_on=terms.starts_on,
            term_months=terms.term_months,
            annual_fee_fen=terms.annual_fee_fen,
            deposit_fen=terms.deposit_fen,
            min_term_months=terms.min_term_months,
            penalty_rule=terms.penalty_rule,
            penalty_fixed_fen=terms.penalty_fixed_fen,
            penalty_monthly_fen=terms.penalty_monthly_fen,
            penalty_cap_fen=terms.penalty_cap_fen,
            recovery_fee_fen=terms.recovery_fee_fen,
            recovery_value_fen=terms.recovery_value_fen,
            damage_prices=dict(terms.damage_prices or {}),
        )
        record(
            actor,
            Entry(
                event_type=EventType.CONTRACT_OFFERED,
                subject_type="contract",
                subject_id=str(contract.pk),
                after={
                    "terminal": terminal_id,
                    "merchant": merchant.mid,
                    "plan": plan.code,
                    "annual_fee_fen": terms.annual_fee_fen,
                    "deposit_fen": terms.deposit_fen,
                },
            ),
        )
    return contract


def contract_accept(*, actor: Actor, contract: ServiceContract) -> ServiceContract:
    """The merchant signs: the contract starts, its annual fees fall due, its deposit is collected."""
    actor.require("billing.accept_contract", contract.merchant)
    with transaction.atomic():
        updated = ServiceContract.objects.filter(pk=contract.pk, status=ServiceContract.Status.OFFERED)
        try:
            with transaction.atomic():
                changed = updated.update(status=ServiceContract.Status.ACTIVE, accepted_at=now())
        except IntegrityError as exc:
            raise Conflict(_("This terminal already has a contract in force.")) from exc
        if not changed:
            raise Conflict(_("This contract is not waiting for acceptance."))
        contract.refresh_from_db()
        ServiceFeeDue.objects.bulk_create(
            [
                ServiceFeeDue(
                    contract=contract,
                    period=year + 1,
                    due_on=add_months(contract.starts_on, 12 * year),
                    amount_fen=contract.annual_fee_fen,
                )
                for year in range(contract.term_months // 12)
                if contract.annual_fee_fen
            ]
        )
        record(
            actor,
            Entry(
                event_type=EventType.CONTRACT_ACCEPTED,
                subject_type="contract",
                subject_id=str(contract.pk),
                after={"starts_on": str(contract.starts_on)},
            ),
        )
        if contract.deposit_fen:
            deposit_collect(actor=actor, contract=contract)
    return contract


def penalty_for(contract: ServiceContract, ends_on: date | None = None) -> int:
    """The early-termination penalty if the contract ended on ``ends_on`` (today by default)."""
    ends_on = ends_on or today()
    served = months_between(contract.starts_on, ends_on)
    if served >= contract.min_term_months or contract.penalty_rule == PenaltyRule.NONE:
        return 0
    if contract.penalty_rule == PenaltyRule.FIXED:
        penalty = contract.penalty_fixed_fen
    else:
        penalty = (contract.min_term_months - served) * contract.penalty_monthly_fen
    if contract.penalty_cap_fen is not None:
        penalty = min(penalty, contract.penalty_cap_fen)
    return penalty


def renewal_fee_charge(
    *, actor: Actor, contract: ServiceContract, years: int, on: date
) -> ServiceFeeDue | None:
    """Renewing ``years`` more of service: one more fee due (the contract's next period), charged at
    once — Dr the merchant's fees receivable, Cr fee revenue, reference ``service_fee:<id>`` — and
    deducted from the next settlement like any annual fee. None when the contract has no annual fee."""
    if not 1 <= years <= 5:
        raise ValidationFailed(_("Renew for 1 to 5 years."), field="years")
    amount = contract.annual_fee_fen * years
    if not amount:
        return None
    with transaction.atomic():
        provider_id = money_lock()
        last = ServiceFeeDue.objects.filter(contract=contract).order_by("-period").first()
        fee = ServiceFeeDue.objects.create(
            contract=contract, period=(last.period if last else 0) + 1, due_on=on, amount_fen=amount
        )
        charge_fees_due(actor=actor, fee_ids=[fee.pk], provider_id=provider_id)
    fee.refresh_from_db()
    return fee


def charge_fees_due(*, actor: Actor, fee_ids: list[int], provider_id: int) -> int:
    """Charge the fees due among ``fee_ids`` that have no journal yet: Dr the merchant's fees
    receivable, Cr fee revenue, reference ``service_fee:<id>`` — once each (the journal's unique
    reference and the conditional update of ``journal``), with an audit row each. Runs in the caller's
    transaction, under the money lock (``provider_id``). Returns how many were charged."""
    rows = list(
        ServiceFeeDue.objects.filter(
            pk__in=fee_ids, journal__isnull=True, lapsed_on__isnull=True, amount_fen__gt=0
        )
        .order_by("pk")
        .values_list(
            "pk",
            "amount_fen",
            "due_on",
            "period",
            "contract_id",
            "contract__merchant_id",
            "contract__merchant__organisation_id",
        )
    )
    if not rows:
        return 0
    ids = accounts(
        [(provider_id, AccountKind.FEE_REVENUE)] + [(r[6], AccountKind.FEES_RECEIVABLE) for r in rows]
    )
    revenue = ids[(provider_id, AccountKind.FEE_REVENUE)]
    journals = post_many(
        [
            JournalSpec(
                kind=JournalKind.SERVICE_FEE,
                reference=f"service_fee:{pk}",
                business_date=due_on,
                merchant_id=merchant,
                memo=f"service fee, year {period} of contract {contract}",
                lines=[(ids[(org, AccountKind.FEES_RECEIVABLE)], amount), (revenue, -amount)],
            )
            for pk, amount, due_on, period, contract, merchant, org in rows
        ]
    )
    # One compare-and-set for all of them: each fee takes its journal only while it has none.
    journal_of = Case(*(When(pk=row[0], then=Value(j)) for row, j in zip(rows, journals, strict=True)))
    charged = ServiceFeeDue.objects.filter(pk__in=[row[0] for row in rows], journal__isnull=True)
    if charged.update(journal_id=journal_of) != len(rows):
        raise Conflict(_("This service fee was charged by someone else."))
    record_many(
        actor,
        [
            Entry(
                event_type=EventType.SERVICE_FEE_CHARGED,
                subject_type="service_fee_due",
                subject_id=str(pk),
                after={
                    "amount_fen": amount,
                    "due_on": due_on.isoformat(),
                    "contract": contract,
                    "journal": f"service_fee:{pk}",
                },
            )
            for pk, amount, due_on, _period, contract, _merchant, _org in rows
        ],
    )
    return len(rows)


def contract_transfer(*, actor: Actor, contract: ServiceContract, terminal_id: int) -> ServiceContract:
    """Move an active contract, as it is (plan, fees, fees due, deposit, terms, start), to another
    terminal of the same merchant: the replacement (换机) of its terminal. Compare-and-set on the
    contract's status and terminal; the new terminal must not have an active contract of its own (the
    constraint ``contract_one_active_per_terminal`` decides). Audited as ``contract.transferred``."""
    actor.require("billing.transfer_contract", contract.merchant)
    with transaction.atomic():
        locked = ServiceContract.objects.select_for_update().filter(pk=contract.pk).first()
        if locked is None or locked.status != ServiceContract.Status.ACTIVE:
            raise Conflict(_("Only a contract in force can move to another terminal."))
        if locked.terminal_id == terminal_id:
            raise ValidationFailed(_("The contract is on this terminal already."), field="terminal")
        target = fleet.sn_and_merchant(terminal_id)
        if target is None or target[1] != locked.merchant_id:
            raise ValidationFailed(
                _("A contract can only move to a terminal of the same merchant."), field="terminal"
            )
        previous = (fleet.sn_and_merchant(locked.terminal_id) or ("",))[0]
        try:
            with transaction.atomic():
                moved = ServiceContract.objects.filter(
                    pk=locked.pk, status=ServiceContract.Status.ACTIVE, terminal_id=locked.terminal_id
                ).update(terminal_id=terminal_id)
        except IntegrityError as exc:
            raise Conflict(_("This terminal already has a contract in force.")) from exc
        if moved != 1:
            raise Conflict()
        record(
            actor,
            Entry(
                event_type=EventType.CONTRACT_TRANSFERRED,
                subject_type="contract",
                subject_id=str(locked.pk),
                before={"terminal": previous},
                after={"terminal": target[0]},
            ),
        )
    contract.refresh_from_db()
    return contract
