"""Complaints (投诉, DOMAIN.md workflow 6, article 004; ADR 0023): the only writers of complaints.

A merchant raises a grievance (``complaint_raise``) addressed to its agent or to the provider; the
handler acknowledges it (``complaint_acknowledge``) and answers it (``complaint_resolve``,
``complaint_reject``); the merchant or the provider's staff escalate a complaint still with the agent
(``complaint_escalate``), and the sweep does when the agent's clock ran out (``complaint_sla_sweep``);
the provider's staff take over the related agent termination an agent does not decide
(``complaint_take_over``); the merchant closes or reopens it (``complaint_close``, ``complaint_reopen``).

Each change: guard, compare-and-set on the complaint's status (closure/complaint_states.py), audit row
and outbox event (``ComplaintProgressed``) in one transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.closure.common import audit_case, case_for, progressed
from posfleet.closure.complaint_states import (
    ANSWERED,
    IN_HAND,
    ComplaintCategory,
    ComplaintCommand,
    ComplaintStatus,
    Escalation,
    Guard,
    Handler,
    commands_from,
    handler_of,
    next_state,
)
from posfleet.closure.complaint_states import GUARDS as COMPLAINT_GUARDS
from posfleet.closure.complaint_states import PERMISSIONS as COMPLAINT_PERMISSIONS
from posfleet.closure.events import ComplaintProgressed
from posfleet.closure.models import ClosureCase, Complaint
from posfleet.closure.states import CaseKind, CaseStatus
from posfleet.iam.models import OrgKind
from posfleet.iam.selectors import organisations_told, provider
from posfleet.parties.selectors import merchant_for, merchant_of_organisation
from posfleet.platform import counters
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import Conflict, GuardFailed, NotFound, TransitionNotAllowed, ValidationFailed
from posfleet.platform.events import publish

NUMBER_COUNTER = "complaint_number"
SUBJECT_MAX = 200
TEXT_MAX = 4000
ADDRESSEES = (Handler.AGENT.value, Handler.PROVIDER.value)


def ack_days() -> int:
    return int(settings.POSFLEET_CLOSURE.get("COMPLAINT_ACK_DAYS", 3))


def resolve_days() -> int:
    return int(settings.POSFLEET_CLOSURE.get("COMPLAINT_RESOLVE_DAYS", 7))


# -- shared -----------------------------------------------------------------------------------------------


def complaint_for(actor: Actor, number: str, *, lock: bool = False) -> Complaint:
    """The complaint ``number`` if ``actor`` may see it (404 otherwise), optionally row-locked."""
    qs = Complaint.objects.select_related(
        "merchant", "merchant__organisation", "merchant__agent", "addressed_to", "case"
    )
    if lock:
        qs = qs.select_for_update(of=("self",))
    complaint = qs.filter(number=(number or "").strip().upper()[:20]).first()
    if complaint is None:
        raise NotFound()
    actor.must_see("closure.view_complaint", complaint)
    return complaint


def with_provider(complaint: Complaint) -> bool:
    return complaint.escalated_at is not None or complaint.addressed_to.kind == OrgKind.PROVIDER


def handler(complaint: Complaint) -> Handler:
    return handler_of(
        addressed_to_provider=complaint.addressed_to.kind == OrgKind.PROVIDER,
        escalated=complaint.escalated_at is not None,
    )


def guard_holds(complaint: Complaint, guard: Guard) -> bool:
    if guard == Guard.WITH_AGENT:
        return not with_provider(complaint)
    if guard == Guard.WITH_PROVIDER:
        return with_provider(complaint)
    if guard == Guard.CASE_AWAITS_AGENT:
        case = complaint.case
        return (
            case is not None
            and case.kind == CaseKind.AGENT_TERMINATION
            and case.status == CaseStatus.REQUESTED
            and case.taken_over_at is None
        )
    return False


GUARD_WORDS = {
    Guard.WITH_AGENT: gettext_lazy("The provider already handles this complaint."),
    Guard.WITH_PROVIDER: gettext_lazy("Only a complaint the provider handles can take a case over."),
    Guard.CASE_AWAITS_AGENT: gettext_lazy(
        "Only an ending with the agent that still waits for the agent's decision can be taken over."
    ),
}


def allowed_commands(actor: Actor, complaint: Complaint) -> list[ComplaintCommand]:
    """What ``actor`` may do with the complaint now: the table, the permission and the guards."""
    out = []
    for command in commands_from(complaint.status):
        perm = COMPLAINT_PERMISSIONS.get(command)
        if perm is None or not actor.may(perm, complaint):
            continue
        if all(guard_holds(complaint, g) for g in COMPLAINT_GUARDS.get(command, ())):
            out.append(command)
    return out


def _check(actor: Actor, complaint: Complaint, command: ComplaintCommand) -> None:
    """Permission (403), then the table (409 transition_not_allowed), then the guards (409 guard_failed)."""
    actor.require(COMPLAINT_PERMISSIONS[command], complaint)
    if next_state(complaint.status, command) is None:
        raise TransitionNotAllowed(
            _("This is not possible while the complaint is “%(status)s”.")
            % {"status": ComplaintStatus(complaint.status).label},
            current_status=complaint.status,
            allowed=[c.value for c in commands_from(complaint.status)],
        )
    for guard in COMPLAINT_GUARDS.get(command, ()):
        if not guard_holds(complaint, guard):
            raise GuardFailed(str(GUARD_WORDS[guard]), guard=guard.value)


def _move(complaint: Complaint, command: ComplaintCommand, **fields: Any) -> None:
    """Compare-and-set the status to where the table leads; a lost race is a Conflict (409)."""
    source = complaint.status
    target = next_state(source, command)
    if target is None:  # _check ran first; this is the same refusal for the sweep's own moves
        raise TransitionNotAllowed(current_status=source)
    if not Complaint.objects.filter(pk=complaint.pk, status=source).update(status=target, **fields):
        raise Conflict()
    complaint.status = target
    for name, value in fields.items():
        setattr(complaint, name, value)


def _told(complaint: Complaint) -> tuple[int, ...]:
    """Who hears of it: addressed to the agent, the merchant's line (provider, agents above, merchant);
    addressed to the provider, the provider and the merchant only (a complaint about the agent is not
    the agent's to read)."""
    merchant_path = complaint.merchant.organisation.path
    if complaint.addressed_to.kind == OrgKind.PROVIDER:
        return tuple(
            dict.fromkeys(
                (*organisations_told(complaint.addressed_to.path), complaint.merchant.organisation_id)
            )
        )
    return organisations_told(merchant_path)


def _audit(
    actor: Actor, complaint: Complaint, event: EventType, *, why: str = "", note: str = "", **after: Any
) -> None:
    record(
        actor,
        Entry(
            event_type=event,
            subject_type="complaint",
            subject_id=complaint.number,
            reason=why,
            note=note,
            after={"status": complaint.status, "handler": handler(complaint).value, **after},
        ),
    )


def _progressed(complaint: Complaint, step: str, *, reason: str = "") -> None:
    agent = "" if complaint.addressed_to.kind == OrgKind.PROVIDER else complaint.merchant.agent.code
    publish(
        [
            ComplaintProgressed(
                aggregate_id=complaint.number,
                organisation_ids=_told(complaint),
                step=step,
                status=complaint.status,
                merchant=complaint.merchant.mid,
                category=complaint.category,
                subject=complaint.subject,
                handler=handler(complaint).value,
                agent=agent,
                case=complaint.case.number if complaint.case is not None else "",
                due_at=complaint.due_at.isoformat() if complaint.due_at else "",
                reason=reason,
            )
        ]
    )


def _person(actor: Actor) -> Any:
    return actor.user if actor.user is not None and not actor.is_system else None


# -- raising ----------------------------------------------------------------------------------------------


def complaint_raise(
    *,
    actor: Actor,
    category: str,
    subject: str,
    text: str,
    to: str = Handler.AGENT,
    case_number: str = "",
    mid: str = "",
) -> Complaint:
    """A merchant raises a complaint addressed to its agent (``to="agent"``) or to the provider, about
    ``category``, optionally on one of its closure cases. The provider's admins may record one for a
    merchant (``mid``). The handler's clock starts: acknowledge within COMPLAINT_ACK_DAYS."""
    subject = clean_text(subject or "", SUBJECT_MAX).strip()
    text = clean_text(text or "", TEXT_MAX).strip()
    if category not in ComplaintCategory.values:
        raise ValidationFailed(
            _("Choose what the complaint is about."), field="category", allowed=ComplaintCategory.values
        )
    if not subject:
        raise ValidationFailed(_("Give the complaint a subject."), field="subject")
    if not text:
        raise ValidationFailed(_("Say what happened."), field="text")
    if to not in ADDRESSEES:
        raise ValidationFailed(
            _("Address the complaint to your agent or to the provider."), field="to", allowed=list(ADDRESSEES)
        )
    merchant = _merchant(actor, mid)
    actor.require("closure.raise_complaint", merchant)
    case = None
    if case_number:
        case = case_for(actor, case_number)
        if case.merchant_id != merchant.pk:
            raise ValidationFailed(_("The closure case is another merchant's."), field="case")
    return _raise(actor, merchant=merchant, category=category, subject=subject, text=text, to=to, case=case)


def _merchant(actor: Actor, mid: str) -> Any:
    user = actor.scope_user
    own = (
        merchant_of_organisation(user.organisation_id) if user is not None and user.organisation_id else None
    )
    if own is not None:
        if mid and mid.strip().upper() != own.mid:
            raise NotFound()
        return own
    if not mid:
        raise ValidationFailed(_("Name the merchant (MID)."), field="merchant")
    return merchant_for(user, mid.strip().upper()[:15])


def _raise(
    actor: Actor,
    *,
    merchant: Any,
    category: str,
    subject: str,
    text: str,
    to: str,
    case: ClosureCase | None,
    at: datetime | None = None,
) -> Complaint:
    at = at or now()
    addressed_to = merchant.agent.organisation if to == Handler.AGENT else provider()
    if addressed_to is None:
        raise ValidationFailed(_("There is no provider to address."), field="to")
    with transaction.atomic():
        number = f"CP{at:%y%m}{counters.next_values(NUMBER_COUNTER)[0]:06d}"
        person = _person(actor)
        complaint = Complaint.objects.create(
            number=number,
            merchant=merchant,
            status=ComplaintStatus.OPEN,
            category=category,
            subject=subject,
            text=text,
            case=case,
            addressed_to=addressed_to,
            raised_by=person,
            raised_by_label=actor.label or (person.username if person else ""),
            raised_at=at,
            due_at=at + timedelta(days=ack_days()),
        )
        _audit(
            actor,
            complaint,
            EventType.COMPLAINT_RAISED,
            why=category,
            category=category,
            addressed_to=to,
            case=case.number if case else "",
            due_at=complaint.due_at.isoformat(),
        )
        _progressed(complaint, "raised")
    return complaint


# -- the handler's moves ------------------------------------------------------------------------------------


def complaint_acknowledge(*, actor: Actor, number: str, note: str = "") -> Complaint:
    """Whoever holds the complaint takes it in hand; its answer is due within COMPLAINT_RESOLVE_DAYS."""
    note = clean_text(note or "", 500)
    with transaction.atomic():
        complaint = complaint_for(actor, number, lock=True)
        _check(actor, complaint, ComplaintCommand.ACKNOWLEDGE)
        at = now()
        _move(
            complaint,
            ComplaintCommand.ACKNOWLEDGE,
            acknowledged_by=_person(actor),
            acknowledged_at=at,
            due_at=at + timedelta(days=resolve_days()),
        )
        _audit(
            actor, complaint, EventType.COMPLAINT_ACKNOWLEDGED, note=note, due_at=complaint.due_at.isoformat()
        )
        _progressed(complaint, "acknowledged")
    return complaint


def complaint_resolve(*, actor: Actor, number: str, resolution: str) -> Complaint:
    """The handler answers what was done about it."""
    return _answer(actor, number, ComplaintCommand.RESOLVE, resolution)


def complaint_reject(*, actor: Actor, number: str, resolution: str) -> Complaint:
    """The handler answers that the complaint is unfounded, and why."""
    return _answer(actor, number, ComplaintCommand.REJECT, resolution)


def _answer(actor: Actor, number: str, command: ComplaintCommand, resolution: str) -> Complaint:
    resolution = clean_text(resolution or "", TEXT_MAX).strip()
    if not resolution:
        raise ValidationFailed(_("Write the answer the merchant reads."), field="resolution")
    with transaction.atomic():
        complaint = complaint_for(actor, number, lock=True)
        _check(actor, complaint, command)
        _move(complaint, command, resolution=resolution, answered_by=_person(actor), answered_at=now())
        resolved = command == ComplaintCommand.RESOLVE
        _audit(
            actor,
            complaint,
            EventType.COMPLAINT_RESOLVED if resolved else EventType.COMPLAINT_REJECTED,
            note=resolution[:500],
        )
        _progressed(complaint, "resolved" if resolved else "rejected")
    return complaint


# -- escalation and taking over ------------------------------------------------------------------------------


def complaint_escalate(*, actor: Actor, number: str, note: str = "") -> Complaint:
    """The merchant (or the provider's staff) send a complaint still with the agent to the provider,
    whose clock starts (acknowledge within COMPLAINT_ACK_DAYS)."""
    note = clean_text(note or "", 500)
    with transaction.atomic():
        complaint = complaint_for(actor, number, lock=True)
        _check(actor, complaint, ComplaintCommand.ESCALATE)
        why = Escalation.STAFF if actor.may("closure.take_over_case") else Escalation.MERCHANT
        _escalate(actor, complaint, why, note=note)
    return complaint


def _escalate(actor: Actor, complaint: Complaint, why: Escalation, *, note: str = "") -> None:
    at = now()
    _move(
        complaint,
        ComplaintCommand.ESCALATE,
        escalated_at=at,
        escalation=why.value,
        due_at=at + timedelta(days=ack_days()),
    )
    _audit(
        actor,
        complaint,
        EventType.COMPLAINT_ESCALATED,
        why=why.value,
        note=note,
        due_at=complaint.due_at.isoformat(),
    )
    _progressed(complaint, "escalated", reason=why.value)


def complaint_take_over(*, actor: Actor, number: str, note: str = "") -> Complaint:
    """The provider's reviewers take over the agent termination the complaint is about, from an agent
    that did not decide: they are its reviewer side from now on (the agent no longer decides), with the
    provider's own review clock (REVIEW_DAYS). The complaint is acknowledged if it was not."""
    note = clean_text(note or "", 500)
    with transaction.atomic():
        complaint = complaint_for(actor, number, lock=True)
        _check(actor, complaint, ComplaintCommand.TAKE_OVER)
        assert complaint.case is not None  # the guard says so
        case = (
            ClosureCase.objects.select_for_update()
            .select_related("merchant__organisation")
            .get(pk=complaint.case.pk)
        )
        complaint.case = case
        if not guard_holds(complaint, Guard.CASE_AWAITS_AGENT):  # decided or taken meanwhile
            raise Conflict()
        at = now()
        user = actor.require_person(COMPLAINT_PERMISSIONS[ComplaintCommand.TAKE_OVER], complaint)
        due = at + timedelta(days=settings.POSFLEET_CLOSURE["REVIEW_DAYS"])
        if not ClosureCase.objects.filter(
            pk=case.pk, status=CaseStatus.REQUESTED, taken_over_at__isnull=True
        ).update(
            taken_over_by=user,
            taken_over_at=at,
            review_due_at=due,
            review_reminded_at=None,
            review_escalated_at=None,
        ):
            raise Conflict()
        case.taken_over_by, case.taken_over_at, case.review_due_at = user, at, due
        case.review_reminded_at = case.review_escalated_at = None
        fields: dict[str, Any] = {}
        if complaint.status != ComplaintStatus.ACKNOWLEDGED:
            fields = {
                "acknowledged_by": user,
                "acknowledged_at": at,
                "due_at": at + timedelta(days=resolve_days()),
            }
        _move(complaint, ComplaintCommand.TAKE_OVER, **fields)
        audit_case(
            actor,
            case,
            EventType.CLOSURE_TAKEN_OVER,
            why="agent_late",
            note=note,
            complaint=complaint.number,
            review_due_at=due.isoformat(),
        )
        progressed(case, "taken_over", reason="agent_late")
        _audit(
            actor, complaint, EventType.COMPLAINT_ACKNOWLEDGED, why="take_over", note=note, case=case.number
        )
        _progressed(complaint, "taken_over")
    return complaint


# -- the merchant's moves ----------------------------------------------------------------------------------


def complaint_close(*, actor: Actor, number: str, note: str = "") -> Complaint:
    """The merchant closes the complaint: satisfied with the answer, or no longer needed (withdrawn)."""
    note = clean_text(note or "", 500)
    with transaction.atomic():
        complaint = complaint_for(actor, number, lock=True)
        _check(actor, complaint, ComplaintCommand.CLOSE)
        was = complaint.status
        _move(complaint, ComplaintCommand.CLOSE, closed_at=now())
        _audit(
            actor,
            complaint,
            EventType.COMPLAINT_CLOSED,
            why="answered" if was in ANSWERED else "withdrawn",
            note=note,
        )
        _progressed(complaint, "closed")
    return complaint


def complaint_reopen(*, actor: Actor, number: str, note: str = "") -> Complaint:
    """The merchant finds the answer does not help: the same handler has it again, with a new clock."""
    note = clean_text(note or "", 500)
    if not note.strip():
        raise ValidationFailed(_("Say why the answer does not help."), field="note")
    with transaction.atomic():
        complaint = complaint_for(actor, number, lock=True)
        _check(actor, complaint, ComplaintCommand.REOPEN)
        at = now()
        _move(
            complaint,
            ComplaintCommand.REOPEN,
            acknowledged_by=None,
            acknowledged_at=None,
            due_at=at + timedelta(days=ack_days()),
            reopened=complaint.reopened + 1,
        )
        _audit(actor, complaint, EventType.COMPLAINT_REOPENED, note=note, due_at=complaint.due_at.isoformat())
        _progressed(complaint, "reopened")
    return complaint


# -- the clock ----------------------------------------------------------------------------------------------


def complaint_sla_sweep(*, actor: Actor) -> dict[str, int]:
    """Escalate to the provider, once each: complaints still with the agent past their clock (``late``),
    and, for agent terminations past the agent's review clock (AGENT_REVIEW_DAYS) and not taken over,
    the merchant's complaint about it still with the agent — or, when the merchant raised none, one
    raised for it (``case_review_late``). Safe to run twice."""
    at = now()
    counts = {"escalated": 0, "raised": 0}
    late = Complaint.objects.filter(
        status__in=IN_HAND, escalated_at__isnull=True, due_at__lt=at, addressed_to__kind=OrgKind.AGENT
    )
    for pk in list(late.order_by("pk").values_list("pk", flat=True)):
        with transaction.atomic():
            complaint = _locked(pk)
            if complaint.status not in IN_HAND or with_provider(complaint) or complaint.due_at >= at:
                continue
            _escalate(actor, complaint, Escalation.LATE)
            counts["escalated"] += 1
    cases = ClosureCase.objects.filter(
        kind=CaseKind.AGENT_TERMINATION,
        status=CaseStatus.REQUESTED,
        taken_over_at__isnull=True,
        review_due_at__lt=at,
    )
    for case_id in list(cases.order_by("pk").values_list("pk", flat=True)):
        with transaction.atomic():
            case = (
                ClosureCase.objects.select_for_update()
                .select_related("merchant__organisation", "merchant__agent__organisation")
                .get(pk=case_id)
            )
            if case.status != CaseStatus.REQUESTED or case.taken_over_at is not None:
                continue
            related = Complaint.objects.filter(case=case)
            if (
                related.filter(escalated_at__isnull=False).exists()
                or related.filter(addressed_to__kind=OrgKind.PROVIDER, status__in=IN_HAND).exists()
            ):
                continue  # the provider has (or had) it already
            waiting = related.filter(status__in=(*IN_HAND, *ANSWERED), addressed_to__kind=OrgKind.AGENT)
            found = waiting.order_by("pk").values_list("pk", flat=True).first()
            if found is None:
                complaint = _raise(
                    actor,
                    merchant=case.merchant,
                    category=ComplaintCategory.CLOSURE,
                    subject=_("Ending with the agent: no decision in time"),
                    text=_(
                        "The agent did not decide on case %(case)s within its %(days)d days; posfleet "
                        "raised this complaint for the merchant and sent it to the provider."
                    )
                    % {"case": case.number, "days": settings.POSFLEET_CLOSURE["AGENT_REVIEW_DAYS"]},
                    to=Handler.AGENT,
                    case=case,
                    at=at,
                )
                counts["raised"] += 1
                complaint = _locked(complaint.pk)
            else:
                complaint = _locked(found)
            _escalate(actor, complaint, Escalation.CASE_LATE)
            counts["escalated"] += 1
    return counts


def _locked(pk: int) -> Complaint:
    return (
        Complaint.objects.select_for_update(of=("self",))
        .select_related("merchant", "merchant__organisation", "merchant__agent", "addressed_to", "case")
        .get(pk=pk)
    )
