"""Plan change requests (issue 14, ADR 0027): asked by the merchant or its agent, approved by the admin
through the plan assignment service (the plan applies from the day asked for, with its audit rows and
outbox events), rejected or withdrawn without changing anything else; another tenant's is not there."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine

from posfleet.audit.models import AuditEvent
from posfleet.billing.errors import PlanChangeWaiting
from posfleet.billing.models import PlanAssignment, PlanChangeRequest
from posfleet.billing.plan_change_states import FINAL, INITIAL, TRANSITIONS, PlanChangeStatus, commands_from
from posfleet.billing.services.plan_changes import (
    plan_change_approve,
    plan_change_reject,
    plan_change_request,
    plan_change_withdraw,
)
from posfleet.billing.services.plans import PlanBook, RuleSpec, plan_create
from posfleet.billing.tests.test_statements import SH
from posfleet.platform.context import Actor
from posfleet.platform.errors import NotFound, PermissionDenied, TransitionNotAllowed, ValidationFailed
from posfleet.platform.models import OutboxMessage
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import SYSTEM
from posfleet.testing.refusals import assert_nothing_recorded

TODAY = datetime(2026, 11, 20, 10, 0, tzinfo=SH)
FROM = date(2026, 12, 1)


@pytest.fixture
def setup(world):
    with time_machine.travel(TODAY, tick=False):
        on_standard_plan(world.merchant_a)
        lite = plan_create(
            actor=SYSTEM,
            code="lite",
            name="Lite",
            effective_from=date(2025, 1, 1),
            rules={"credit": RuleSpec(Decimal("0.004")), "qr": RuleSpec(Decimal("0.003"))},
        )
    return world, lite


def who(world, name: str) -> Actor:  # type: ignore[no-untyped-def]
    return Actor.for_user(world.user(name))


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(TODAY, tick=False):
        yield


def test_the_table_every_state_reachable_and_final_states_have_no_exit():
    reached = {INITIAL} | set(TRANSITIONS.values())
    assert reached == set(PlanChangeStatus)
    assert all(commands_from(state) == [] for state in FINAL)


def test_request_then_approve_applies_the_plan_from_the_day_through_plan_assignment(setup):
    world, lite = setup
    merchant = world.merchant_a
    asked = plan_change_request(
        actor=who(world, "merchant_a"), merchant=merchant, to_plan=lite, effective_from=FROM, note="cheaper"
    )
    assert (asked.status, asked.from_plan.code, asked.requested_by.username) == (
        "requested",
        "standard",
        "merchant_a",
    )
    assert not PlanAssignment.objects.filter(plan=lite).exists()  # nothing changes until decided

    done = plan_change_approve(actor=who(world, "admin"), request_id=asked.pk)
    done.refresh_from_db()
    assignment = PlanAssignment.objects.get(plan=lite)
    assert (done.status, done.decided_by.username, done.assignment_id) == ("approved", "admin", assignment.pk)
    assert (assignment.merchant_id, assignment.effective_from, assignment.terminal_id) == (
        merchant.pk,
        FROM,
        None,
    )
    book = PlanBook([merchant.pk])
    assert book.version_for(merchant.pk, None, date(2026, 11, 30)).plan.code == "standard"
    assert book.version_for(merchant.pk, None, FROM).plan.code == "lite"
    trail = list(
        AuditEvent.objects.filter(event_type__startswith="plan")
        .order_by("seq")
        .values_list("event_type", "subject_id")
    )
    assert trail[-3:] == [
        ("plan_change.requested", str(asked.pk)),
        ("plan.assigned", merchant.mid),  # written by plan_assign, in the approval's transaction
        ("plan_change.approved", str(asked.pk)),
    ]
    events = list(
        OutboxMessage.objects.filter(event_type="plan_change.progressed")
        .order_by("id")
        .values_list("payload", flat=True)
    )
    assert [(e["step"], e["to_plan"], e["applies_from"]) for e in events] == [
        ("requested", "lite", ""),
        ("approved", "lite", "2026-12-01"),
    ]


def test_refusals_reject_and_withdraw_change_nothing_else(setup):
    world, lite = setup
    merchant = world.merchant_a
    asked = plan_change_request(
        actor=who(world, "agent_a"), merchant=merchant, to_plan=lite, effective_from=FROM
    )
    assignments = PlanAssignment.objects.all()
    # a second one while it waits, the merchant deciding, the agent deciding its own, no reason to reject
    with assert_nothing_recorded(asked, assignments, PlanChangeRequest.objects.all()):
        with pytest.raises(PlanChangeWaiting):
            plan_change_request(
                actor=who(world, "merchant_a"), merchant=merchant, to_plan=lite, effective_from=FROM
            )
        with pytest.raises(PermissionDenied):
            plan_change_approve(actor=who(world, "merchant_a"), request_id=asked.pk)
        with pytest.raises(PermissionDenied):
            plan_change_approve(actor=who(world, "reviewer"), request_id=asked.pk)
        with pytest.raises(ValidationFailed):
            plan_change_reject(actor=who(world, "admin"), request_id=asked.pk, reason="  ")
    rejected = plan_change_reject(
        actor=who(world, "admin"), request_id=asked.pk, reason="Volume too low for Lite"
    )
    rejected.refresh_from_db()
    assert (rejected.status, rejected.reason, rejected.assignment_id) == (
        "rejected",
        "Volume too low for Lite",
        None,
    )
    with assert_nothing_recorded(rejected, assignments), pytest.raises(TransitionNotAllowed):
        plan_change_approve(actor=who(world, "admin"), request_id=asked.pk)

    again = plan_change_request(
        actor=who(world, "merchant_a"), merchant=merchant, to_plan=lite, effective_from=FROM
    )
    withdrawn = plan_change_withdraw(actor=who(world, "merchant_a"), request_id=again.pk)
    assert withdrawn.status == "withdrawn"
    assert list(assignments.values_list("plan__code", flat=True)) == ["standard"]  # as before it all
    # a competitor's plan, the plan it is on, a day gone: refused before anything is written
    rival = plan_create(
        actor=SYSTEM, code="rival", name="Rival", is_competitor=True, provider_name="Rival Ltd",
        effective_from=date(2025, 1, 1), rules={"credit": RuleSpec(Decimal("0.003"))},
    )  # fmt: skip
    standard = PlanAssignment.objects.get().plan
    for plan, day in ((rival, FROM), (standard, FROM), (lite, date(2026, 11, 19))):
        with assert_nothing_recorded(PlanChangeRequest.objects.all()), pytest.raises(ValidationFailed):
            plan_change_request(
                actor=who(world, "merchant_a"), merchant=merchant, to_plan=plan, effective_from=day
            )


def test_another_merchants_request_is_not_there(setup):
    world, lite = setup
    asked = plan_change_request(
        actor=who(world, "merchant_a"), merchant=world.merchant_a, to_plan=lite, effective_from=FROM
    )
    for name in ("merchant_b", "agent_b", "agent_a1"):
        with assert_nothing_recorded(asked, PlanAssignment.objects.all()):
            with pytest.raises(NotFound):
                plan_change_withdraw(actor=who(world, name), request_id=asked.pk)
            with pytest.raises(NotFound):
                plan_change_approve(actor=who(world, name), request_id=asked.pk)
    with pytest.raises(NotFound):
        plan_change_request(
            actor=who(world, "merchant_b"), merchant=world.merchant_a, to_plan=lite, effective_from=FROM
        )
