"""Every (state, command) pair through the real service: allowed ones move and leave one audit row and
one outbox message; forbidden ones raise ``transition_not_allowed`` and leave no trace at all."""

from __future__ import annotations

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import EVENT_OF, terminal_transition
from posfleet.fleet.states import TRANSITIONS, Command, Status
from posfleet.platform.errors import TransitionNotAllowed
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import SYSTEM, make_terminal

REASON = {
    Command.SUSPEND: "risk",
    Command.DEACTIVATE: "cost",
    Command.DEREGISTER: "cost",
    Command.SCRAP: "obsolete",
    Command.REPORT_LOST: "stolen",
}


def _params(world, command):
    if command == Command.ALLOCATE:
        return {"agent_code": world.agent_a.code}
    if command == Command.BIND:
        return {"merchant_mid": world.merchant_a.mid}
    return {}


@pytest.mark.parametrize("state", list(Status))
@pytest.mark.parametrize("command", list(Command))
def test_pair(world, state, command):
    terminal = make_terminal(world, "SN-PAIR-001", state)
    before = Terminal.objects.values().get(pk=terminal.pk)
    audit_count, outbox_count = AuditEvent.objects.count(), OutboxMessage.objects.count()
    target = TRANSITIONS.get((state, command))

    call = dict(
        actor=SYSTEM,
        sn=terminal.sn,
        action=command,
        reason=REASON.get(command, ""),
        params=_params(world, command),
    )
    if target is None:
        with pytest.raises(TransitionNotAllowed) as refused:
            terminal_transition(**call)
        assert refused.value.code == "transition_not_allowed"
        assert Terminal.objects.values().get(pk=terminal.pk) == before
        assert AuditEvent.objects.count() == audit_count
        assert OutboxMessage.objects.count() == outbox_count
    else:
        terminal_transition(**call)
        assert Terminal.objects.get(pk=terminal.pk).status == target
        events = list(AuditEvent.objects.filter(seq__gt=audit_count))
        assert [(e.event_type, e.subject_id) for e in events] == [(EVENT_OF[command], terminal.sn)]
        assert events[0].before["status"] == state
        assert events[0].after["status"] == target
        messages = list(OutboxMessage.objects.order_by("id")[outbox_count:])
        assert [(m.event_type, m.payload["command"], m.payload["to_status"]) for m in messages] == [
            ("terminal.status_changed", command.value, target.value)
        ]
