"""Money objects as response bodies: fen as integers, with a ``¥1,234.56`` display beside them."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from posfleet.api import money_schemas as m
from posfleet.billing.models import AccountKind, Deposit, JournalKind, PaymentMethod, PenaltyRule
from posfleet.billing.services.contracts import add_months, penalty_for
from posfleet.platform.clock import today
from posfleet.platform.money import format_fen

if TYPE_CHECKING:
    from posfleet.billing.models import (
        Account,
        Entry,
        Journal,
        PlanAssignment,
        RatePlan,
        RatePlanVersion,
        RateRule,
        ServiceContract,
    )
    from posfleet.billing.verify import LedgerReport


def rate_text(rate: Decimal) -> str:
    return f"{Decimal(rate):.6f}"


def rate_percent(rate: Decimal) -> str:
    """0.0048 -> "0.48%", 0.00055 -> "0.055%": at least two decimals, no rounding away of a digit."""
    percent = (Decimal(rate) * 100).normalize()
    places = max(2, -int(percent.as_tuple().exponent))
    return f"{percent:.{places}f}%"


def _maybe(fen: int | None) -> str | None:
    return format_fen(fen) if fen is not None else None


# ---------------------------------------------------------------------------------------------
# Rate plans


def rate_rule(rule: RateRule) -> m.RateRuleOut:
    return m.RateRuleOut(
        method=PaymentMethod(rule.method),
        method_label=str(PaymentMethod(rule.method).label),
        rate=rate_text(rule.rate),
        rate_percent=rate_percent(rule.rate),
        cap_fen=rule.cap_fen,
        min_fen=rule.min_fen,
    )


def _in_force(versions: list[RatePlanVersion]) -> int | None:
    day = today()
    current = [v for v in versions if v.effective_from <= day]
    return max(current, key=lambda v: (v.effective_from, v.number)).pk if current else None


def plan_version(v: RatePlanVersion, in_force: bool) -> m.RatePlanVersionOut:
    return m.RatePlanVersionOut(
        number=v.number,
        effective_from=v.effective_from,
        in_force=in_force,
        settlement_cycle=v.settlement_cycle,  # type: ignore[arg-type]
        d0_surcharge_rate=rate_text(v.d0_surcharge_rate),
        note=v.note,
        rules=[rate_rule(r) for r in v.rules.all()],
    )


def rate_plan(plan: RatePlan) -> m.RatePlanOut:
    versions = sorted(plan.versions.all(), key=lambda v: (v.effective_from, v.number), reverse=True)
    current = _in_force(versions)
    return m.RatePlanOut(
        code=plan.code,
        name=plan.name,
        is_competitor=plan.is_competitor,
        provider_name=plan.provider_name,
        annual_fee_fen=plan.annual_fee_fen,
        deposit_fen=plan.deposit_fen,
        created_at=plan.created_at,
        versions=[plan_version(v, v.pk == current) for v in versions],
    )


def plan_assignment(a: PlanAssignment) -> m.PlanAssignmentOut:
    return m.PlanAssignmentOut(
        id=a.pk,
        plan=a.plan.code,
        merchant=a.merchant.mid,
        terminal=a.terminal.sn if a.terminal is not None else None,
        effective_from=a.effective_from,
        d0_settlement=a.d0_settlement,
        created_at=a.created_at,
    )


# ---------------------------------------------------------------------------------------------
# Contracts and deposits


def deposit(d: Deposit) -> m.DepositOut:
    status = Deposit.Status(d.status)
    return m.DepositOut(
        id=d.pk,
        contract=d.contract_id,
        merchant=d.merchant.mid,
        terminal=d.contract.terminal.sn,
        amount_fen=d.amount_fen,
        amount_display=format_fen(d.amount_fen),
        status=status.value,  # type: ignore[arg-type]
        status_label=str(status.label),
        collected_at=d.collected_at,
        refunded_fen=d.refunded_fen,
        forfeited_fen=d.forfeited_fen,
        released_at=d.released_at,
        release_journal=d.release_journal.reference if d.release_journal is not None else None,
    )


def _contract_fields(c: ServiceContract) -> dict[str, Any]:
    status = c.Status(c.status)
    rule = PenaltyRule(c.penalty_rule)
    return {
        "id": c.pk,
        "status": status.value,
        "status_label": str(status.label),
        "merchant": c.merchant.mid,
        "terminal": c.terminal.sn,
        "plan": c.plan.code,
        "starts_on": c.starts_on,
        "ends_on": add_months(c.starts_on, c.term_months),
        "term_months": c.term_months,
        "annual_fee_fen": c.annual_fee_fen,
        "annual_fee_display": format_fen(c.annual_fee_fen),
        "deposit_fen": c.deposit_fen,
        "deposit_display": format_fen(c.deposit_fen),
        "min_term_months": c.min_term_months,
        "penalty_rule": rule,
        "penalty_rule_label": str(rule.label),
        "penalty_fixed_fen": c.penalty_fixed_fen,
        "penalty_monthly_fen": c.penalty_monthly_fen,
        "penalty_cap_fen": c.penalty_cap_fen,
        "recovery_fee_fen": c.recovery_fee_fen,
        "recovery_value_fen": c.recovery_value_fen,
        "damage_prices": {k: int(v) for k, v in sorted(c.damage_prices.items())},
        "accepted_at": c.accepted_at,
        "ended_on": c.ended_on,
        "created_at": c.created_at,
    }


def contract(c: ServiceContract) -> m.ContractOut:
    return m.ContractOut(**_contract_fields(c))


def contract_detail(c: ServiceContract) -> m.ContractDetailOut:
    fees = [
        m.FeeDueOut(
            period=f.period,
            due_on=f.due_on,
            amount_fen=f.amount_fen,
            amount_display=format_fen(f.amount_fen),
            charged=f.journal_id is not None,
        )
        for f in c.fees_due.all()
    ]
    held: Deposit | None = getattr(c, "deposit", None)
    penalty = penalty_for(c) if c.status == c.Status.ACTIVE else None
    return m.ContractDetailOut(
        **_contract_fields(c),
        fees_due=fees,
        fees_outstanding_fen=sum(f.amount_fen for f in fees if not f.charged),
        deposit=deposit(held) if held is not None else None,
        penalty_if_ended_today_fen=penalty,
        penalty_if_ended_today_display=_maybe(penalty),
    )


# ---------------------------------------------------------------------------------------------
# The ledger


def account(kind: str, found: Account | None) -> m.AccountOut:
    balance = found.natural_balance_fen if found is not None else 0
    return m.AccountOut(
        kind=AccountKind(kind),
        kind_label=str(AccountKind(kind).label),
        balance_fen=balance,
        balance_display=format_fen(balance),
        posted=found is not None,
    )


def _owner(e: Entry) -> str:
    org = e.account.organisation
    for attr, field in (("merchant", "mid"), ("agent", "code")):
        party = getattr(org, attr, None)
        if party is not None:
            return str(getattr(party, field))
    return "provider"


def journal(j: Journal) -> m.JournalOut:
    kind = JournalKind(j.kind)
    return m.JournalOut(
        id=j.pk,
        reference=j.reference,
        kind=kind,
        kind_label=str(kind.label),
        business_date=j.business_date,
        occurred_at=j.occurred_at,
        merchant=j.merchant.mid if j.merchant is not None else None,
        memo=j.memo,
        reverses=j.reverses.reference if j.reverses is not None else None,
        entries=[
            m.EntryOut(
                account=AccountKind(e.account.kind),
                owner=_owner(e),
                amount_fen=e.amount_fen,
                amount_display=format_fen(e.amount_fen),
            )
            for e in j.entries.all()
        ],
    )


def ledger_report(r: LedgerReport) -> m.LedgerReportOut:
    return m.LedgerReportOut(
        ok=r.ok,
        journals=r.journals,
        entries=r.entries,
        accounts=r.accounts,
        total_fen=r.total_fen,
        problems=list(r.problems),
    )
