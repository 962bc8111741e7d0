"""What the console and the API show of complaints: the scoped list with its views, and one read model
of a complaint (``complaint_view``) with its clock, its handler and the actions the reader may take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from posfleet.audit.selectors import events_for
from posfleet.audit.vocabulary import EventType
from posfleet.closure.complaint_states import (
    ANSWERED,
    GROUPS,
    IN_HAND,
    ComplaintCategory,
    ComplaintStatus,
    Handler,
    overdue,
)
from posfleet.closure.models import Complaint
from posfleet.closure.services.complaints import allowed_commands, handler
from posfleet.iam.models import OrgKind, Role, User
from posfleet.platform.clock import now
from posfleet.platform.context import Actor

VIEWS = ("all", "open", "escalated", "mine", "late", "answered", "closed")


def complaints_visible_to(user: User) -> QuerySet[Complaint]:
    """The provider's staff: all; an agent: those addressed to it or its sub-agents; a merchant: its own."""
    qs = Complaint.objects.select_related("merchant", "merchant__agent", "addressed_to", "case")
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_provider_staff:
        return qs
    if user.role == Role.AGENT and user.organisation is not None:
        return qs.filter(
            addressed_to__kind=OrgKind.AGENT, addressed_to__path__startswith=user.organisation.path
        )
    if user.role == Role.MERCHANT and user.organisation_id is not None:
        return qs.filter(merchant__organisation_id=user.organisation_id)
    return qs.none()


def _with_provider() -> Q:
    return Q(escalated_at__isnull=False) | Q(addressed_to__kind=OrgKind.PROVIDER)


def filter_complaints(
    qs: QuerySet[Complaint], view: str, user: User, at: datetime | None = None
) -> QuerySet[Complaint]:
    """``open`` (not answered yet), ``escalated`` (with the provider after escalation, not answered),
    ``mine`` (waiting for the reader's side: the merchant's answered ones, the agent's or the provider's
    to handle), ``late`` (the handler's clock ran out), ``answered``, ``closed``; anything else: all."""
    at = at or now()
    if view in ("open", "answered", "closed"):
        return qs.filter(status__in=GROUPS[view])
    if view == "escalated":
        return qs.filter(escalated_at__isnull=False, status__in=IN_HAND)
    if view == "late":
        return qs.filter(status__in=IN_HAND, due_at__lt=at)
    if view == "mine":
        if user.role == Role.MERCHANT:
            return qs.filter(status__in=ANSWERED)
        if user.role == Role.AGENT:
            return qs.filter(status__in=IN_HAND).exclude(_with_provider())
        if user.is_provider_staff:
            return qs.filter(_with_provider(), status__in=IN_HAND)
        return qs.none()
    return qs


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    event: str
    label: str
    who: str
    note: str


@dataclass(frozen=True)
class ComplaintView:
    complaint: Complaint
    status_label: str
    category_label: str
    handler: str  # agent | provider
    addressed_to: str  # the agent's name, or the provider's
    overdue: bool
    hours_left: int | None  # on the handler's clock; None when it is not running
    actions: list[str]
    history: list[HistoryRow]


def complaint_view(user: User, complaint: Complaint, *, at: datetime | None = None) -> ComplaintView:
    """Everything a complaint's page and its API detail show, for ``user``."""
    at = at or now()
    running = complaint.status in IN_HAND
    history = [
        HistoryRow(
            at=e.occurred_at,
            event=e.event_type,
            label=str(EventType(e.event_type).label) if e.event_type in EventType.values else e.event_type,
            who=e.actor_label,
            note=e.note,
        )
        for e in events_for("complaint", complaint.number)
    ]
    return ComplaintView(
        complaint=complaint,
        status_label=str(ComplaintStatus(complaint.status).label),
        category_label=str(ComplaintCategory(complaint.category).label),
        handler=handler(complaint).value,
        addressed_to=complaint.addressed_to.name,
        overdue=overdue(complaint.status, complaint.due_at, at),
        hours_left=int((complaint.due_at - at).total_seconds() // 3600) if running else None,
        actions=[c.value for c in allowed_commands(Actor.for_user(user), complaint)],
        history=history,
    )


def categories() -> list[tuple[str, str]]:
    return [(value, str(label)) for value, label in ComplaintCategory.choices]


def addressees() -> list[tuple[str, str]]:
    from django.utils.translation import gettext as _

    return [(Handler.AGENT.value, _("my agent")), (Handler.PROVIDER.value, _("the provider"))]
