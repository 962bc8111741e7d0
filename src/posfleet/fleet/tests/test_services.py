"""Reasons, guards, parameters, bulk results and concurrency of the terminal services."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import (
    NewTerminal,
    terminal_bind,
    terminal_deactivate,
    terminal_reactivate,
    terminal_register,
    terminal_transition,
    terminals_bulk_transition,
)
from posfleet.fleet.states import Status
from posfleet.platform.clock import now
from posfleet.platform.errors import DomainError, GuardFailed, ValidationFailed
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import SYSTEM, make_terminal


def snapshot(sn):
    return (Terminal.objects.values().get(sn=sn), AuditEvent.objects.count(), OutboxMessage.objects.count())


@pytest.mark.parametrize(
    ("reason", "note", "code"),
    [
        ("", "", "validation_error"),
        ("bored", "", "validation_error"),
        ("other", "", "validation_error"),
        ("other", "   ", "validation_error"),
    ],
)
def test_deactivation_reason_is_required_and_checked(world, actor_of, reason, note, code):
    active = make_terminal(world, "SN-REASON-1", Status.ACTIVE)
    before = snapshot(active.sn)
    with pytest.raises(DomainError) as refused:
        terminal_deactivate(
            actor=actor_of(world.user("admin"), stepped_up=True), sn=active.sn, reason=reason, note=note
        )
    assert refused.value.code == code
    assert snapshot(active.sn) == before


def test_other_with_a_note_is_recorded_with_reason_and_note(world, actor_of):
    active = make_terminal(world, "SN-REASON-2", Status.ACTIVE)
    terminal = terminal_deactivate(
        actor=actor_of(world.user("merchant_a"), stepped_up=True),
        sn=active.sn,
        reason="other",
        note="shop moved abroad",
    )
    event = AuditEvent.objects.order_by("-seq").first()
    assert (terminal.status, terminal.status_reason) == (Status.DEACTIVATED, "other")
    assert (event.event_type, event.reason, event.note, event.actor_label, event.request_id) == (
        EventType.TERMINAL_DEACTIVATED,
        "other",
        "shop moved abroad",
        "merchant_a",
        "test",
    )
    assert (event.before["status"], event.after["status"]) == ("active", "deactivated")


def test_commands_without_reasons_refuse_one(world, actor_of):
    bound = make_terminal(world, "SN-NOREASON", Status.BOUND)
    with pytest.raises(ValidationFailed):
        terminal_transition(
            actor=actor_of(world.user("admin")), sn=bound.sn, action="activate", reason="cost"
        )
    assert Terminal.objects.get(sn=bound.sn).status == Status.BOUND


def test_unknown_action_and_parameters_are_refused(world, actor_of):
    active = make_terminal(world, "SN-UNKNOWN1", Status.ACTIVE)
    admin = actor_of(world.user("admin"), stepped_up=True)
    with pytest.raises(ValidationFailed):
        terminal_transition(actor=admin, sn=active.sn, action="explode")
    with pytest.raises(ValidationFailed):
        terminal_transition(
            actor=admin, sn=active.sn, action="deactivate", reason="cost", params={"tid": "12345678"}
        )
    assert Terminal.objects.get(sn=active.sn).status == Status.ACTIVE


def test_reactivation_within_the_window_and_not_after(world, actor_of):
    merchant = actor_of(world.user("merchant_a"), stepped_up=True)
    one = make_terminal(world, "SN-WINDOW-1", Status.ACTIVE)
    two = make_terminal(world, "SN-WINDOW-2", Status.ACTIVE)
    terminal_deactivate(actor=merchant, sn=one.sn, reason="cost")
    terminal_deactivate(actor=merchant, sn=two.sn, reason="cost")
    with time_machine.travel(now() + timedelta(days=89)):
        assert (
            terminal_reactivate(actor=actor_of(world.user("merchant_a")), sn=one.sn).status == Status.ACTIVE
        )
    with time_machine.travel(now() + timedelta(days=91)):
        before = snapshot(two.sn)
        with pytest.raises(GuardFailed) as refused:
            terminal_reactivate(actor=actor_of(world.user("merchant_a")), sn=two.sn)
        assert refused.value.params["guard"] == "within_reactivation_window"
        assert snapshot(two.sn) == before


def test_bind_assigns_unique_tids_and_checks_given_ones(world, actor_of):
    agent = actor_of(world.user("agent_a"))
    first = make_terminal(world, "SN-TID-0001", Status.SHIPPED)
    second = make_terminal(world, "SN-TID-0002", Status.SHIPPED)
    third = make_terminal(world, "SN-TID-0003", Status.SHIPPED)
    a = terminal_bind(actor=agent, sn=first.sn, merchant_mid=world.merchant_a.mid, store_code="S1")
    b = terminal_bind(actor=agent, sn=second.sn, merchant_mid=world.merchant_a.mid, tid="ab12cd34")
    assert (a.store.code, len(a.tid), a.tid.isdigit()) == ("S1", 8, True)
    assert b.tid == "AB12CD34"
    for tid, store in [("AB12CD34", ""), ("SHORT", ""), ("", "NOPE")]:
        before = snapshot(third.sn)
        with pytest.raises(DomainError):
            terminal_bind(
                actor=agent, sn=third.sn, merchant_mid=world.merchant_a.mid, tid=tid, store_code=store
            )
        assert snapshot(third.sn) == before


def test_refurbish_clears_the_owner_chain(world, actor_of):
    returned = make_terminal(world, "SN-REFURB-1", Status.RETURNED)
    assert returned.merchant is not None
    terminal = terminal_transition(
        actor=actor_of(world.user("warehouse")), sn=returned.sn, action="refurbish"
    )
    assert (terminal.status, terminal.agent, terminal.merchant, terminal.store, terminal.tid) == (
        Status.IN_STOCK,
        None,
        None,
        None,
        None,
    )


def test_register_refuses_a_duplicate_sn(world, actor_of):
    terminal_register(actor=SYSTEM, terminal=NewTerminal(sn="SN-DUP-0001", model_id=world.model.pk))
    count = AuditEvent.objects.count()
    with pytest.raises(ValidationFailed):
        terminal_register(actor=SYSTEM, terminal=NewTerminal(sn="SN-DUP-0001", model_id=world.model.pk))
    assert AuditEvent.objects.count() == count
    with pytest.raises(DomainError) as refused:
        terminal_register(
            actor=actor_of(world.user("agent_a")),
            terminal=NewTerminal(sn="SN-DUP-0002", model_id=world.model.pk),
        )
    assert refused.value.code == "permission_denied"


def test_bulk_reports_each_terminal(world, actor_of):
    ok1 = make_terminal(world, "SN-BULK-0001", Status.ACTIVE)
    make_terminal(world, "SN-BULK-0002", Status.SUSPENDED)
    stock = make_terminal(world, "SN-BULK-0003", Status.IN_STOCK)
    theirs = make_terminal(world, "SN-BULK-0004", Status.ACTIVE, merchant=world.merchant_b)
    results = terminals_bulk_transition(
        actor=actor_of(world.user("agent_a"), stepped_up=True),
        sns=[ok1.sn, "sn-bulk-0002", stock.sn, theirs.sn, "SN-NOPE-0000", ok1.sn],
        action="deactivate",
        reason="competition",
    )
    assert [(r.sn, r.ok, r.status, r.code) for r in results] == [
        ("SN-BULK-0001", True, "deactivated", None),
        ("SN-BULK-0002", True, "deactivated", None),
        ("SN-BULK-0003", False, None, "not_found"),  # in stock: not agent A's
        ("SN-BULK-0004", False, None, "not_found"),  # agent B's
        ("SN-NOPE-0000", False, None, "not_found"),
        ("SN-BULK-0001", False, None, "duplicate"),
    ]
    assert Terminal.objects.get(sn=theirs.sn).status == Status.ACTIVE
    assert AuditEvent.objects.filter(event_type=EventType.TERMINAL_DEACTIVATED).count() == 2


def test_bulk_limits(world, actor_of, settings):
    settings.POSFLEET = {**settings.POSFLEET, "BULK_MAX_ITEMS": 3}
    admin = actor_of(world.user("admin"), stepped_up=True)
    with pytest.raises(ValidationFailed):
        terminals_bulk_transition(actor=admin, sns=[], action="deactivate", reason="cost")
    with pytest.raises(ValidationFailed):
        terminals_bulk_transition(actor=admin, sns=["A", "B", "C", "D"], action="deactivate", reason="cost")


@pytest.mark.django_db(transaction=True)
def test_concurrent_deactivations_succeed_exactly_once(actor_of):
    from posfleet.testing.personas import build_world

    world = build_world()
    active = make_terminal(world, "SN-RACE-0001", Status.ACTIVE)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        user = world.user("admin" if i % 2 else "merchant_a")
        try:
            barrier.wait()
            terminal_deactivate(actor=actor_of(user, stepped_up=True), sn=active.sn, reason="cost")
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["transition_not_allowed"] * 7, outcomes
    assert AuditEvent.objects.filter(event_type=EventType.TERMINAL_DEACTIVATED).count() == 1
    assert verify_chain().ok
