"""/rate-plans: the catalogue (ours and competitors'), new plans and versions, assignments (admin)."""

from __future__ import annotations

from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from pydantic import Field

from posfleet.api import money_presenters as present
from posfleet.api import money_schemas as m
from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.billing.selectors import plan_assignments_visible_to, rate_plan_for, rate_plans
from posfleet.billing.services.plans import RuleSpec, plan_assign, plan_create, plan_version_add
from posfleet.fleet.selectors import terminal_for
from posfleet.iam.models import User
from posfleet.parties.selectors import merchant_for
from posfleet.platform.context import Actor
from posfleet.platform.errors import ValidationFailed

router = Router(tags=["rate plans"])


class PlanQuery(Schema):
    competitor: bool | None = Field(None, description="true: competitors' plans only; false: ours only.")


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


def _rules(body: m.RulesIn) -> dict[str, RuleSpec]:
    return {r.method: RuleSpec(Decimal(r.rate), r.cap_fen, r.min_fen) for r in body.rules}


@router.get(
    "/rate-plans", summary="List rate plans", response=s.responses({200: m.RatePlanPage}, s.READ_LIST)
)
def rate_plans_list(
    request: HttpRequest, filters: Query[PlanQuery], page: Query[PageQuery]
) -> m.RatePlanPage:
    """Every rate plan with its versions and rules, ours first, in code order within each."""
    actor(request)
    qs = rate_plans()
    if filters.competitor is not None:
        qs = qs.filter(is_competitor=filters.competitor)
    rows, cursor = keyset(qs, list_name="rate-plans", key="code", page=page)
    return m.RatePlanPage(items=[present.rate_plan(p) for p in rows], next_cursor=cursor)


@router.post("/rate-plans", summary="Create a rate plan", response=s.responses({201: m.RatePlanOut}, s.WRITE))
def rate_plans_create(
    request: HttpRequest, body: m.RatePlanIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Create a plan with its first version (admin). A competitor's plan is for the comparison only."""

    def work(who: Actor) -> Outcome:
        plan_create(
            actor=who,
            code=body.code,
            name=body.name,
            rules=_rules(body),
            effective_from=body.effective_from,
            is_competitor=body.is_competitor,
            provider_name=body.provider_name,
            settlement_cycle=body.settlement_cycle,
            d0_surcharge_rate=Decimal(body.d0_surcharge_rate),
            annual_fee_fen=body.annual_fee_fen,
            deposit_fen=body.deposit_fen,
        )
        return Outcome(201, presenters.dump(present.rate_plan(rate_plan_for(body.code))))

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/rate-plans/{code}", summary="Get a rate plan", response=s.responses({200: m.RatePlanOut}, s.READ_ONE)
)
def rate_plan_detail(request: HttpRequest, code: str) -> m.RatePlanOut:
    actor(request)
    return present.rate_plan(rate_plan_for(code))


@router.post(
    "/rate-plans/{code}/versions",
    summary="Add a version of a rate plan",
    response=s.responses({201: m.RatePlanOut}, s.WRITE),
)
def rate_plan_version_create(
    request: HttpRequest,
    code: str,
    body: m.RatePlanVersionIn,
    idempotency_key: IdempotencyKey = None,
) -> HttpResponse:
    """New rates from a date (today or later, after the latest version); earlier fees keep theirs."""

    def work(who: Actor) -> Outcome:
        plan = rate_plan_for(code)
        plan_version_add(
            actor=who,
            plan=plan,
            effective_from=body.effective_from,
            rules=_rules(body),
            settlement_cycle=body.settlement_cycle,
            d0_surcharge_rate=Decimal(body.d0_surcharge_rate),
            note=body.note,
        )
        return Outcome(201, presenters.dump(present.rate_plan(rate_plan_for(code))))

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/rate-plans/{code}/assignments",
    summary="Who is on a rate plan",
    response=s.responses({200: m.PlanAssignmentPage}, s.READ_ONE),
)
def rate_plan_assignments(request: HttpRequest, code: str, page: Query[PageQuery]) -> m.PlanAssignmentPage:
    """Assignments of the plan to merchants (or terminals) the caller may see, newest first."""
    user = _user(request)
    plan = rate_plan_for(code)
    qs = plan_assignments_visible_to(user, plan)
    rows, cursor = keyset(qs, list_name=f"assignments:{plan.code}", key="id", page=page, descending=True)
    return m.PlanAssignmentPage(items=[present.plan_assignment(a) for a in rows], next_cursor=cursor)


@router.post(
    "/rate-plans/{code}/assignments",
    summary="Put a merchant (or terminal) on a rate plan",
    response=s.responses({201: m.PlanAssignmentOut}, s.WRITE),
)
def rate_plan_assignment_create(
    request: HttpRequest,
    code: str,
    body: m.PlanAssignmentIn,
    idempotency_key: IdempotencyKey = None,
) -> HttpResponse:
    """From a date (today or later) the merchant's fees follow this plan; a terminal's own assignment
    wins over its merchant's (admin)."""

    def work(who: Actor) -> Outcome:
        assert who.user is not None
        plan = rate_plan_for(code)
        merchant = merchant_for(who.user, body.merchant)
        terminal_id = None
        if body.terminal is not None:
            terminal = terminal_for(who.user, body.terminal)
            if terminal.merchant_id != merchant.pk:
                raise ValidationFailed(_("The terminal is not bound to this merchant."), field="terminal")
            terminal_id = terminal.pk
        assignment = plan_assign(
            actor=who,
            merchant_id=merchant.pk,
            merchant_mid=merchant.mid,
            plan=plan,
            effective_from=body.effective_from,
            terminal_id=terminal_id,
            d0_settlement=body.d0_settlement,
        )
        assignment.plan, assignment.merchant = plan, merchant
        return Outcome(201, presenters.dump(present.plan_assignment(assignment)))

    return execute(request, actor(request), work, key=idempotency_key)
