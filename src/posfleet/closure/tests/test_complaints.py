"""Complaints (投诉; ADR 0023): a merchant's grievance addressed to its agent or the provider — its life
through the table, who sees and handles it, the clock and its sweep (time travel), and every refusal
changing nothing."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from posfleet.audit.models import AuditEvent
from posfleet.closure.complaint_selectors import complaint_view, complaints_visible_to, filter_complaints
from posfleet.closure.complaint_states import (
    FINAL,
    TRANSITIONS,
    ComplaintCommand,
    ComplaintStatus,
    to_mermaid,
)
from posfleet.closure.models import ClosureCase, Complaint
from posfleet.closure.services import (
    complaint_acknowledge,
    complaint_close,
    complaint_escalate,
    complaint_raise,
    complaint_reject,
    complaint_reopen,
    complaint_resolve,
    complaint_sla_sweep,
    complaint_take_over,
)
from posfleet.closure.tests.conftest import closable, person
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    DomainError,
    GuardFailed,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from posfleet.platform.models import OutboxMessage
from posfleet.testing.refusals import assert_nothing_recorded

SHANGHAI = ZoneInfo("Asia/Shanghai")
SWEEP = Actor.job("complaint_sla_sweep")
ANSWER = "We replaced the paper roll and called you."


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SHANGHAI)


def raise_one(world, to: str = "agent", who: str = "merchant_a", **more) -> Complaint:
    return complaint_raise(
        actor=person(world, who),
        category=more.pop("category", "device"),
        subject=more.pop("subject", "Printer jams"),
        text=more.pop("text", "The terminal's printer jams on every receipt."),
        to=to,
        **more,
    )


def refused(error: type[DomainError], call) -> DomainError:
    with (
        assert_nothing_recorded(Complaint.objects.all(), ClosureCase.objects.all()),
        pytest.raises(error) as caught,
    ):
        call()
    return caught.value


def status(complaint: Complaint) -> str:
    complaint.refresh_from_db()
    return complaint.status


# -- the table -------------------------------------------------------------------------------------------


def test_table_every_state_reachable_and_closed_is_final():
    reached = {ComplaintStatus.OPEN}
    changed = True
    while changed:
        changed = False
        for (source, _command), target in TRANSITIONS.items():
            if source in reached and target not in reached:
                reached.add(target)
                changed = True
    assert reached == set(ComplaintStatus)
    assert not [key for key in TRANSITIONS if key[0] in FINAL]
    assert "open --> acknowledged: acknowledge" in to_mermaid()
    assert {command for _s, command in TRANSITIONS} == set(ComplaintCommand)


# -- the life --------------------------------------------------------------------------------------------


def test_life_answered_by_the_agent_reopened_rejected_escalated_resolved_closed(world):
    with time_machine.travel(at(6), tick=False) as clock:
        complaint = raise_one(world)
        assert complaint.number.startswith("CP2612")
        assert (complaint.status, complaint.addressed_to_id) == ("open", world.agent_a.organisation_id)
        assert complaint.due_at == at(9)
        complaint_acknowledge(actor=person(world, "agent_a"), number=complaint.number)
        complaint.refresh_from_db()
        assert (complaint.status, complaint.due_at) == ("acknowledged", at(13))  # 7 days to answer
        clock.move_to(at(7))
        complaint_resolve(actor=person(world, "agent_a"), number=complaint.number, resolution=ANSWER)
        assert status(complaint) == "resolved"
        complaint_reopen(actor=person(world, "merchant_a"), number=complaint.number, note="still jams")
        complaint.refresh_from_db()
        assert (complaint.status, complaint.reopened, complaint.due_at) == ("open", 1, at(10))
        # A sub-agent's parent handles what is addressed below it; here the agent itself rejects.
        complaint_reject(actor=person(world, "agent_a"), number=complaint.number, resolution="Paper misuse.")
        assert status(complaint) == "rejected"
        complaint_escalate(actor=person(world, "merchant_a"), number=complaint.number, note="unfair")
        complaint.refresh_from_db()
        assert (complaint.status, complaint.escalation, complaint.due_at) == ("escalated", "merchant", at(10))
        complaint_acknowledge(actor=person(world, "reviewer"), number=complaint.number)
        complaint_resolve(actor=person(world, "reviewer"), number=complaint.number, resolution="Replaced.")
        complaint_close(actor=person(world, "merchant_a"), number=complaint.number)
        assert status(complaint) == "closed"
        refused(
            TransitionNotAllowed,
            lambda: complaint_reopen(actor=person(world, "merchant_a"), number=complaint.number, note="x"),
        )
    assert list(
        AuditEvent.objects.filter(subject_type="complaint", subject_id=complaint.number)
        .order_by("seq")
        .values_list("event_type", flat=True)
    ) == [
        "complaint.raised",
        "complaint.acknowledged",
        "complaint.resolved",
        "complaint.reopened",
        "complaint.rejected",
        "complaint.escalated",
        "complaint.acknowledged",
        "complaint.resolved",
        "complaint.closed",
    ]
    assert OutboxMessage.objects.filter(event_type="complaint.progressed").count() == 9


def test_the_merchant_withdraws_an_open_complaint(world):
    complaint = raise_one(world, to="provider")
    complaint_close(actor=person(world, "merchant_a"), number=complaint.number)
    assert status(complaint) == "closed"
    event = AuditEvent.objects.filter(subject_type="complaint", event_type="complaint.closed").get()
    assert event.reason == "withdrawn"


# -- who sees and handles --------------------------------------------------------------------------------


def test_visibility_matrix(world):
    to_agent = raise_one(world)
    to_provider = raise_one(world, to="provider", category="agent", subject="My agent keeps my deposit")
    for_a1 = raise_one(world, who="admin", mid=world.merchant_a1.mid)  # recorded by the admin
    assert for_a1.addressed_to_id == world.agent_a1.organisation_id
    expected = {
        "admin": {to_agent, to_provider, for_a1},
        "reviewer": {to_agent, to_provider, for_a1},
        "warehouse": {to_agent, to_provider, for_a1},
        "agent_a": {to_agent, for_a1},  # its own, and its sub-agent's; not what goes to the provider
        "agent_a1": {for_a1},
        "agent_b": set(),
        "merchant_a": {to_agent, to_provider},
        "merchant_b": set(),
    }
    for name, visible in expected.items():
        user = world.users[name]
        assert set(complaints_visible_to(user)) == visible, name
        for complaint in {to_agent, to_provider, for_a1} - visible:
            refused(
                NotFound,
                lambda user=name, number=complaint.number: complaint_acknowledge(
                    actor=person(world, user), number=number
                ),
            )
    # Handling: the agent addressed (or above) while it holds it; the provider's reviewers after.
    complaint_acknowledge(actor=person(world, "agent_a"), number=for_a1.number)
    for name in ("merchant_a", "reviewer", "admin", "warehouse"):
        refused(
            PermissionDenied,
            lambda name=name: complaint_acknowledge(actor=person(world, name), number=to_agent.number),
        )
    refused(
        PermissionDenied,
        lambda: complaint_resolve(
            actor=person(world, "warehouse"), number=to_provider.number, resolution="x"
        ),
    )
    complaint_acknowledge(actor=person(world, "reviewer"), number=to_provider.number)
    # Only the merchant closes, reopens; agents never escalate.
    refused(
        PermissionDenied,
        lambda: complaint_close(actor=person(world, "agent_a"), number=to_agent.number),
    )
    refused(
        PermissionDenied,
        lambda: complaint_escalate(actor=person(world, "agent_a"), number=to_agent.number),
    )
    refused(
        PermissionDenied,
        lambda: complaint_close(actor=person(world, "admin"), number=to_agent.number),
    )
    view = complaint_view(world.users["agent_a"], Complaint.objects.get(pk=to_agent.pk))
    assert view.actions == ["acknowledge", "resolve", "reject"]
    assert view.handler == "agent"
    view = complaint_view(world.users["merchant_a"], Complaint.objects.get(pk=to_agent.pk))
    assert view.actions == ["escalate", "close"]


def test_the_agent_is_not_told_of_a_complaint_to_the_provider(world):
    to_provider = raise_one(world, to="provider", category="agent")
    to_agent = raise_one(world)
    told = dict(
        OutboxMessage.objects.filter(event_type="complaint.progressed").values_list(
            "aggregate_id", "organisation_ids"
        )
    )
    assert told[to_provider.number] == [world.provider.pk, world.merchant_a.organisation_id]
    assert world.agent_a.organisation_id in told[to_agent.number]


def test_mine_open_escalated_and_late_views(world):
    with time_machine.travel(at(6), tick=False) as clock:
        first = raise_one(world)
        second = raise_one(world, to="provider")
        complaint_resolve(actor=person(world, "agent_a"), number=first.number, resolution=ANSWER)
        clock.move_to(at(10))
        merchant, agent, reviewer = (world.users[n] for n in ("merchant_a", "agent_a", "reviewer"))

        def numbers(user, view):
            return {c.number for c in filter_complaints(complaints_visible_to(user), view, user)}

        assert numbers(merchant, "mine") == {first.number}  # answered: the merchant's turn
        assert numbers(agent, "mine") == set()
        assert numbers(reviewer, "mine") == {second.number}
        assert numbers(merchant, "open") == {second.number}
        assert numbers(reviewer, "late") == {second.number}  # due on the 9th
        assert numbers(reviewer, "escalated") == set()
        complaint_escalate(actor=person(world, "merchant_a"), number=first.number)
        assert numbers(reviewer, "escalated") == {first.number}
        assert numbers(agent, "mine") == set()


# -- refusals change nothing -----------------------------------------------------------------------------


def test_refusals(world):
    setup = closable(world)
    merchant = person(world, "merchant_a")
    refused(
        ValidationFailed,
        lambda: complaint_raise(actor=merchant, category="weather", subject="x", text="y"),
    )
    refused(
        ValidationFailed, lambda: complaint_raise(actor=merchant, category="agent", subject=" ", text="y")
    )
    refused(ValidationFailed, lambda: complaint_raise(actor=merchant, category="agent", subject="x", text=""))
    refused(
        ValidationFailed,
        lambda: complaint_raise(actor=merchant, category="agent", subject="x", text="y", to="police"),
    )
    # Agents and the provider's reviewers do not raise; the admin names the merchant.
    refused(
        PermissionDenied,
        lambda: complaint_raise(
            actor=person(world, "agent_a"), category="agent", subject="x", text="y", mid=world.merchant_a.mid
        ),
    )
    refused(
        ValidationFailed,
        lambda: complaint_raise(actor=person(world, "admin"), category="agent", subject="x", text="y"),
    )
    # Another merchant's case, or naming another merchant, is not found.
    digest_actor = person(world, "merchant_a")
    from posfleet.closure.services import closure_quote, closure_request

    digest = closure_quote(actor=digest_actor, sns=[setup.terminal.sn]).quote.digest
    case = closure_request(actor=digest_actor, sns=[setup.terminal.sn], reason="cost", quote_digest=digest)
    refused(
        NotFound,
        lambda: complaint_raise(
            actor=person(world, "merchant_b"),
            category="closure",
            subject="x",
            text="y",
            case_number=case.number,
        ),
    )
    refused(
        NotFound,
        lambda: complaint_raise(
            actor=person(world, "merchant_b"),
            category="other",
            subject="x",
            text="y",
            mid=world.merchant_a.mid,
        ),
    )
    complaint = raise_one(world, case_number=case.number, category="closure")
    refused(
        ValidationFailed,
        lambda: complaint_resolve(actor=person(world, "agent_a"), number=complaint.number, resolution="  "),
    )
    refused(
        ValidationFailed,
        lambda: complaint_reopen(actor=merchant, number=complaint.number, note=""),
    )
    refused(
        TransitionNotAllowed,
        lambda: complaint_reopen(actor=merchant, number=complaint.number, note="again"),
    )
    # Taking over needs the provider to hold the complaint, and an agent termination waiting.
    refused(
        GuardFailed,
        lambda: complaint_take_over(actor=person(world, "reviewer"), number=complaint.number),
    )
    refused(
        PermissionDenied,
        lambda: complaint_take_over(actor=person(world, "agent_a"), number=complaint.number),
    )
    complaint_escalate(actor=merchant, number=complaint.number)
    error = refused(
        GuardFailed,
        lambda: complaint_take_over(actor=person(world, "reviewer"), number=complaint.number),
    )
    assert error.params["guard"] == "case_awaits_agent"  # a plain closure: the provider reviews it already
    assert refused(TransitionNotAllowed, lambda: complaint_escalate(actor=merchant, number=complaint.number))
    to_provider = raise_one(world, to="provider")  # the provider holds it already
    error = refused(GuardFailed, lambda: complaint_escalate(actor=merchant, number=to_provider.number))
    assert error.params["guard"] == "with_agent"
    # A read-only token never writes.
    token = Actor(kind="token", user=world.users["merchant_a"], read_only=True)
    refused(PermissionDenied, lambda: complaint_close(actor=token, number=complaint.number))


# -- the clock -------------------------------------------------------------------------------------------


def test_sweep_escalates_what_the_agent_let_run_late_once(world):
    with time_machine.travel(at(6), tick=False) as clock:
        waiting = raise_one(world)  # acknowledge by the 9th, 10:00
        in_hand = raise_one(world, subject="Fee charged twice")
        to_provider = raise_one(world, to="provider")
        clock.move_to(at(7))
        complaint_acknowledge(actor=person(world, "agent_a"), number=in_hand.number)  # answer by the 14th

        clock.move_to(at(9, 9, 59))
        with assert_nothing_recorded(Complaint.objects.all()):
            assert complaint_sla_sweep(actor=SWEEP) == {"escalated": 0, "raised": 0}
        clock.move_to(at(9, 10, 1))
        assert complaint_sla_sweep(actor=SWEEP) == {"escalated": 1, "raised": 0}
        waiting.refresh_from_db()
        assert (waiting.status, waiting.escalation, waiting.escalated_at) == (
            "escalated",
            "late",
            at(9, 10, 1),
        )
        with assert_nothing_recorded(Complaint.objects.all()):
            assert complaint_sla_sweep(actor=SWEEP) == {"escalated": 0, "raised": 0}

        clock.move_to(at(14, 10, 1))
        assert complaint_sla_sweep(actor=SWEEP) == {"escalated": 1, "raised": 0}
        in_hand.refresh_from_db()
        assert (in_hand.status, in_hand.escalation) == ("escalated", "late")
        # What the provider holds is never escalated further: it shows as late.
        assert status(to_provider) == "open"
        view = complaint_view(world.users["reviewer"], Complaint.objects.get(pk=to_provider.pk))
        assert view.overdue
        assert view.hours_left is not None
        assert view.hours_left < 0
    events = list(
        AuditEvent.objects.filter(event_type="complaint.escalated")
        .order_by("seq")
        .values_list("actor_label", "reason")
    )
    assert events == [("complaint_sla_sweep", "late"), ("complaint_sla_sweep", "late")]
