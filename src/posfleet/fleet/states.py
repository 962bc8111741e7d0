"""The terminal life (终端生命周期) as data. Pure Python: no ORM, no Django settings.

``TRANSITIONS`` maps ``(state, command) -> next state``; everything else (the django-fsm-2 methods on
the model, the Mermaid diagram in docs/state-machines/, the buttons the console offers, the tests)
is derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class Status(TextChoices):
    IN_STOCK = "in_stock", _("in stock")  # in the provider's warehouse, ready to allocate
    ALLOCATED = "allocated", _("allocated")  # stock held by an agent (划拨)
    SHIPPED = "shipped", _("shipped")  # on its way to a merchant
    BOUND = "bound", _("bound")  # attached to a merchant and store, has a TID; not yet tested
    ACTIVE = "active", _("active")  # may transact
    SUSPENDED = "suspended", _("suspended")  # stopped for a while (expiry, risk, unpaid fee)
    DEACTIVATED = "deactivated", _("deactivated")  # stopped on request (停用); reactivation window open
    DEREGISTERED = "deregistered", _("deregistered")  # closed for good (注销); device to come back
    RETURNED = "returned", _("returned")  # back in the warehouse, awaiting inspection
    SCRAPPED = "scrapped", _("scrapped")  # destroyed (final)
    BLOCKED = "blocked", _("blocked")  # reported lost or stolen; never transacts again (final)


class Command(StrEnum):
    ALLOCATE = "allocate"
    PULL_BACK = "pull_back"
    SHIP = "ship"
    BIND = "bind"
    ACTIVATE = "activate"
    SUSPEND = "suspend"
    RESUME = "resume"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    DEREGISTER = "deregister"
    RECEIVE_RETURN = "receive_return"
    REFURBISH = "refurbish"
    SCRAP = "scrap"
    REPORT_LOST = "report_lost"


COMMAND_LABELS = {
    Command.ALLOCATE: _("Allocate to agent"),
    Command.PULL_BACK: _("Pull back from agent"),
    Command.SHIP: _("Ship"),
    Command.BIND: _("Bind to merchant"),
    Command.ACTIVATE: _("Activate"),
    Command.SUSPEND: _("Suspend"),
    Command.RESUME: _("Resume"),
    Command.DEACTIVATE: _("Deactivate"),
    Command.REACTIVATE: _("Reactivate"),
    Command.DEREGISTER: _("Deregister"),
    Command.RECEIVE_RETURN: _("Receive return"),
    Command.REFURBISH: _("Refurbish"),
    Command.SCRAP: _("Scrap"),
    Command.REPORT_LOST: _("Report lost"),
}

S, C = Status, Command

TRANSITIONS: dict[tuple[Status, Command], Status] = {
    (S.IN_STOCK, C.ALLOCATE): S.ALLOCATED,
    (S.ALLOCATED, C.PULL_BACK): S.IN_STOCK,
    (S.ALLOCATED, C.SHIP): S.SHIPPED,
    (S.SHIPPED, C.BIND): S.BOUND,
    (S.BOUND, C.ACTIVATE): S.ACTIVE,
    (S.ACTIVE, C.SUSPEND): S.SUSPENDED,
    (S.SUSPENDED, C.RESUME): S.ACTIVE,
    (S.ACTIVE, C.DEACTIVATE): S.DEACTIVATED,
    (S.SUSPENDED, C.DEACTIVATE): S.DEACTIVATED,
    (S.DEACTIVATED, C.REACTIVATE): S.ACTIVE,
    (S.DEACTIVATED, C.DEREGISTER): S.DEREGISTERED,
    (S.DEREGISTERED, C.RECEIVE_RETURN): S.RETURNED,
    (S.RETURNED, C.REFURBISH): S.IN_STOCK,
    (S.RETURNED, C.SCRAP): S.SCRAPPED,
    **{
        (state, C.REPORT_LOST): S.BLOCKED
        for state in (
            S.IN_STOCK,
            S.ALLOCATED,
            S.SHIPPED,
            S.BOUND,
            S.ACTIVE,
            S.SUSPENDED,
            S.DEACTIVATED,
            S.DEREGISTERED,
        )
    },
}

INITIAL = S.IN_STOCK
FINAL = frozenset({S.SCRAPPED, S.BLOCKED})

# -- Status groups: what the rest of posfleet means by these words, defined here and nowhere else. --

# Only an active terminal may transact.
TRANSACTING = frozenset({S.ACTIVE})
# In service (在用): bound to a merchant with its service running — told of its expiry, renewable, may
# take over from a replaced terminal, counted in the expiry forecast.
IN_SERVICE = frozenset({S.BOUND, S.ACTIVE, S.SUSPENDED})
# Stopped for a while (expiry, risk, unpaid fee) or on request: not transacting, not closed.
STOPPED = frozenset({S.SUSPENDED, S.DEACTIVATED})
# Still the merchant's (its contract runs): in service or stopped. A merchant holding one is not closed,
# so it asks for more terminals rather than re-applying.
WITH_MERCHANT = IN_SERVICE | STOPPED
# Stock: in the warehouse or held by an agent, no merchant yet.
IN_STOCK_GROUP = frozenset({S.IN_STOCK, S.ALLOCATED})
# Closable (注销): with a merchant and past its first transaction — it stops at once (deactivated) when
# a closure is asked for, unless it is already.
CLOSABLE = frozenset({S.ACTIVE, S.SUSPENDED, S.DEACTIVATED})
# Closed: ended for good, the device on its way back, back, destroyed or lost.
CLOSED = frozenset({S.DEREGISTERED, S.RETURNED, S.SCRAPPED, S.BLOCKED})

GROUPS: dict[str, frozenset[Status]] = {
    "in_stock": IN_STOCK_GROUP,
    "in_service": IN_SERVICE,
    "stopped": STOPPED,
    "with_merchant": WITH_MERCHANT,
    "closed": CLOSED,
}


class DeactivationReason(TextChoices):
    """Why a merchant stops using a terminal (article 003's taxonomy)."""

    COST = "cost", _("cost")
    TECHNOLOGY_UPDATE = "technology_update", _("technology update")
    COMPETITION = "competition", _("competition")
    BUSINESS_CHANGE = "business_change", _("business change")
    REGULATION = "regulation", _("regulation or compliance")
    DEVICE_FAULT = "device_fault", _("device fault")
    FINANCIAL_PRESSURE = "financial_pressure", _("financial pressure")
    OTHER = "other", _("other")
    # Set by the replacement (换机, enrollment/replacement.py) only: see RESERVED_REASONS.
    REPLACEMENT = "replacement", _("replaced by a new terminal")
    # Set by the closure case (closure/) only: its own reasons (closure.states.ClosureReason) say why.
    CLOSURE = "closure", _("closure requested")


# Reasons no person picks: the composite service that owns them passes them as a job actor, so a
# deactivation or deregistration "for replacement" always has its replacement (fleet.Replacement), and
# one "for closure" its closure case.
RESERVED_REASONS: frozenset[str] = frozenset({DeactivationReason.REPLACEMENT, DeactivationReason.CLOSURE})


class SuspensionReason(TextChoices):
    EXPIRY = "expiry", _("service expired")
    RISK = "risk", _("risk control")
    UNPAID_FEE = "unpaid_fee", _("unpaid fee")
    INVESTIGATION = "investigation", _("investigation")
    OTHER = "other", _("other")


class LossReason(TextChoices):
    LOST = "lost", _("lost")
    STOLEN = "stolen", _("stolen")


class ScrapReason(TextChoices):
    BEYOND_REPAIR = "beyond_repair", _("damaged beyond repair")
    OBSOLETE = "obsolete", _("obsolete")
    OTHER = "other", _("other")


@dataclass(frozen=True)
class CommandSpec:
    command: Command
    reasons: type[TextChoices] | None = None  # None: the command takes no reason
    step_up: bool = False  # destructive: needs a fresh TOTP verification
    guards: tuple[str, ...] = ()  # the conditions it needs, by name: functions in fleet/guards.py


SPECS: dict[Command, CommandSpec] = {
    C.ALLOCATE: CommandSpec(C.ALLOCATE),
    C.PULL_BACK: CommandSpec(C.PULL_BACK),
    C.SHIP: CommandSpec(C.SHIP),
    C.BIND: CommandSpec(C.BIND, guards=("merchant_under_agent", "store_of_merchant")),
    C.ACTIVATE: CommandSpec(C.ACTIVATE),
    C.SUSPEND: CommandSpec(C.SUSPEND, reasons=SuspensionReason),
    C.RESUME: CommandSpec(C.RESUME),
    C.DEACTIVATE: CommandSpec(C.DEACTIVATE, reasons=DeactivationReason, step_up=True),
    C.REACTIVATE: CommandSpec(C.REACTIVATE, guards=("not_held_by_a_case", "within_reactivation_window")),
    C.DEREGISTER: CommandSpec(
        C.DEREGISTER, reasons=DeactivationReason, step_up=True, guards=("not_held_by_a_case",)
    ),
    C.RECEIVE_RETURN: CommandSpec(C.RECEIVE_RETURN),
    C.REFURBISH: CommandSpec(C.REFURBISH),
    C.SCRAP: CommandSpec(C.SCRAP, reasons=ScrapReason, step_up=True),
    C.REPORT_LOST: CommandSpec(C.REPORT_LOST, reasons=LossReason, step_up=True),
}


def offered_reasons(command: Command) -> list[tuple[str, str]]:
    """The (value, label) reasons a person may choose for ``command`` (reserved ones left out)."""
    reasons = SPECS[command].reasons
    if reasons is None:
        return []
    return [(value, label) for value, label in reasons.choices if value not in RESERVED_REASONS]


def next_state(current: str, command: str) -> Status | None:
    """The state ``command`` leads to from ``current``, or None when it is not allowed there."""
    try:
        return TRANSITIONS.get((Status(current), Command(command)))
    except ValueError:
        return None


def commands_from(current: str) -> list[Command]:
    return [cmd for (state, cmd) in TRANSITIONS if state == current]


def sources_of(command: Command) -> list[Status]:
    return [state for (state, cmd) in TRANSITIONS if cmd == command]


def target_of(command: Command) -> Status:
    targets = {target for (_state, cmd), target in TRANSITIONS.items() if cmd == command}
    assert len(targets) == 1, f"{command} must lead to exactly one state"
    return targets.pop()


def to_mermaid() -> str:
    """The machine as a Mermaid state diagram (docs/state-machines/terminal.md)."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL.value}"]
    for (state, command), target in TRANSITIONS.items():
        lines.append(f"    {state.value} --> {target.value}: {command.value}")
    for state in sorted(FINAL, key=lambda s: s.value):
        lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines) + "\n"
