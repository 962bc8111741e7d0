"""A plan change request's life (换费率方案申请) as data. Pure Python: no ORM, no Django settings.

A merchant (or its agent) asks to move to another of our rate plans from a date; the provider's admin
approves it — the plan is then assigned from that date through the plan assignment service — or
rejects it with a reason; the requester may withdraw it while it waits. Every end is final: asking
again is a new request (ADR 0027).

``TRANSITIONS`` maps ``(status, command) -> next status``; the services (``billing/services/
plan_changes.py``), the console's buttons, the Mermaid diagram in docs/state-machines/plan-change.md
and the tests are derived from it.
"""

from __future__ import annotations

from enum import StrEnum

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class PlanChangeStatus(TextChoices):
    REQUESTED = "requested", pgettext_lazy("plan change status", "requested")  # waiting for a decision
    APPROVED = "approved", pgettext_lazy("plan change status", "approved")  # the plan is assigned (final)
    REJECTED = "rejected", pgettext_lazy("plan change status", "rejected")  # with a reason (final)
    WITHDRAWN = "withdrawn", pgettext_lazy("plan change status", "withdrawn")  # by the requester (final)


class PlanChangeCommand(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"


COMMAND_LABELS = {
    PlanChangeCommand.APPROVE: _("Approve"),
    PlanChangeCommand.REJECT: _("Reject"),
    PlanChangeCommand.WITHDRAW: _("Withdraw"),
}

S, C = PlanChangeStatus, PlanChangeCommand

INITIAL = S.REQUESTED
TRANSITIONS: dict[tuple[PlanChangeStatus, PlanChangeCommand], PlanChangeStatus] = {
    (S.REQUESTED, C.APPROVE): S.APPROVED,
    (S.REQUESTED, C.REJECT): S.REJECTED,
    (S.REQUESTED, C.WITHDRAW): S.WITHDRAWN,
}
FINAL = frozenset({S.APPROVED, S.REJECTED, S.WITHDRAWN})
# The provider decides (approve, reject); the requester's side withdraws.
DECISIONS = frozenset({C.APPROVE, C.REJECT})
# A rejection says why.
REASON_REQUIRED = frozenset({C.REJECT})


def next_state(current: str, command: str) -> PlanChangeStatus | None:
    """The status ``command`` leads to from ``current``, or None when it is not allowed there."""
    try:
        return TRANSITIONS.get((PlanChangeStatus(current), PlanChangeCommand(command)))
    except ValueError:
        return None


def commands_from(current: str) -> list[PlanChangeCommand]:
    return [cmd for (state, cmd) in TRANSITIONS if state == current]


def to_mermaid() -> str:
    """The machine as a Mermaid state diagram (docs/state-machines/plan-change.md)."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL.value}: merchant or agent asks"]
    for (state, command), target in TRANSITIONS.items():
        lines.append(f"    {state.value} --> {target.value}: {command.value}")
    for state in sorted(FINAL, key=lambda s: s.value):
        lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines) + "\n"
