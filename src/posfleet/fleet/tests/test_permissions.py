"""Who may run which command on whose terminal, at the service level (QUALITY.md "Who may do what").

The expected table is written out by hand (not derived from fleet/rules.py) so that a change to the
rules has to be made twice, on purpose. Every refusal is checked to change nothing."""

from __future__ import annotations

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command, Status
from posfleet.platform.errors import DomainError
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import make_terminal
from posfleet.testing.refusals import assert_nothing_recorded

PERSONAS = ["admin", "reviewer", "warehouse", "agent_a", "agent_a1", "agent_b", "merchant_a", "merchant_b"]

# command: (state the terminal of merchant A / agent A is put in, {persona: expected outcome})
# ok = allowed; 404 = not visible to this persona; 403 = visible but not this role's job.
MATRIX: dict[Command, tuple[Status, dict[str, str]]] = {
    Command.ALLOCATE: (
        Status.IN_STOCK,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "ok",
            "agent_a": "404",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "404",
            "merchant_b": "404",
        },
    ),
    Command.PULL_BACK: (
        Status.ALLOCATED,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "ok",
            "agent_a": "403",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "404",
            "merchant_b": "404",
        },
    ),
    Command.SHIP: (
        Status.ALLOCATED,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "ok",
            "agent_a": "ok",  # an agent ships from the stock it holds
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "404",
            "merchant_b": "404",
        },
    ),
    Command.BIND: (
        Status.SHIPPED,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "403",
            "agent_a": "ok",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "404",
            "merchant_b": "404",
        },
    ),
    Command.ACTIVATE: (
        Status.BOUND,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "403",
            "agent_a": "ok",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "403",
            "merchant_b": "404",
        },
    ),
    Command.SUSPEND: (
        Status.ACTIVE,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "403",
            "agent_a": "403",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "403",
            "merchant_b": "404",
        },
    ),
    Command.RESUME: (
        Status.SUSPENDED,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "403",
            "agent_a": "403",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "403",
            "merchant_b": "404",
        },
    ),
    Command.DEACTIVATE: (
        Status.ACTIVE,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "403",
            "agent_a": "ok",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "ok",
            "merchant_b": "404",
        },
    ),
    Command.REACTIVATE: (
        Status.DEACTIVATED,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "403",
            "agent_a": "ok",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "ok",
            "merchant_b": "404",
        },
    ),
    Command.DEREGISTER: (
        Status.DEACTIVATED,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "403",
            "agent_a": "403",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "403",
            "merchant_b": "404",
        },
    ),
    Command.RECEIVE_RETURN: (
        Status.DEREGISTERED,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "ok",
            "agent_a": "403",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "403",
            "merchant_b": "404",
        },
    ),
    Command.REFURBISH: (
        Status.RETURNED,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "ok",
            "agent_a": "403",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "403",
            "merchant_b": "404",
        },
    ),
    Command.SCRAP: (
        Status.RETURNED,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "ok",
            "agent_a": "403",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "403",
            "merchant_b": "404",
        },
    ),
    Command.REPORT_LOST: (
        Status.ACTIVE,
        {
            "admin": "ok",
            "reviewer": "403",
            "warehouse": "403",
            "agent_a": "ok",
            "agent_a1": "404",
            "agent_b": "404",
            "merchant_a": "ok",
            "merchant_b": "404",
        },
    ),
}

REASONS = {
    Command.SUSPEND: "risk",
    Command.DEACTIVATE: "cost",
    Command.DEREGISTER: "cost",
    Command.SCRAP: "obsolete",
    Command.REPORT_LOST: "lost",
}


def _params(world, command):
    return {
        Command.ALLOCATE: {"agent_code": "AG-A"},
        Command.BIND: {"merchant_mid": world.merchant_a.mid},
    }.get(command, {})


def test_matrix_covers_every_command_and_persona():
    assert set(MATRIX) == set(Command)
    for _state, expected in MATRIX.values():
        assert set(expected) == set(PERSONAS)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("command", list(Command))
def test_matrix(world, actor_of, command, persona):
    state, expected = MATRIX[command]
    terminal = make_terminal(world, "SN-MATRIX-1", state)
    row = Terminal.objects.values().get(pk=terminal.pk)
    counts = AuditEvent.objects.count(), OutboxMessage.objects.count()
    actor = actor_of(world.user(persona), stepped_up=True)
    outcome = "ok"
    try:
        terminal_transition(
            actor=actor,
            sn=terminal.sn,
            action=command,
            reason=REASONS.get(command, ""),
            params=_params(world, command),
        )
    except DomainError as exc:
        outcome = {"not_found": "404", "permission_denied": "403"}.get(exc.code, exc.code)
    assert outcome == expected[persona]
    if outcome != "ok":
        assert Terminal.objects.values().get(pk=terminal.pk) == row
        assert (AuditEvent.objects.count(), OutboxMessage.objects.count()) == counts


def test_an_agent_acts_on_its_sub_agents_terminals_but_not_the_reverse(world, actor_of):
    of_a1 = make_terminal(world, "SN-SUB-0001", Status.ACTIVE, merchant=world.merchant_a1)
    of_a = make_terminal(world, "SN-TOP-0001", Status.ACTIVE, merchant=world.merchant_a)
    terminal_transition(
        actor=actor_of(world.user("agent_a"), stepped_up=True),
        sn=of_a1.sn,
        action="deactivate",
        reason="cost",
    )
    assert Terminal.objects.get(sn=of_a1.sn).status == Status.DEACTIVATED
    with assert_nothing_recorded(of_a), pytest.raises(DomainError) as refused:
        terminal_transition(
            actor=actor_of(world.user("agent_a1"), stepped_up=True),
            sn=of_a.sn,
            action="deactivate",
            reason="cost",
        )
    assert refused.value.code == "not_found"
    assert Terminal.objects.get(sn=of_a.sn).status == Status.ACTIVE


def test_an_agent_cannot_bind_to_another_agents_merchant(world, actor_of):
    shipped = make_terminal(world, "SN-BIND-0001", Status.SHIPPED)
    with assert_nothing_recorded(shipped), pytest.raises(DomainError) as refused:
        terminal_transition(
            actor=actor_of(world.user("admin")),
            sn=shipped.sn,
            action="bind",
            params={"merchant_mid": world.merchant_b.mid},
        )
    assert refused.value.code == "guard_failed"
    with assert_nothing_recorded(shipped), pytest.raises(DomainError) as hidden:
        terminal_transition(
            actor=actor_of(world.user("agent_a")),
            sn=shipped.sn,
            action="bind",
            params={"merchant_mid": world.merchant_b.mid},
        )
    assert hidden.value.code == "validation_error"  # agent A does not even see merchant B
    assert Terminal.objects.get(sn=shipped.sn).status == Status.SHIPPED


def test_read_only_token_actor_cannot_change_anything(world, actor_of):
    from dataclasses import replace

    active = make_terminal(world, "SN-RO-00001", Status.ACTIVE)
    actor = replace(actor_of(world.user("admin"), stepped_up=True), kind="token", read_only=True)
    with assert_nothing_recorded(active), pytest.raises(DomainError) as refused:
        terminal_transition(actor=actor, sn=active.sn, action="deactivate", reason="cost")
    assert refused.value.code == "permission_denied"
    assert Terminal.objects.get(sn=active.sn).status == Status.ACTIVE


def test_inactive_user_is_refused(world, actor_of):
    active = make_terminal(world, "SN-INACT-01", Status.ACTIVE)
    user = world.user("admin")
    user.is_active = False
    user.save()
    with assert_nothing_recorded(active), pytest.raises(DomainError) as refused:
        terminal_transition(
            actor=actor_of(user, stepped_up=True), sn=active.sn, action="deactivate", reason="cost"
        )
    assert refused.value.code in {"not_found", "permission_denied"}
    assert Terminal.objects.get(sn=active.sn).status == Status.ACTIVE
