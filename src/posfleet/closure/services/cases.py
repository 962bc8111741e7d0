"""The closure case's services (注销, DOMAIN.md workflow 4): the only writers of cases.

A person asks (``closure_request``, after seeing ``closure_quote``), may withdraw until review decides
(``closure_withdraw``), a reviewer other than the requester decides (``closure_decide``); an approved
case's steps then run in the worker (``closure.runner``), waiting for the settlement run, the payment
channels, the device, the merchant's parcel and the warehouse (``closure_receive``, ``closure_inspect``).
Each change: guard, compare-and-set on the case's status (the table in closure/states.py), audit row
and outbox event in one transaction; the worker is woken after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.selectors import active_contracts_of
from posfleet.closure.common import audit_case, case_for, job_actor, move, progressed
from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.closure.quote import AgentTerms, Quote, build_quote
from posfleet.closure.states import (
    NOTE_REQUIRED_REASONS,
    STAFF_ONLY_REASONS,
    STEPS,
    CaseCommand,
    CaseKind,
    CaseStatus,
    ClosureReason,
    StepName,
    StepState,
    next_state,
)
from posfleet.fleet import selectors as fleet
from posfleet.fleet.services import terminal_deactivate as fleet_deactivate
from posfleet.fleet.services import (
    terminal_reactivate,
    terminals_lock,
)
from posfleet.fleet.states import CLOSABLE
from posfleet.fleet.states import Status as TerminalStatus
from posfleet.iam.stepup import require_fresh_step_up
from posfleet.platform import counters
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from posfleet.platform.wake import after_commit

NUMBER_COUNTER = "closure_number"
MAX_TERMINALS = 200


class QuoteStale(Conflict):
    code = "quote_stale"
    title = gettext_lazy("The quote has changed.")


class AlreadyInCase(Conflict):
    code = "closure_already_requested"
    title = gettext_lazy("A closure is already under way for this terminal.")


# -- reading before asking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """What a requester is about to confirm: the merchant, its terminals, the quote."""

    merchant_id: int
    merchant_mid: str
    organisation_id: int
    organisation_path: str
    terminals: list[tuple[int, str, str]]  # (id, SN, status)
    quote: Quote


def closure_quote(*, actor: Actor, sns: list[str], kind: str = CaseKind.CLOSURE) -> Proposal:
    """The quote for closing the terminals ``sns`` (one merchant's): refused, with a clear reason and
    nothing written, when one is not visible (404), not closable or already in an open case. ``kind``
    ``agent_termination``: ending with the merchant's agent (the merchant asks; ADR 0023)."""
    if kind not in CaseKind.values:
        raise ValidationFailed(_("Choose what to end."), field="kind", allowed=list(CaseKind.values))
    user = actor.scope_user
    wanted = _clean_sns(sns)
    if user is not None:
        terminals = [fleet.terminal_for(user, sn) for sn in wanted]
    else:
        found = fleet.terminals_by_sn(wanted)
        if len(found) != len(wanted):
            raise NotFound()
        terminals = [found[sn] for sn in wanted]
    merchants = {t.merchant_id for t in terminals}
    if None in merchants:
        raise ValidationFailed(_("Only a merchant's terminal can be closed."), field="terminals")
    if len(merchants) != 1:
        raise ValidationFailed(_("Close the terminals of one merchant at a time."), field="terminals")
    merchant = terminals[0].merchant
    assert merchant is not None  # every terminal has one (checked above)
    actor.require("closure.request_closure", merchant)
    if kind == CaseKind.AGENT_TERMINATION:
        actor.require("closure.request_agent_termination", merchant)
    for terminal in terminals:
        if terminal.status not in CLOSABLE:
            raise TransitionNotAllowed(
                _("Terminal %(sn)s cannot be closed while it is “%(status)s”.")
                % {"sn": terminal.sn, "status": TerminalStatus(terminal.status).label},
                current_status=terminal.status,
            )
    busy = list(
        CaseTerminal.objects.filter(terminal__in=[t.pk for t in terminals], open=True).values_list(
            "terminal__sn", "case__number"
        )
    )
    if busy:
        raise AlreadyInCase(
            _("Terminal %(sn)s is already in closure case %(case)s.") % {"sn": busy[0][0], "case": busy[0][1]}
        )
    quote = build_quote(
        merchant_id=merchant.pk,
        organisation_id=merchant.organisation_id,
        terminals=[(t.pk, t.sn) for t in terminals],
        on=today(),
        agent=AgentTerms(
            code=merchant.agent.code,
            name=merchant.agent.name,
            review_days=settings.POSFLEET_CLOSURE["AGENT_REVIEW_DAYS"],
        )
        if kind == CaseKind.AGENT_TERMINATION
        else None,
    )
    return Proposal(
        merchant_id=merchant.pk,
        merchant_mid=merchant.mid,
        organisation_id=merchant.organisation_id,
        organisation_path=merchant.organisation.path,
        terminals=[(t.pk, t.sn, t.status) for t in terminals],
        quote=quote,
    )


def _clean_sns(sns: list[str]) -> list[str]:
    if not isinstance(sns, list) or not sns or not all(isinstance(s, str) and s.strip() for s in sns):
        raise ValidationFailed(_("Choose at least one terminal."), field="terminals")
    cleaned = list(dict.fromkeys(s.strip().upper()[:32] for s in sns))
    if len(cleaned) > MAX_TERMINALS:
        raise ValidationFailed(
            _("Close at most %(n)d terminals in one case.") % {"n": MAX_TERMINALS}, field="terminals"
        )
    return cleaned


# -- the case's own moves ------------------------------------------------------------------------------


def closure_request(
    *,
    actor: Actor,
    sns: list[str],
    reason: str,
    note: str = "",
    quote_digest: str,
    kind: str = CaseKind.CLOSURE,
) -> ClosureCase:
    """Ask for the closure of ``sns`` with ``reason``, confirming the quote whose digest is
    ``quote_digest``. The terminals stop transacting at once (deactivated). Needs a fresh step-up.
    ``kind`` ``agent_termination``: the merchant ends with its agent, which reviews within
    AGENT_REVIEW_DAYS (ADR 0023)."""
    note = clean_text(note or "", 500)
    _check_reason(actor, reason, note)
    proposal = closure_quote(actor=actor, sns=sns, kind=kind)  # visibility, permission, states, cases
    if not isinstance(quote_digest, str) or quote_digest != proposal.quote.digest:
        # Before the step-up: the requester reads the new quote before spending a code on it.
        raise QuoteStale(
            _("The amounts changed since you saw them: read the new quote and confirm again."),
            quote=proposal.quote.as_json(),
        )
    require_fresh_step_up(actor)
    at = now()
    with transaction.atomic():
        locked = terminals_lock(job_actor(), [sn for _pk, sn, _status in proposal.terminals])
        for _pk, sn, status in proposal.terminals:  # what the quote read is still what is there
            if sn not in locked or locked[sn].status != status:
                raise Conflict(_("Terminal %(sn)s changed meanwhile: try again.") % {"sn": sn})
        number = f"CL{at:%y%m}{counters.next_values(NUMBER_COUNTER)[0]:06d}"
        case = ClosureCase.objects.create(
            number=number,
            merchant_id=proposal.merchant_id,
            status=CaseStatus.REQUESTED,
            reason=reason,
            note=note,
            requested_by=actor.scope_user if actor.user is not None else None,
            requested_by_label=actor.label or (actor.user.username if actor.user else ""),
            requested_at=at,
            kind=kind,
            review_due_at=at
            + timedelta(
                days=settings.POSFLEET_CLOSURE[
                    "AGENT_REVIEW_DAYS" if kind == CaseKind.AGENT_TERMINATION else "REVIEW_DAYS"
                ]
            ),
            quote=proposal.quote.as_json(),
            quote_digest=proposal.quote.digest,
        )
        contract_of = active_contracts_of([pk for pk, _sn, _status in proposal.terminals])
        try:
            with transaction.atomic():
                CaseTerminal.objects.bulk_create(
                    [
                        CaseTerminal(
                            case=case,
                            terminal_id=pk,
                            contract_id=contract_of.get(pk),
                            status_before=status,
                        )
                        for pk, _sn, status in proposal.terminals
                    ]
                )
        except IntegrityError as exc:  # another request took one of them first
            raise AlreadyInCase() from exc
        for _pk, sn, status in proposal.terminals:
            if status != TerminalStatus.DEACTIVATED:
                fleet_deactivate(actor=job_actor(), sn=sn, reason="closure", note=case.number)
        record(
            actor,
            Entry(
                event_type=EventType.CLOSURE_REQUESTED,
                subject_type="closure",
                subject_id=case.number,
                reason=reason,
                note=note,
                after={
                    "status": case.status,
                    "kind": case.kind,
                    "terminals": [sn for _pk, sn, _s in proposal.terminals],
                    "quote_digest": case.quote_digest,
                    "expected_refund_fen": proposal.quote.expected_refund_fen,
                    "owed_fen": proposal.quote.owed_fen,
                },
            ),
        )
        progressed(case, "requested", reason=reason)
    return case


def _check_reason(actor: Actor, reason: str, note: str) -> None:
    allowed = [value for value, _label in ClosureReason.choices]
    if reason not in allowed:
        raise ValidationFailed(_("Choose a reason."), field="reason", allowed=allowed)
    if reason in STAFF_ONLY_REASONS and not (actor.is_system or actor.may("closure.review_closure")):
        raise ValidationFailed(_("Only the provider's staff close for that reason."), field="reason")
    if reason in NOTE_REQUIRED_REASONS and not note.strip():
        raise ValidationFailed(_("Say in the note what the other reason is."), field="note")


def closure_withdraw(*, actor: Actor, number: str, note: str = "") -> ClosureCase:
    """The requester's side takes the request back before review decides; terminals that were active
    before are active again."""
    note = clean_text(note or "", 500)
    with transaction.atomic():
        case = case_for(actor, number, lock=True)
        actor.require("closure.withdraw_closure", case.merchant)
        if case.kind == CaseKind.AGENT_TERMINATION:  # the agent does not withdraw an ending with itself
            actor.require("closure.request_agent_termination", case.merchant)
        move(case, CaseCommand.WITHDRAW, ended_at=now())
        restored = _release_terminals(case)
        audit_case(actor, case, EventType.CLOSURE_WITHDRAWN, note=note, restored=restored)
        progressed(case, "withdrawn")
    return case


def closure_decide(*, actor: Actor, number: str, decision: str, note: str = "") -> ClosureCase:
    """A reviewer approves (the steps start; needs a fresh step-up) or rejects (the terminals that
    were active are active again) — never the person who asked (maker-checker). The reviewer of an
    agent termination is the merchant's agent until the provider's staff take it over (ADR 0023)."""
    if decision not in ("approve", "reject"):
        raise ValidationFailed(
            _("Decide approve or reject."), field="decision", allowed=["approve", "reject"]
        )
    note = clean_text(note or "", 500)
    if decision == "reject" and not note.strip():
        raise ValidationFailed(_("Say why the closure is rejected."), field="note")
    with transaction.atomic():
        case = case_for(actor, number, lock=True)
        user = actor.require_person("closure.decide_case", case)
        if case.requested_by_id is not None and case.requested_by_id == user.pk:
            raise PermissionDenied(_("Someone other than the requester decides (maker-checker)."))
        command = CaseCommand.APPROVE if decision == "approve" else CaseCommand.REJECT
        if next_state(case.status, command) is None:
            move(case, command)  # raises the clear refusal
        if command == CaseCommand.APPROVE:
            require_fresh_step_up(actor)
        at = now()
        move(
            case,
            command,
            reviewed_by=user,
            reviewed_at=at,
            review_note=note,
            **({} if command == CaseCommand.APPROVE else {"ended_at": at}),
        )
        if command == CaseCommand.APPROVE:
            CaseStep.objects.bulk_create(
                [CaseStep(case=case, name=spec.name, key=f"{case.number}:{spec.name}") for spec in STEPS]
            )
            audit_case(actor, case, EventType.CLOSURE_APPROVED, note=note)
            progressed(case, "approved")
            after_commit("closure.advance", case.pk, once=True)
        else:
            restored = _release_terminals(case)
            audit_case(actor, case, EventType.CLOSURE_REJECTED, note=note, restored=restored)
            progressed(case, "rejected")
    return case


def _release_terminals(case: ClosureCase) -> list[str]:
    """A case that ended without closing: its terminals leave it, and those that were active before are
    reactivated (the others stay as they are: a suspended or deactivated terminal is not restarted)."""
    restored = []
    rows = list(CaseTerminal.objects.filter(case=case, open=True).select_related("terminal"))
    CaseTerminal.objects.filter(case=case, open=True).update(open=False)
    for row in rows:
        if row.status_before == TerminalStatus.ACTIVE and row.terminal.status == TerminalStatus.DEACTIVATED:
            terminal_reactivate(actor=job_actor(), sn=row.terminal.sn, note=case.number)
            restored.append(row.terminal.sn)
    return restored


def closure_report_shipment(*, actor: Actor, number: str, tracking_no: str) -> ClosureCase:
    """The merchant (or its agent) gives the parcel's tracking number."""
    tracking_no = (tracking_no or "").strip()
    if not (4 <= len(tracking_no) <= 64) or not tracking_no.replace("-", "").isalnum():
        raise ValidationFailed(
            _("Give the tracking number as printed (4 to 64 letters and digits)."), field="tracking_no"
        )
    with transaction.atomic():
        case = case_for(actor, number, lock=True)
        actor.require("closure.report_shipment", case.merchant)
        step = CaseStep.objects.filter(case=case, name=StepName.RETURN).first()
        if case.status != CaseStatus.RUNNING or step is None or step.state != StepState.WAITING:
            raise TransitionNotAllowed(_("The device is not expected back yet."), current_status=case.status)
        ClosureCase.objects.filter(pk=case.pk).update(tracking_no=tracking_no)
        case.tracking_no = tracking_no
        audit_case(actor, case, EventType.CLOSURE_STEP_WAITING, step="return", tracking_no=tracking_no)
    return case


def closure_step_retry(*, actor: Actor, number: str, step: str) -> CaseStep:
    """Start a step that needs attention (failed) again, after a person dealt with the cause."""
    with transaction.atomic():
        case = case_for(actor, number, lock=True)
        actor.require("closure.retry_step", case.merchant)
        row = CaseStep.objects.select_for_update().filter(case=case, name=step).first()
        if row is None:
            raise NotFound()
        if row.state != StepState.FAILED:
            raise TransitionNotAllowed(
                _("Only a step that needs attention is started again."), current_status=row.state
            )
        CaseStep.objects.filter(pk=row.pk, state=StepState.FAILED).update(
            state=StepState.PENDING, next_attempt_at=None, message=""
        )
        audit_case(actor, case, EventType.CLOSURE_STEP_RETRIED, step=step)
        after_commit("closure.advance", case.pk, once=True)
    row.refresh_from_db()
    return row


# -- the review clock ----------------------------------------------------------------------------------


def review_remind_sweep(*, actor: Actor) -> dict[str, int]:
    """Remind the reviewers of cases due within REMIND_BEFORE_HOURS, and escalate (to the provider's
    admins and the merchant's agent) cases past their review clock — once each."""
    at = now()
    soon = at + timedelta(hours=settings.POSFLEET_CLOSURE["REMIND_BEFORE_HOURS"])
    counts = {"reminded": 0, "escalated": 0}
    due = ClosureCase.objects.filter(status=CaseStatus.REQUESTED, review_due_at__lte=soon)
    for case_id in list(due.filter(review_reminded_at__isnull=True).values_list("pk", flat=True)):
        with transaction.atomic():
            case = (
                ClosureCase.objects.select_for_update()
                .select_related("merchant__organisation")
                .get(pk=case_id)
            )
            if case.review_reminded_at is not None or case.status != CaseStatus.REQUESTED:
                continue
            ClosureCase.objects.filter(pk=case.pk).update(review_reminded_at=at)
            audit_case(actor, case, EventType.CLOSURE_REMINDED)
            progressed(case, "review_reminded")
            counts["reminded"] += 1
    late = ClosureCase.objects.filter(
        status=CaseStatus.REQUESTED, review_due_at__lt=at, review_escalated_at__isnull=True
    )
    for case_id in list(late.values_list("pk", flat=True)):
        with transaction.atomic():
            case = (
                ClosureCase.objects.select_for_update()
                .select_related("merchant__organisation")
                .get(pk=case_id)
            )
            if case.review_escalated_at is not None or case.status != CaseStatus.REQUESTED:
                continue
            ClosureCase.objects.filter(pk=case.pk).update(review_escalated_at=at)
            audit_case(actor, case, EventType.CLOSURE_ESCALATED, why="review_late")
            progressed(case, "escalated", reason="review_late")
            counts["escalated"] += 1
    return counts
