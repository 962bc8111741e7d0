"""A complaint's life (投诉, DOMAIN.md workflow 6) as data. Pure Python: no ORM.

A complaint is a merchant's grievance — about its agent, a closure case, a deposit, a device, anything —
addressed to its agent or to the provider. Whoever holds it (the *handler*: the agent it is addressed
to, or the provider once it is addressed to the provider or escalated) acknowledges it within its clock
(``COMPLAINT_ACK_DAYS``), then answers it (resolved, or rejected as unfounded) within
``COMPLAINT_RESOLVE_DAYS``. A complaint still with the agent past its clock is escalated to the provider
by the sweep; the merchant may escalate it at any time before closing it. The merchant closes it when
answered (or withdraws it), or reopens it when the answer does not help.

Taking over (``take_over``) is the provider's answer to an agent that does not act on an agent
termination: its staff become the reviewer side of the related closure case. It acknowledges the
complaint when it was not yet.

The console's buttons, the API's ``actions`` and the services all read ``TRANSITIONS``, ``PERMISSIONS``
and ``GUARDS`` below (services move a complaint only through ``closure.services.complaints``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ComplaintStatus(TextChoices):
    OPEN = "open", pgettext_lazy("complaint status", "open")  # raised: the handler's clock runs
    ACKNOWLEDGED = "acknowledged", _("being handled")  # the handler took it in hand; answer due
    ESCALATED = "escalated", _("escalated to the provider")  # the agent was late, or the merchant asked
    RESOLVED = "resolved", pgettext_lazy("complaint status", "resolved")  # answered: what was done
    REJECTED = "rejected", pgettext_lazy("complaint status", "rejected")  # answered: found unfounded
    CLOSED = "closed", pgettext_lazy("complaint status", "closed")  # by the merchant (final)


class ComplaintCommand(StrEnum):
    RAISE = "raise"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    REJECT = "reject"
    ESCALATE = "escalate"
    TAKE_OVER = "take_over"  # the provider takes over the related agent-termination case
    CLOSE = "close"
    REOPEN = "reopen"


class ComplaintCategory(TextChoices):
    AGENT = "agent", _("my agent")
    CLOSURE = "closure", _("a closure or ending with the agent")
    DEPOSIT = "deposit", _("a deposit or a refund")
    DEVICE = "device", _("a device")
    OTHER = "other", _("something else")


class Handler(StrEnum):
    """Who holds a complaint now: the agent it is addressed to, or the provider."""

    AGENT = "agent"
    PROVIDER = "provider"


class Escalation(StrEnum):
    """Why a complaint went to the provider."""

    LATE = "late"  # the agent did not acknowledge or answer within its clock (the sweep)
    MERCHANT = "merchant"  # the merchant asked
    STAFF = "staff"  # the provider's staff took it
    CASE_LATE = "case_review_late"  # the agent let its review of an agent termination run out (the sweep)


S, C = ComplaintStatus, ComplaintCommand

INITIAL = S.OPEN
TRANSITIONS: dict[tuple[ComplaintStatus | None, ComplaintCommand], ComplaintStatus] = {
    (None, C.RAISE): S.OPEN,
    (S.OPEN, C.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.ESCALATED, C.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.OPEN, C.RESOLVE): S.RESOLVED,
    (S.ACKNOWLEDGED, C.RESOLVE): S.RESOLVED,
    (S.ESCALATED, C.RESOLVE): S.RESOLVED,
    (S.OPEN, C.REJECT): S.REJECTED,
    (S.ACKNOWLEDGED, C.REJECT): S.REJECTED,
    (S.ESCALATED, C.REJECT): S.REJECTED,
    (S.OPEN, C.ESCALATE): S.ESCALATED,
    (S.ACKNOWLEDGED, C.ESCALATE): S.ESCALATED,
    (S.RESOLVED, C.ESCALATE): S.ESCALATED,  # the agent's answer did not help: the provider looks
    (S.REJECTED, C.ESCALATE): S.ESCALATED,
    (S.OPEN, C.TAKE_OVER): S.ACKNOWLEDGED,
    (S.ESCALATED, C.TAKE_OVER): S.ACKNOWLEDGED,
    (S.ACKNOWLEDGED, C.TAKE_OVER): S.ACKNOWLEDGED,
    (S.OPEN, C.CLOSE): S.CLOSED,  # withdrawn by the merchant
    (S.ACKNOWLEDGED, C.CLOSE): S.CLOSED,
    (S.ESCALATED, C.CLOSE): S.CLOSED,
    (S.RESOLVED, C.CLOSE): S.CLOSED,
    (S.REJECTED, C.CLOSE): S.CLOSED,
    (S.RESOLVED, C.REOPEN): S.OPEN,  # back to the same handler, with a new clock
    (S.REJECTED, C.REOPEN): S.OPEN,
}
FINAL = frozenset({S.CLOSED})
WAITING = frozenset({S.OPEN, S.ESCALATED})  # waiting for the handler to acknowledge
IN_HAND = frozenset({S.OPEN, S.ACKNOWLEDGED, S.ESCALATED})  # the handler's clock runs
ANSWERED = frozenset({S.RESOLVED, S.REJECTED})  # the merchant's turn: close, reopen or escalate

# Who may run each command (django-rules permissions, closure/rules.py; on the complaint).
PERMISSIONS: dict[ComplaintCommand, str] = {
    C.ACKNOWLEDGE: "closure.handle_complaint",
    C.RESOLVE: "closure.handle_complaint",
    C.REJECT: "closure.handle_complaint",
    C.ESCALATE: "closure.escalate_complaint",
    C.TAKE_OVER: "closure.take_over_case",
    C.CLOSE: "closure.close_complaint",
    C.REOPEN: "closure.close_complaint",
}
AUTOMATIC_ESCALATIONS = frozenset({Escalation.LATE, Escalation.CASE_LATE})


# -- guards: the conditions a command names beyond its from-state ---------------------------------------


class Guard(StrEnum):
    WITH_AGENT = "with_agent"  # escalation: the complaint is not with the provider already
    WITH_PROVIDER = "with_provider"  # take over: the provider holds the complaint
    CASE_AWAITS_AGENT = "case_awaits_agent"  # take over: an agent termination waiting for its review


GUARDS: dict[ComplaintCommand, tuple[Guard, ...]] = {
    C.ESCALATE: (Guard.WITH_AGENT,),
    C.TAKE_OVER: (Guard.WITH_PROVIDER, Guard.CASE_AWAITS_AGENT),
}

GROUPS: dict[str, frozenset[ComplaintStatus]] = {
    "open": frozenset({S.OPEN, S.ACKNOWLEDGED, S.ESCALATED}),
    "escalated": frozenset({S.ESCALATED}),
    "answered": ANSWERED,
    "closed": FINAL,
}


def next_state(current: str | None, command: str) -> ComplaintStatus | None:
    """The status ``command`` leads to from ``current``, or None when it is not allowed there."""
    try:
        return TRANSITIONS.get((S(current) if current is not None else None, C(command)))
    except ValueError:
        return None


def commands_from(current: str) -> list[ComplaintCommand]:
    return [command for (status, command) in TRANSITIONS if status == current]


def handler_of(*, addressed_to_provider: bool, escalated: bool) -> Handler:
    return Handler.PROVIDER if addressed_to_provider or escalated else Handler.AGENT


def overdue(status: str, due_at: datetime | None, at: datetime) -> bool:
    """The handler let its clock run out (acknowledgement or answer)."""
    return status in IN_HAND and due_at is not None and due_at < at


def to_mermaid() -> str:
    """The complaint's life as a Mermaid diagram."""
    lines = ["stateDiagram-v2"]
    for (status, command), target in TRANSITIONS.items():
        lines.append(f"    {status.value if status else '[*]'} --> {target.value}: {command.value}")
    for status in sorted(FINAL, key=lambda s: s.value):
        lines.append(f"    {status.value} --> [*]")
    return "\n".join(lines) + "\n"
