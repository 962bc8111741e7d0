"""Money builders for tests: the standard plan on a merchant, a contract with a deposit, accounts."""

from __future__ import annotations

from datetime import date

from posfleet.billing.defaults import ensure_standard_plan
from posfleet.billing.models import Account, AccountKind, RatePlan, ServiceContract
from posfleet.billing.services.contracts import Terms, contract_accept, contract_offer
from posfleet.billing.services.plans import plan_assign
from posfleet.fleet.models import Terminal
from posfleet.parties.models import Merchant
from posfleet.testing.personas import SYSTEM

LONG_AGO = date(2024, 1, 1)


def standard_plan() -> RatePlan:
    return ensure_standard_plan()


def on_standard_plan(merchant: Merchant, since: date = LONG_AGO) -> None:
    plan_assign(
        actor=SYSTEM,
        merchant_id=merchant.pk,
        merchant_mid=merchant.mid,
        plan=standard_plan(),
        effective_from=since,
    )


def signed_contract(
    terminal: Terminal,
    *,
    deposit_fen: int = 29900,
    annual_fee_fen: int = 9900,
    starts_on: date = LONG_AGO,
    **terms: object,
) -> ServiceContract:
    assert terminal.merchant is not None
    contract = contract_offer(
        actor=SYSTEM,
        terminal_id=terminal.pk,
        merchant=terminal.merchant,
        plan=standard_plan(),
        terms=Terms(starts_on=starts_on, deposit_fen=deposit_fen, annual_fee_fen=annual_fee_fen, **terms),  # type: ignore[arg-type]
    )
    return contract_accept(actor=SYSTEM, contract=contract)


def balance(organisation_id: int, kind: AccountKind) -> int:
    """An account's natural balance in fen (0 when it does not exist yet)."""
    account = Account.objects.filter(organisation_id=organisation_id, kind=kind).first()
    return account.natural_balance_fen if account else 0
