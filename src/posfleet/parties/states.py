"""The merchant's life (商户状态) as data. Pure Python: no ORM, no Django settings.

A merchant trades (active), may be stopped for a while by the provider (suspended: risk, compliance,
unpaid fees) and ends for good (closed, 注销). A closed merchant is never reopened: it re-applies through
a new application (DOMAIN.md, workflow 5), whose approval opens a new merchant with a new MID.

``TRANSITIONS`` maps ``(status, command) -> next status``; the services in ``parties/services.py``, the
Mermaid diagram in docs/state-machines/merchant.md and the tests are derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class MerchantStatus(TextChoices):
    ACTIVE = "active", pgettext_lazy("merchant status", "active")  # trading
    # Stopped for a while by the provider (risk, compliance, unpaid fees).
    SUSPENDED = "suspended", pgettext_lazy("merchant status", "suspended")
    # Ended for good (注销); re-applies through a new application (final).
    CLOSED = "closed", pgettext_lazy("merchant status", "closed")


class Command(StrEnum):
    SUSPEND = "suspend"
    RESUME = "resume"
    CLOSE = "close"


COMMAND_LABELS = {
    Command.SUSPEND: _("Suspend merchant"),
    Command.RESUME: _("Resume merchant"),
    Command.CLOSE: _("Close merchant"),
}

S, C = MerchantStatus, Command

TRANSITIONS: dict[tuple[MerchantStatus, Command], MerchantStatus] = {
    (S.ACTIVE, C.SUSPEND): S.SUSPENDED,
    (S.SUSPENDED, C.RESUME): S.ACTIVE,
    (S.ACTIVE, C.CLOSE): S.CLOSED,
    (S.SUSPENDED, C.CLOSE): S.CLOSED,
}

INITIAL = S.ACTIVE
FINAL = frozenset({S.CLOSED})


class SuspensionReason(TextChoices):
    """Why the provider stops a merchant for a while."""

    RISK = "risk", _("risk control")
    COMPLIANCE = "compliance", _("regulation or compliance")
    UNPAID_FEE = "unpaid_fee", _("unpaid fee")
    INVESTIGATION = "investigation", _("investigation")
    OTHER = "other", _("other")


class ClosureReason(TextChoices):
    """Why a merchant ends (DOMAIN.md, closure reasons: their own taxonomy, not deactivation's)."""

    SHOP_CLOSED = "shop_closed", _("shop closed")
    SWITCHING_PROVIDER = "switching_provider", _("switching provider")
    MOVING_OUT = "moving_out", _("moving out of the service area")
    COST = "cost", _("cost")
    UNSATISFIED = "unsatisfied", _("unsatisfied with the service or the agent")
    NO_LONGER_NEEDED = "no_longer_needed", _("device no longer needed")
    DISSOLVED = "dissolved", _("entity dissolved or owner deceased")
    PROVIDER_INITIATED = "provider_initiated", _("provider-initiated (risk, fraud, compliance)")
    OTHER = "other", _("other")


@dataclass(frozen=True)
class CommandSpec:
    command: Command
    reasons: type[TextChoices] | None = None  # None: the command takes no reason
    step_up: bool = False  # destructive: needs a fresh TOTP verification


SPECS: dict[Command, CommandSpec] = {
    C.SUSPEND: CommandSpec(C.SUSPEND, reasons=SuspensionReason),
    C.RESUME: CommandSpec(C.RESUME),
    C.CLOSE: CommandSpec(C.CLOSE, reasons=ClosureReason, step_up=True),
}


def next_state(current: str, command: str) -> MerchantStatus | None:
    """The status ``command`` leads to from ``current``, or None when it is not allowed there."""
    try:
        return TRANSITIONS.get((MerchantStatus(current), Command(command)))
    except ValueError:
        return None


def commands_from(current: str) -> list[Command]:
    return [cmd for (state, cmd) in TRANSITIONS if state == current]


def to_mermaid() -> str:
    """The machine as a Mermaid state diagram (docs/state-machines/merchant.md)."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL.value}"]
    for (state, command), target in TRANSITIONS.items():
        lines.append(f"    {state.value} --> {target.value}: {command.value}")
    for state in sorted(FINAL, key=lambda s: s.value):
        lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines) + "\n"
