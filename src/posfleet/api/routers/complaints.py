"""/complaints: a merchant's grievances (投诉) — about its agent, a closure case, a deposit, a device —
addressed to its agent or the provider, with the handler's clock, the escalation to the provider, and
the provider taking over an agent termination the agent does not decide (ADR 0023)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema

from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.closure.complaint_selectors import complaint_view, complaints_visible_to, filter_complaints
from posfleet.closure.complaint_states import overdue
from posfleet.closure.services import (
    complaint_acknowledge,
    complaint_close,
    complaint_escalate,
    complaint_for,
    complaint_raise,
    complaint_reject,
    complaint_reopen,
    complaint_resolve,
    complaint_take_over,
)
from posfleet.closure.services.complaints import handler
from posfleet.iam.models import User
from posfleet.platform.clock import now
from posfleet.platform.context import Actor

router = Router(tags=["complaints"])


class ComplaintIn(Schema):
    category: str = Field(description="agent, closure, deposit, device, other")
    subject: str = Field(max_length=200)
    text: str = Field(max_length=4000)
    to: Literal["agent", "provider"] = Field("agent", description="Address it to your agent or the provider")
    case: str = Field("", description="A closure case number it is about (optional)")
    merchant: str = Field("", description="The merchant's MID (the provider's admins record for one)")


class NoteIn(Schema):
    note: str = ""


class AnswerIn(Schema):
    outcome: Literal["resolved", "rejected"] = "resolved"
    resolution: str = Field(max_length=4000, description="The answer the merchant reads")


class ComplaintSummary(Schema):
    number: str
    status: str
    category: str
    subject: str
    merchant: str
    case: str | None
    addressed_to: str = Field(description="agent or provider: to whom the merchant addressed it")
    handler: str = Field(description="agent or provider: who holds it now")
    raised_at: datetime
    due_at: datetime
    escalated_at: datetime | None
    overdue: bool


class HistoryOut(Schema):
    at: datetime
    event: str
    label: str
    who: str
    note: str


class ComplaintOut(ComplaintSummary):
    text: str
    agent: str
    escalation: str
    acknowledged_at: datetime | None
    resolution: str
    answered_at: datetime | None
    closed_at: datetime | None
    reopened: int
    hours_left: int | None
    actions: list[str]
    history: list[HistoryOut]


class ComplaintPage(Schema):
    items: list[ComplaintSummary]
    next_cursor: str | None


class ComplaintQuery(Schema):
    view: Literal["all", "open", "escalated", "mine", "late", "answered", "closed"] = Field(
        "all", description="mine: waiting for your side (to handle, or to close when answered)"
    )


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


def _summary(complaint: Any, overdue: bool) -> ComplaintSummary:
    return ComplaintSummary(
        number=complaint.number,
        status=complaint.status,
        category=complaint.category,
        subject=complaint.subject,
        merchant=complaint.merchant.mid,
        case=complaint.case.number if complaint.case_id else None,
        addressed_to="provider" if complaint.addressed_to.kind == "provider" else "agent",
        handler=handler(complaint).value,
        raised_at=complaint.raised_at,
        due_at=complaint.due_at,
        escalated_at=complaint.escalated_at,
        overdue=overdue,
    )


def _detail(user: User, number: str) -> ComplaintOut:
    complaint = complaint_for(Actor.for_user(user), number)
    view = complaint_view(user, complaint)
    return ComplaintOut(
        **_summary(complaint, view.overdue).dict(),
        text=complaint.text,
        agent=view.addressed_to if complaint.addressed_to.kind != "provider" else "",
        escalation=complaint.escalation,
        acknowledged_at=complaint.acknowledged_at,
        resolution=complaint.resolution,
        answered_at=complaint.answered_at,
        closed_at=complaint.closed_at,
        reopened=complaint.reopened,
        hours_left=view.hours_left,
        actions=view.actions,
        history=[HistoryOut(**asdict(row)) for row in view.history],
    )


@router.get("/complaints", summary="List complaints", response=s.responses({200: ComplaintPage}, s.READ_LIST))
def complaints_list(
    request: HttpRequest, filters: Query[ComplaintQuery], page: Query[PageQuery]
) -> ComplaintPage:
    """Complaints the caller may see (a merchant: its own; an agent: addressed to it or its
    sub-agents; the provider's staff: all), newest first."""
    user = _user(request)
    qs = filter_complaints(complaints_visible_to(user), filters.view, user)
    rows, cursor = keyset(qs, list_name="complaints", key="id", page=page, descending=True)
    at = now()
    return ComplaintPage(
        items=[_summary(c, overdue(c.status, c.due_at, at)) for c in rows], next_cursor=cursor
    )


@router.post("/complaints", summary="Raise a complaint", response=s.responses({201: ComplaintOut}, s.WRITE))
def complaint_create(
    request: HttpRequest, body: ComplaintIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """The handler (your agent, or the provider) acknowledges within 3 days; a complaint the agent
    lets run late goes to the provider."""

    def work(who: Actor) -> Outcome:
        assert who.user is not None
        complaint = complaint_raise(
            actor=who,
            category=body.category,
            subject=body.subject,
            text=body.text,
            to=body.to,
            case_number=body.case,
            mid=body.merchant,
        )
        return Outcome(201, presenters.dump(_detail(who.user, complaint.number)))

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/complaints/{number}",
    summary="Get a complaint",
    response=s.responses({200: ComplaintOut}, s.READ_ONE),
)
def complaint_detail(request: HttpRequest, number: str) -> ComplaintOut:
    return _detail(_user(request), number)


def _write(request: HttpRequest, number: str, do: Any, *, key: str | None) -> HttpResponse:
    def work(who: Actor) -> Outcome:
        assert who.user is not None
        do(who)
        return Outcome(200, presenters.dump(_detail(who.user, number)))

    return execute(request, actor(request), work, key=key)


@router.post(
    "/complaints/{number}/acknowledge",
    summary="Acknowledge a complaint",
    response=s.responses({200: ComplaintOut}, s.WRITE),
)
def complaint_acknowledge_create(
    request: HttpRequest, number: str, body: NoteIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Whoever holds it (the agent, or the provider's staff) takes it in hand; answer within 7 days."""
    return _write(
        request,
        number,
        lambda who: complaint_acknowledge(actor=who, number=number, note=body.note),
        key=idempotency_key,
    )


@router.post(
    "/complaints/{number}/resolve",
    summary="Answer a complaint",
    response=s.responses({200: ComplaintOut}, s.WRITE),
)
def complaint_resolve_create(
    request: HttpRequest, number: str, body: AnswerIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """`outcome` resolved (what was done) or rejected (unfounded, and why)."""
    answer = complaint_resolve if body.outcome == "resolved" else complaint_reject
    return _write(
        request,
        number,
        lambda who: answer(actor=who, number=number, resolution=body.resolution),
        key=idempotency_key,
    )


@router.post(
    "/complaints/{number}/escalate",
    summary="Escalate a complaint to the provider",
    response=s.responses({200: ComplaintOut}, s.WRITE),
)
def complaint_escalate_create(
    request: HttpRequest, number: str, body: NoteIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    return _write(
        request,
        number,
        lambda who: complaint_escalate(actor=who, number=number, note=body.note),
        key=idempotency_key,
    )


@router.post(
    "/complaints/{number}/take-over",
    summary="Take over the agent termination a complaint is about",
    response=s.responses({200: ComplaintOut}, s.WRITE),
)
def complaint_take_over_create(
    request: HttpRequest, number: str, body: NoteIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """The provider's reviewers become the reviewer side of the related case (the agent did not act)."""
    return _write(
        request,
        number,
        lambda who: complaint_take_over(actor=who, number=number, note=body.note),
        key=idempotency_key,
    )


@router.post(
    "/complaints/{number}/close",
    summary="Close a complaint",
    response=s.responses({200: ComplaintOut}, s.WRITE),
)
def complaint_close_create(
    request: HttpRequest, number: str, body: NoteIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """The merchant: satisfied with the answer, or withdrawing it."""
    return _write(
        request,
        number,
        lambda who: complaint_close(actor=who, number=number, note=body.note),
        key=idempotency_key,
    )


@router.post(
    "/complaints/{number}/reopen",
    summary="Reopen an answered complaint",
    response=s.responses({200: ComplaintOut}, s.WRITE),
)
def complaint_reopen_create(
    request: HttpRequest, number: str, body: NoteIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    return _write(
        request,
        number,
        lambda who: complaint_reopen(actor=who, number=number, note=body.note),
        key=idempotency_key,
    )
