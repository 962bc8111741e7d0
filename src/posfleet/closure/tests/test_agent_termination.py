"""Ending with the agent (DOMAIN.md workflow 6, article 004; ADR 0023): the quote adds the agent's terms;
the merchant's agent reviews within its own clock; when it does not, a complaint goes to the provider
(raised by the merchant, or by the sweep), whose staff take the case over and decide; the case then runs
as any closure. With time travel, and every refusal changing nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase, Complaint
from posfleet.closure.runner import advance
from posfleet.closure.services import (
    closure_decide,
    closure_quote,
    closure_request,
    complaint_acknowledge,
    complaint_close,
    complaint_raise,
    complaint_resolve,
    complaint_sla_sweep,
    complaint_take_over,
)
from posfleet.closure.states import CaseKind, CaseStatus
from posfleet.closure.tests.conftest import closable, person
from posfleet.fleet.models import Terminal
from posfleet.platform.context import Actor
from posfleet.platform.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from posfleet.platform.models import OutboxMessage
from posfleet.testing.refusals import assert_nothing_recorded

SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = "agent_termination"
SWEEP = Actor.job("complaint_sla_sweep")


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SHANGHAI)


def ask(world, setup, who: str = "merchant_a") -> ClosureCase:
    actor = person(world, who)
    digest = closure_quote(actor=actor, sns=[setup.terminal.sn], kind=AT).quote.digest
    return closure_request(
        actor=actor, sns=[setup.terminal.sn], reason="unsatisfied", quote_digest=digest, kind=AT
    )


def refused(error: type[DomainError], call, *more):
    subjects = (
        ClosureCase.objects.all(),
        CaseTerminal.objects.all(),
        CaseStep.objects.all(),
        Complaint.objects.all(),
        Terminal.objects.all(),
        *more,
    )
    with assert_nothing_recorded(*subjects), pytest.raises(error) as caught:
        call()
    return caught.value


def test_quote_adds_the_agents_terms_and_who_holds_the_deposit(world):
    with time_machine.travel(at(6), tick=False):
        setup = closable(world)
        merchant = person(world, "merchant_a")
        plain = closure_quote(actor=merchant, sns=[setup.terminal.sn]).quote
        ending = closure_quote(actor=merchant, sns=[setup.terminal.sn], kind=AT).quote
    lines = {line.code: line for line in ending.lines}
    assert lines["agent_review"].params == {"agent": "AG-A", "agent_name": "Agent A", "days": 5}
    assert lines["agent_clauses"].terminal == setup.terminal.sn
    assert lines["agent_clauses"].params == {
        "agent": "AG-A",
        "contract": setup.contract.pk,
        "rule": "remaining_months",
        "min_term_months": 12,
        "months_served": 6,
    }
    assert lines["agent_deposit"].amount_fen == 0
    assert {line.effect for line in ending.lines if line.code.startswith("agent_")} == {"info"}
    # The money is the same: the deposit is the provider's to refund, whoever ends what.
    assert (ending.owed_fen, ending.deposit_held_fen, ending.expected_refund_fen) == (
        plain.owed_fen,
        plain.deposit_held_fen,
        plain.expected_refund_fen,
    )
    assert ending.digest != plain.digest
    assert not {line.code for line in plain.lines} & {"agent_review", "agent_clauses", "agent_deposit"}


def test_whole_journey_agent_silent_complaint_escalated_provider_takes_over(world):
    with time_machine.travel(at(6), tick=False) as clock:
        setup = closable(world)
        case = ask(world, setup)
        assert case.kind == CaseKind.AGENT_TERMINATION
        assert case.review_due_at == at(11)  # the agent's own clock: 5 days
        assert Terminal.objects.get(pk=setup.terminal.pk).status == "deactivated"
        # The provider's reviewer is not the reviewer of an agent termination (yet).
        refused(
            PermissionDenied,
            lambda: closure_decide(actor=person(world, "reviewer"), number=case.number, decision="approve"),
        )

        clock.move_to(at(9))
        complaint = complaint_raise(
            actor=person(world, "merchant_a"),
            category="agent",
            subject="My agent does not answer",
            text="I asked to end with my agent three days ago and nobody answers.",
            case_number=case.number,
        )
        assert (complaint.status, complaint.addressed_to_id) == ("open", world.agent_a.organisation_id)
        assert complaint.due_at == at(12)

        clock.move_to(at(11, 9, 59))  # the agent's review clock has not run out yet
        with assert_nothing_recorded(Complaint.objects.all(), ClosureCase.objects.all()):
            assert complaint_sla_sweep(actor=SWEEP) == {"escalated": 0, "raised": 0}

        clock.move_to(at(11, 10, 1))  # it has: the sweep sends the merchant's complaint to the provider
        assert complaint_sla_sweep(actor=SWEEP) == {"escalated": 1, "raised": 0}
        complaint.refresh_from_db()
        assert (complaint.status, complaint.escalation) == ("escalated", "case_review_late")
        assert complaint.escalated_at == at(11, 10, 1)
        assert complaint.due_at == at(14, 10, 1)  # the provider's clock to acknowledge
        with assert_nothing_recorded(Complaint.objects.all(), ClosureCase.objects.all()):
            assert complaint_sla_sweep(actor=SWEEP) == {"escalated": 0, "raised": 0}  # once
        # The agent no longer handles the complaint: the provider does.
        refused(
            PermissionDenied,
            lambda: complaint_acknowledge(actor=person(world, "agent_a"), number=complaint.number),
        )

        clock.move_to(at(12))
        complaint_take_over(actor=person(world, "reviewer"), number=complaint.number, note="agent silent")
        case.refresh_from_db()
        complaint.refresh_from_db()
        assert case.taken_over_by == world.users["reviewer"]
        assert case.taken_over_at == at(12)
        assert case.review_due_at == at(19)  # the provider's review clock
        assert complaint.status == "acknowledged"
        assert complaint.acknowledged_by == world.users["reviewer"]
        # Taken over: the agent does not decide any more, and it cannot be taken over twice.
        refused(
            PermissionDenied,
            lambda: closure_decide(actor=person(world, "agent_a"), number=case.number, decision="approve"),
        )

        closure_decide(actor=person(world, "admin"), number=case.number, decision="approve")
        advance(case.pk)
        case.refresh_from_db()
        assert case.status == CaseStatus.RUNNING
        assert case.reviewed_by == world.users["admin"]
        steps = dict(CaseStep.objects.filter(case=case).values_list("name", "state"))
        assert steps["contract"] == "done"
        assert Terminal.objects.get(pk=setup.terminal.pk).status == "deregistered"

        complaint_resolve(
            actor=person(world, "reviewer"),
            number=complaint.number,
            resolution="We took your case over and approved it; your terminal is being closed.",
        )
        complaint_close(actor=person(world, "merchant_a"), number=complaint.number)

    complaint.refresh_from_db()
    assert complaint.status == "closed"
    events = list(
        AuditEvent.objects.filter(subject_type="complaint", subject_id=complaint.number)
        .order_by("seq")
        .values_list("event_type", "reason")
    )
    assert events == [
        ("complaint.raised", "agent"),
        ("complaint.escalated", "case_review_late"),
        ("complaint.acknowledged", "take_over"),
        ("complaint.resolved", ""),
        ("complaint.closed", "answered"),
    ]
    case_events = list(
        AuditEvent.objects.filter(subject_type="closure", subject_id=case.number)
        .order_by("seq")
        .values_list("event_type", flat=True)
    )
    assert case_events[:3] == ["closure.requested", "closure.taken_over", "closure.approved"]
    steps_told = list(
        OutboxMessage.objects.filter(event_type="complaint.progressed", aggregate_id=complaint.number)
        .order_by("id")
        .values_list("payload__step", "payload__handler")
    )
    assert steps_told == [
        ("raised", "agent"),
        ("escalated", "provider"),
        ("taken_over", "provider"),
        ("resolved", "provider"),
        ("closed", "provider"),
    ]
    case_told = list(
        OutboxMessage.objects.filter(event_type="closure.progressed", aggregate_id=case.number)
        .order_by("id")
        .values_list("payload__step", flat=True)
    )
    assert case_told[:3] == ["requested", "taken_over", "approved"]
    assert verify_chain().ok


def test_sweep_raises_the_complaint_when_the_merchant_did_not(world):
    with time_machine.travel(at(6), tick=False) as clock:
        setup = closable(world)
        case = ask(world, setup)
        clock.move_to(at(11, 11))
        assert complaint_sla_sweep(actor=SWEEP) == {"escalated": 1, "raised": 1}
        complaint = Complaint.objects.get(case=case)
        assert complaint.merchant_id == world.merchant_a.pk
        assert (complaint.status, complaint.escalation, complaint.category) == (
            "escalated",
            "case_review_late",
            "closure",
        )
        assert complaint.raised_by is None
        assert complaint.raised_by_label == "complaint_sla_sweep"
        with assert_nothing_recorded(Complaint.objects.all(), ClosureCase.objects.all()):
            assert complaint_sla_sweep(actor=SWEEP) == {"escalated": 0, "raised": 0}
        # The merchant sees it and the provider takes over from it.
        merchant_sees = person(world, "merchant_a")
        assert merchant_sees.may("closure.view_complaint", complaint)
        complaint_take_over(actor=person(world, "reviewer"), number=complaint.number)
        closure_decide(
            actor=person(world, "reviewer"), number=case.number, decision="reject", note="keep the agent"
        )
    case.refresh_from_db()
    assert case.status == CaseStatus.REJECTED
    assert Terminal.objects.get(pk=setup.terminal.pk).status == "active"  # restored
    assert list(
        AuditEvent.objects.filter(subject_type="complaint", subject_id=complaint.number)
        .order_by("seq")
        .values_list("event_type", flat=True)
    ) == ["complaint.raised", "complaint.escalated", "complaint.acknowledged"]


def test_the_agent_decides_within_its_clock(world):
    with time_machine.travel(at(6), tick=False) as clock:
        setup = closable(world)
        case = ask(world, setup)
        clock.move_to(at(8))
        closure_decide(actor=person(world, "agent_a"), number=case.number, decision="approve")
        case.refresh_from_db()
        assert (case.status, case.reviewed_by) == (CaseStatus.RUNNING, world.users["agent_a"])
        clock.move_to(at(20))
        with assert_nothing_recorded(Complaint.objects.all(), ClosureCase.objects.all()):
            assert complaint_sla_sweep(actor=SWEEP) == {"escalated": 0, "raised": 0}


def test_who_may_ask_see_and_decide(world):
    with time_machine.travel(at(6), tick=False):
        setup = closable(world)
        sn = setup.terminal.sn
        # The agent does not ask to end with itself; the merchant does (or the admin for it).
        refused(PermissionDenied, lambda: closure_quote(actor=person(world, "agent_a"), sns=[sn], kind=AT))
        refused(
            ValidationFailed, lambda: closure_quote(actor=person(world, "merchant_a"), sns=[sn], kind="x")
        )
        case = ask(world, setup)
        for outsider in ("agent_b", "agent_a1", "merchant_b"):
            refused(
                NotFound,
                lambda outsider=outsider: closure_decide(
                    actor=person(world, outsider), number=case.number, decision="approve"
                ),
            )
        for staff in ("reviewer", "admin", "warehouse"):
            refused(
                PermissionDenied,
                lambda staff=staff: closure_decide(
                    actor=person(world, staff), number=case.number, decision="reject", note="no"
                ),
            )
        refused(
            PermissionDenied,
            lambda: closure_decide(actor=person(world, "merchant_a"), number=case.number, decision="approve"),
        )
        # No complaint: nothing to take over from; the agent may still decide late.
        assert not Complaint.objects.exists()
        assert person(world, "agent_a").may("closure.decide_case", case)


def test_plain_closures_keep_their_reviewers(world):
    with time_machine.travel(at(6), tick=False):
        setup = closable(world)
        actor = person(world, "merchant_a")
        digest = closure_quote(actor=actor, sns=[setup.terminal.sn]).quote.digest
        case = closure_request(actor=actor, sns=[setup.terminal.sn], reason="cost", quote_digest=digest)
        assert case.kind == CaseKind.CLOSURE
        assert case.review_due_at == at(6) + timedelta(days=7)
        refused(
            PermissionDenied,
            lambda: closure_decide(actor=person(world, "agent_a"), number=case.number, decision="approve"),
        )
        closure_decide(actor=person(world, "reviewer"), number=case.number, decision="approve")
    case.refresh_from_db()
    assert case.status == CaseStatus.RUNNING
