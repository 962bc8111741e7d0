"""/plan-change-requests: a merchant (or its agent) asks to move to one of our plans; the admin approves
(the plan is assigned from that day through the plan assignment service) or rejects with a reason; the
requester's side withdraws. Scoped like the merchant's money: another's request is 404 (ADR 0027)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router

from posfleet.api import plan_change_schemas as pc
from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.billing.models import PlanChangeRequest
from posfleet.billing.plan_change_states import PlanChangeStatus
from posfleet.billing.selectors import plan_change_for, plan_change_requests_visible_to, rate_plans
from posfleet.billing.services.plan_changes import plan_change_decide, plan_change_request
from posfleet.iam.models import User
from posfleet.parties.selectors import merchant_for
from posfleet.platform.context import Actor
from posfleet.platform.errors import ValidationFailed

router = Router(tags=["plan change requests"])


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


def present(r: PlanChangeRequest) -> pc.PlanChangeOut:
    return pc.PlanChangeOut(
        id=r.pk,
        merchant=r.merchant.mid,
        from_plan=r.from_plan.code if r.from_plan is not None else None,
        to_plan=r.to_plan.code,
        effective_from=r.effective_from,
        applies_from=r.assignment.effective_from if r.assignment is not None else None,
        status=r.status,  # type: ignore[arg-type]
        status_label=str(PlanChangeStatus(r.status).label),
        note=r.note,
        requested_by=r.requested_by.get_username(),
        requested_at=r.requested_at,
        decided_by=r.decided_by.get_username() if r.decided_by is not None else None,
        decided_at=r.decided_at,
        reason=r.reason,
    )


@router.get(
    "/plan-change-requests",
    summary="List plan change requests",
    response=s.responses({200: pc.PlanChangePage}, s.READ_LIST),
)
def plan_changes_list(
    request: HttpRequest, filters: Query[pc.PlanChangeQuery], page: Query[PageQuery]
) -> pc.PlanChangePage:
    """The requests of the merchants the caller may see, newest first. Filters combine (AND)."""
    qs = plan_change_requests_visible_to(_user(request))
    if filters.merchant:
        qs = qs.filter(merchant__mid=filters.merchant.strip().upper())
    if filters.status:
        qs = qs.filter(status=filters.status)
    rows, cursor = keyset(qs, list_name="plan-change-requests", key="id", page=page, descending=True)
    return pc.PlanChangePage(items=[present(r) for r in rows], next_cursor=cursor)


@router.post(
    "/plan-change-requests",
    summary="Ask to move a merchant to another of our rate plans",
    response=s.responses({201: pc.PlanChangeOut}, s.WRITE),
)
def plan_changes_create(
    request: HttpRequest, body: pc.PlanChangeIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """The merchant, or the agent that signed it, asks for `to_plan` from `effective_from`; the admin
    decides. One request of a merchant waits at a time (409 `plan_change_waiting`)."""

    def work(who: Actor) -> Outcome:
        assert who.user is not None
        merchant = merchant_for(who.user, body.merchant)
        plan = rate_plans().filter(code=body.to_plan).first()
        if plan is None:
            raise ValidationFailed(_("There is no rate plan with this code."), field="to_plan")
        made = plan_change_request(
            actor=who, merchant=merchant, to_plan=plan, effective_from=body.effective_from, note=body.note
        )
        return Outcome(201, presenters.dump(present(plan_change_for(who.user, made.pk))))

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/plan-change-requests/{request_id}",
    summary="Get a plan change request",
    response=s.responses({200: pc.PlanChangeOut}, s.READ_ONE),
)
def plan_change_detail(request: HttpRequest, request_id: int) -> pc.PlanChangeOut:
    return present(plan_change_for(_user(request), request_id))


def _decision(
    request: HttpRequest, request_id: int, action: str, body: pc.DecisionIn, key: str | None
) -> HttpResponse:
    def work(who: Actor) -> Outcome:
        assert who.user is not None
        plan_change_decide(actor=who, request_id=request_id, action=action, reason=body.reason)
        return Outcome(200, presenters.dump(present(plan_change_for(who.user, request_id))))

    return execute(request, actor(request), work, key=key)


@router.post(
    "/plan-change-requests/{request_id}/approve",
    summary="Approve a plan change request",
    response=s.responses({200: pc.PlanChangeOut}, s.WRITE),
)
def plan_change_approve_create(
    request: HttpRequest, request_id: int, body: pc.DecisionIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """The admin approves (not the requester): the plan is assigned from the day asked for, or from
    today when that day has passed."""
    return _decision(request, request_id, "approve", body, idempotency_key)


@router.post(
    "/plan-change-requests/{request_id}/reject",
    summary="Reject a plan change request",
    response=s.responses({200: pc.PlanChangeOut}, s.WRITE),
)
def plan_change_reject_create(
    request: HttpRequest, request_id: int, body: pc.DecisionIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """The admin rejects, saying why (`reason`)."""
    return _decision(request, request_id, "reject", body, idempotency_key)


@router.post(
    "/plan-change-requests/{request_id}/withdraw",
    summary="Withdraw a plan change request",
    response=s.responses({200: pc.PlanChangeOut}, s.WRITE),
)
def plan_change_withdraw_create(
    request: HttpRequest, request_id: int, body: pc.DecisionIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """The merchant or its agent withdraws a request that waits."""
    return _decision(request, request_id, "withdraw", body, idempotency_key)
