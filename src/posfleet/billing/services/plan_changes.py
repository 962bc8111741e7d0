"""Plan change requests (换费率方案申请, ADR 0027): the only writers of ``PlanChangeRequest``.

A merchant, or the agent that signed it, asks to move to another of our plans from a date
(``plan_change_request``), typically after the comparison showed that plan would cost less; the
provider's admin approves it (``plan_change_approve``: the plan is assigned from that date — or from
the day of approval when that date has passed — through ``plans.plan_assign``, the one writer of
assignments) or rejects it with a reason (``plan_change_reject``); the requester's side may withdraw it
while it waits (``plan_change_withdraw``). Each change: permission and guard, a row lock and a
compare-and-set on the status (the table in ``billing/plan_change_states.py``), an audit row and an
outbox event, in one transaction. A refusal changes nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.errors import PlanChangeWaiting
from posfleet.billing.events import PlanChangeProgressed
from posfleet.billing.models import PlanAssignment, PlanChangeRequest, RatePlan, RatePlanVersion
from posfleet.billing.plan_change_states import (
    REASON_REQUIRED,
    PlanChangeCommand,
    PlanChangeStatus,
    next_state,
)
from posfleet.billing.selectors import current_assignment
from posfleet.billing.services.plans import plan_assign
from posfleet.iam.models import User
from posfleet.iam.selectors import organisations_told
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from posfleet.platform.events import publish

REASON_MAX = 255
# How far ahead a change may be asked for.
FURTHEST = timedelta(days=366)

_EVENT_OF = {
    PlanChangeCommand.APPROVE: EventType.PLAN_CHANGE_APPROVED,
    PlanChangeCommand.REJECT: EventType.PLAN_CHANGE_REJECTED,
    PlanChangeCommand.WITHDRAW: EventType.PLAN_CHANGE_WITHDRAWN,
}
_PERMISSION_OF = {
    PlanChangeCommand.APPROVE: "billing.decide_plan_change",
    PlanChangeCommand.REJECT: "billing.decide_plan_change",
    PlanChangeCommand.WITHDRAW: "billing.request_plan_change",
}


def plan_change_request(
    *, actor: Actor, merchant: Any, to_plan: RatePlan, effective_from: date, note: str = ""
) -> PlanChangeRequest:
    """The merchant (or its agent) asks to be on ``to_plan`` from ``effective_from`` (today or later,
    within a year). Refused: a competitor's plan, a plan not in force on that day, the plan the merchant
    is on that day already, a second request while one waits (``plan_change_waiting``)."""
    actor.must_see("billing.view_money", merchant)
    person = actor.require_person("billing.request_plan_change", merchant)
    if to_plan.is_competitor:
        raise ValidationFailed(
            _("A competitor's plan is for comparison only: ask for one of our plans."), field="to_plan"
        )
    day = today()
    if effective_from < day:
        raise ValidationFailed(
            _("Changes apply from today or later; history is never rewritten."), field="effective_from"
        )
    if effective_from > day + FURTHEST:
        raise ValidationFailed(_("Ask for a day within the next year."), field="effective_from")
    if not RatePlanVersion.objects.filter(plan=to_plan, effective_from__lte=effective_from).exists():
        raise ValidationFailed(
            _("%(plan)s is not in force yet on that day.") % {"plan": to_plan.name}, field="effective_from"
        )
    then = current_assignment(merchant.pk, effective_from)
    if then is not None and then.plan_id == to_plan.pk:
        raise ValidationFailed(
            _("The merchant is on %(plan)s on that day already.") % {"plan": to_plan.name}, field="to_plan"
        )
    current = current_assignment(merchant.pk, day)
    note = clean_text(note or "", REASON_MAX).strip()
    at = now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                request = PlanChangeRequest.objects.create(
                    merchant=merchant,
                    from_plan=current.plan if current is not None else None,
                    to_plan=to_plan,
                    effective_from=effective_from,
                    note=note,
                    requested_by=person,
                    requested_at=at,
                )
        except IntegrityError as exc:  # plan_change_one_waiting_per_merchant
            raise PlanChangeWaiting() from exc
        _tell(request, merchant, "requested", at=at)
        record(
            actor,
            Entry(
                event_type=EventType.PLAN_CHANGE_REQUESTED,
                subject_type="plan_change",
                subject_id=str(request.pk),
                note=note,
                after={
                    "merchant": merchant.mid,
                    "status": request.status,
                    "from_plan": current.plan.code if current is not None else None,
                    "to_plan": to_plan.code,
                    "effective_from": effective_from.isoformat(),
                },
                occurred_at=at,
            ),
        )
    return request


def plan_change_approve(*, actor: Actor, request_id: int, note: str = "") -> PlanChangeRequest:
    """The admin approves: the merchant is put on the requested plan from the requested day (from
    today when that day has passed while the request waited), through ``plan_assign``; someone other
    than the requester decides."""
    return _decide(actor, request_id, PlanChangeCommand.APPROVE, note)


def plan_change_reject(*, actor: Actor, request_id: int, reason: str) -> PlanChangeRequest:
    """The admin rejects, saying why; nothing else changes."""
    return _decide(actor, request_id, PlanChangeCommand.REJECT, reason)


def plan_change_withdraw(*, actor: Actor, request_id: int, reason: str = "") -> PlanChangeRequest:
    """The merchant or its agent withdraws a waiting request; nothing else changes."""
    return _decide(actor, request_id, PlanChangeCommand.WITHDRAW, reason)


def plan_change_decide(*, actor: Actor, request_id: int, action: str, reason: str = "") -> PlanChangeRequest:
    """Run the command named ``action`` (approve, reject, withdraw): the console's and the API's entry."""
    try:
        command = PlanChangeCommand(action)
    except ValueError as exc:
        raise ValidationFailed(
            _("Unknown action “%(action)s”.") % {"action": str(action)[:32]},
            field="action",
            allowed=[c.value for c in PlanChangeCommand],
        ) from exc
    return _decide(actor, request_id, command, reason)


def _locked(actor: Actor, request_id: int) -> PlanChangeRequest:
    """Request ``request_id`` row-locked with its merchant and plans; ``NotFound`` (404) when the actor
    may not see its merchant."""
    request = (
        PlanChangeRequest.objects.select_for_update(of=("self",))
        .select_related(
            "merchant",
            "merchant__organisation",
            "merchant__agent",
            "merchant__agent__organisation",
            "from_plan",
            "to_plan",
        )
        .filter(pk=request_id)
        .order_by()
        .first()
    )
    if request is None:
        raise NotFound()
    actor.must_see("billing.view_money", request.merchant)
    return request


def _decide(actor: Actor, request_id: int, command: PlanChangeCommand, reason: str) -> PlanChangeRequest:
    reason = clean_text(reason or "", REASON_MAX).strip()
    with transaction.atomic():
        request = _locked(actor, request_id)
        merchant = request.merchant
        person: User = actor.require_person(_PERMISSION_OF[command], merchant)
        source = request.status
        target = next_state(source, command)
        if target is None:
            raise TransitionNotAllowed(
                _("This plan change request is %(status)s already.")
                % {"status": PlanChangeStatus(source).label},
                current_status=source,
            )
        if command in REASON_REQUIRED and not reason:
            raise ValidationFailed(_("Say why the request is rejected."), field="reason")
        if command != PlanChangeCommand.WITHDRAW and person.pk == request.requested_by_id:
            raise PermissionDenied(_("Someone other than the requester decides (maker-checker)."))
        assignment: PlanAssignment | None = None
        if command == PlanChangeCommand.APPROVE:
            assignment = plan_assign(
                actor=actor,
                merchant_id=merchant.pk,
                merchant_mid=merchant.mid,
                plan=request.to_plan,
                effective_from=max(request.effective_from, today()),
            )
        at = now()
        changed = PlanChangeRequest.objects.filter(pk=request.pk, status=source).update(
            status=target, decided_by=person, decided_at=at, reason=reason, assignment=assignment
        )
        if changed != 1:
            raise Conflict()
        request.status, request.decided_by, request.decided_at = target, person, at
        request.reason, request.assignment = reason, assignment
        _tell(request, merchant, target.value, at=at)
        after: dict[str, Any] = {"status": target.value, "to_plan": request.to_plan.code}
        if assignment is not None:
            after["applies_from"] = assignment.effective_from.isoformat()
        record(
            actor,
            Entry(
                event_type=_EVENT_OF[command],
                subject_type="plan_change",
                subject_id=str(request.pk),
                note=reason,
                before={"status": source, "merchant": merchant.mid},
                after=after,
                occurred_at=at,
            ),
        )
    return request


def _tell(request: PlanChangeRequest, merchant: Any, step: str, *, at: Any) -> None:
    publish(
        [
            PlanChangeProgressed(
                aggregate_id=str(request.pk),
                organisation_ids=organisations_told(merchant.organisation.path),
                step=step,
                status=request.status,
                merchant=merchant.mid,
                from_plan=request.from_plan.code if request.from_plan is not None else "",
                to_plan=request.to_plan.code,
                effective_from=request.effective_from.isoformat(),
                applies_from=request.assignment.effective_from.isoformat()
                if request.assignment is not None
                else "",
                reason=request.reason,
            )
        ],
        occurred_at=at,
    )
