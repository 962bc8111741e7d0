"""Reasons, guards, parameters, bulk results and concurrency of the terminal services."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import translation

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import StatusPeriod, Terminal
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
from posfleet.platform.errors import DomainError, GuardFailed, ValidationFailed
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.refusals import assert_nothing_recorded


def untouched(terminal):
    """A refused command leaves the terminal's row and its status periods, audit, outbox and ledger."""
    return assert_nothing_recorded(terminal, StatusPeriod.objects.filter(terminal=terminal))


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
    with untouched(active), pytest.raises(DomainError) as refused:
        terminal_deactivate(
            actor=actor_of(world.user("admin"), stepped_up=True), sn=active.sn, reason=reason, note=note
        )
    assert refused.value.code == code


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
    with untouched(bound), pytest.raises(ValidationFailed):
        terminal_transition(
            actor=actor_of(world.user("admin")), sn=bound.sn, action="activate", reason="cost"
        )
    assert Terminal.objects.get(sn=bound.sn).status == Status.BOUND


def test_unknown_action_and_parameters_are_refused(world, actor_of):
    active = make_terminal(world, "SN-UNKNOWN1", Status.ACTIVE)
    admin = actor_of(world.user("admin"), stepped_up=True)
    with untouched(active), pytest.raises(ValidationFailed):
        terminal_transition(actor=admin, sn=active.sn, action="explode")
    with untouched(active), pytest.raises(ValidationFailed):
        terminal_transition(
            actor=admin, sn=active.sn, action="deactivate", reason="cost", params={"tid": "12345678"}
        )
    assert Terminal.objects.get(sn=active.sn).status == Status.ACTIVE


DEACTIVATED_AT = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
WINDOW = timedelta(days=90)  # DOMAIN.md: "reactivated within a window (default 90 days)"


def test_the_reactivation_window_is_90_days():
    assert settings.POSFLEET["REACTIVATION_WINDOW"] == WINDOW


@pytest.mark.parametrize(
    "elapsed",
    [
        timedelta(seconds=1),
        WINDOW - timedelta(days=1),  # day 89
        WINDOW,  # day 90 to the second: still inside (refused only once *more* than the window passed)
    ],
    ids=["at-once", "day-89", "day-90-exactly"],
)
def test_reactivation_inside_the_window(world, actor_of, elapsed):
    with time_machine.travel(DEACTIVATED_AT, tick=False):
        terminal = make_terminal(world, "SN-WINDOW-1", Status.ACTIVE)
        terminal_deactivate(
            actor=actor_of(world.user("merchant_a"), stepped_up=True), sn=terminal.sn, reason="cost"
        )
    assert Terminal.objects.get(sn=terminal.sn).deactivated_at == DEACTIVATED_AT
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    with time_machine.travel(DEACTIVATED_AT + elapsed, tick=False):
        reactivated = terminal_reactivate(actor=actor_of(world.user("merchant_a")), sn=terminal.sn)
    assert (reactivated.status, reactivated.deactivated_at) == (Status.ACTIVE, None)
    assert reactivated.status_changed_at == DEACTIVATED_AT + elapsed
    events = AuditEvent.objects.filter(seq__gt=last)
    assert [(e.event_type, e.subject_id) for e in events] == [(EventType.TERMINAL_REACTIVATED, terminal.sn)]


@pytest.mark.parametrize(
    "elapsed",
    [
        WINDOW + timedelta(seconds=1),  # one second after day 90
        WINDOW + timedelta(days=1),  # day 91
        WINDOW + timedelta(days=365),
    ],
    ids=["day-90-and-a-second", "day-91", "a-year-later"],
)
def test_reactivation_after_the_window_is_refused_and_changes_nothing(world, actor_of, elapsed):
    with time_machine.travel(DEACTIVATED_AT, tick=False):
        terminal = make_terminal(world, "SN-WINDOW-2", Status.ACTIVE)
        terminal_deactivate(
            actor=actor_of(world.user("merchant_a"), stepped_up=True), sn=terminal.sn, reason="cost"
        )
    with (
        time_machine.travel(DEACTIVATED_AT + elapsed, tick=False),
        translation.override("en"),
        untouched(terminal),
        pytest.raises(GuardFailed) as refused,
    ):
        terminal_reactivate(actor=actor_of(world.user("merchant_a")), sn=terminal.sn)
    assert refused.value.params == {"guard": "within_reactivation_window"}
    assert str(refused.value.detail) == (
        "The reactivation window of 90 days has closed; the terminal can only be deregistered."
    )
    after = Terminal.objects.get(sn=terminal.sn)
    assert (after.status, after.deactivated_at) == (Status.DEACTIVATED, DEACTIVATED_AT)


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
        with untouched(third), pytest.raises(DomainError):
            terminal_bind(
                actor=agent, sn=third.sn, merchant_mid=world.merchant_a.mid, tid=tid, store_code=store
            )


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
    terminals = Terminal.objects.filter(sn__startswith="SN-DUP-")
    with assert_nothing_recorded(terminals), pytest.raises(ValidationFailed):
        terminal_register(actor=SYSTEM, terminal=NewTerminal(sn="SN-DUP-0001", model_id=world.model.pk))
    with assert_nothing_recorded(terminals), pytest.raises(DomainError) as refused:
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
    refused_rows = list(Terminal.objects.filter(sn__in=[stock.sn, theirs.sn]).order_by("sn").values())
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    outbox = OutboxMessage.objects.count()
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
    # The refused items left no trace: only the two deactivations were recorded.
    assert list(Terminal.objects.filter(sn__in=[stock.sn, theirs.sn]).order_by("sn").values()) == refused_rows
    assert [(e.event_type, e.subject_id) for e in AuditEvent.objects.filter(seq__gt=last)] == [
        (EventType.TERMINAL_DEACTIVATED, "SN-BULK-0001"),
        (EventType.TERMINAL_DEACTIVATED, "SN-BULK-0002"),
    ]
    assert OutboxMessage.objects.count() == outbox + 2


def test_bulk_limits(world, actor_of, settings):
    settings.POSFLEET = {**settings.POSFLEET, "BULK_MAX_ITEMS": 3}
    admin = actor_of(world.user("admin"), stepped_up=True)
    active = make_terminal(world, "SN-LIMIT-01", Status.ACTIVE)
    with assert_nothing_recorded(active), pytest.raises(ValidationFailed) as empty:
        terminals_bulk_transition(actor=admin, sns=[], action="deactivate", reason="cost")
    assert empty.value.params == {"field": "sns"}
    with assert_nothing_recorded(active), pytest.raises(ValidationFailed) as too_many:
        terminals_bulk_transition(
            actor=admin, sns=[active.sn, "B", "C", "D"], action="deactivate", reason="cost"
        )
    assert too_many.value.params == {"field": "sns"}


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
