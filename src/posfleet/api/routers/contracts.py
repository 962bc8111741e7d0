"""/contracts: the money terms of a terminal, offered to the merchant, accepted by the merchant."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router

from posfleet.api import money_presenters as present
from posfleet.api import money_schemas as m
from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.billing.selectors import contract_for, contracts_visible_to, rate_plans
from posfleet.billing.services.contracts import Terms, contract_accept, contract_offer
from posfleet.fleet.selectors import terminal_for
from posfleet.iam.models import User
from posfleet.platform.context import Actor
from posfleet.platform.errors import ValidationFailed

router = Router(tags=["contracts"])


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


@router.get(
    "/contracts", summary="List service contracts", response=s.responses({200: m.ContractPage}, s.READ_LIST)
)
def contracts_list(
    request: HttpRequest, filters: Query[m.ContractQuery], page: Query[PageQuery]
) -> m.ContractPage:
    """Contracts of the merchants the caller may see, newest first. Filters combine (AND)."""
    qs = contracts_visible_to(_user(request))
    if filters.merchant:
        qs = qs.filter(merchant__mid=filters.merchant)
    if filters.terminal:
        qs = qs.filter(terminal__sn=filters.terminal.strip().upper())
    if filters.status:
        qs = qs.filter(status__in=filters.status)
    rows, cursor = keyset(qs, list_name="contracts", key="id", page=page, descending=True)
    return m.ContractPage(items=[present.contract(c) for c in rows], next_cursor=cursor)


@router.post(
    "/contracts",
    summary="Offer a service contract",
    response=s.responses({201: m.ContractDetailOut}, s.WRITE),
)
def contracts_create(
    request: HttpRequest, body: m.ContractIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Prepare the terms for the terminal's merchant to read before signing (status `offered`):
    the admin, or the agent that signed the merchant."""

    def work(who: Actor) -> Outcome:
        assert who.user is not None
        terminal = terminal_for(who.user, body.terminal)
        if terminal.merchant is None:
            raise ValidationFailed(_("The terminal is not bound to a merchant."), field="terminal")
        plan = rate_plans().filter(code=body.plan).first()
        if plan is None:
            raise ValidationFailed(_("There is no rate plan with this code."), field="plan")
        prices = {k: v for k, v in body.damage_prices.model_dump().items() if v is not None}
        terms = Terms(
            starts_on=body.starts_on,
            term_months=body.term_months,
            annual_fee_fen=body.annual_fee_fen,
            deposit_fen=body.deposit_fen,
            min_term_months=body.min_term_months,
            penalty_rule=body.penalty_rule,
            penalty_fixed_fen=body.penalty_fixed_fen,
            penalty_monthly_fen=body.penalty_monthly_fen,
            penalty_cap_fen=body.penalty_cap_fen,
            recovery_fee_fen=body.recovery_fee_fen,
            recovery_value_fen=body.recovery_value_fen,
            damage_prices=prices,
        )
        offered = contract_offer(
            actor=who, terminal_id=terminal.pk, merchant=terminal.merchant, plan=plan, terms=terms
        )
        return Outcome(201, presenters.dump(present.contract_detail(contract_for(who.user, offered.pk))))

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/contracts/{contract_id}",
    summary="Get a service contract",
    response=s.responses({200: m.ContractDetailOut}, s.READ_ONE),
)
def contract_detail(request: HttpRequest, contract_id: int) -> m.ContractDetailOut:
    """All the money terms, the annual fees due, the deposit, and the penalty if it ended today."""
    return present.contract_detail(contract_for(_user(request), contract_id))


@router.post(
    "/contracts/{contract_id}/accept",
    summary="Accept (sign) a service contract",
    response=s.responses({200: m.ContractDetailOut}, s.WRITE),
)
def contract_accept_create(
    request: HttpRequest, contract_id: int, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """The merchant signs (or the admin for it): the contract starts, its annual fees fall due and its
    deposit is collected (a ledger journal)."""

    def work(who: Actor) -> Outcome:
        assert who.user is not None
        contract = contract_for(who.user, contract_id)
        contract_accept(actor=who, contract=contract)
        return Outcome(200, presenters.dump(present.contract_detail(contract_for(who.user, contract_id))))

    return execute(request, actor(request), work, key=idempotency_key)
