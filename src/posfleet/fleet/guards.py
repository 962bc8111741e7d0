"""The guards named in ``fleet/states.py`` (``CommandSpec.guards``): the conditions a command needs
beyond the state it starts from. Each takes the locked terminal and the command's prepared ``Change``
and raises ``GuardFailed`` (409) with its own name as ``guard`` when the condition does not hold; the
service runs them, in the order the spec lists them, before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from posfleet.fleet.models import Terminal
from posfleet.fleet.states import RESERVED_REASONS
from posfleet.parties import selectors as parties
from posfleet.platform.clock import now
from posfleet.platform.errors import GuardFailed


@dataclass
class Change:
    """What a command does besides moving the status: the fields it sets (``fields``) and what the
    caller asked for that guards look at (``asked``)."""

    fields: dict[str, Any] = field(default_factory=dict)
    asked: dict[str, Any] = field(default_factory=dict)


def merchant_under_agent(terminal: Terminal, change: Change) -> None:
    """A terminal is bound only to a merchant signed by the agent holding it (or a sub-agent of it)."""
    merchant = change.fields["merchant"]
    if terminal.agent is None or not parties.agent_contains(terminal.agent, merchant.agent):
        raise GuardFailed(
            _("The merchant is not signed by the agent that holds this terminal."),
            guard="merchant_under_agent",
        )


def store_of_merchant(terminal: Terminal, change: Change) -> None:
    """The store named, if any, is one of the merchant's."""
    if change.asked.get("store_code") and change.fields.get("store") is None:
        raise GuardFailed(_("The store does not belong to this merchant."), guard="store_of_merchant")


def reactivation_deadline(deactivated_at: datetime) -> datetime:
    """The last moment a terminal deactivated at ``deactivated_at`` may be reactivated: the one rule of
    the reactivation window: the guard below, the deactivation's event (its notice), and every screen
    that shows the deadline."""
    return deactivated_at + settings.POSFLEET["REACTIVATION_WINDOW"]


def within_reactivation_window(terminal: Terminal, change: Change) -> None:
    """A deactivated terminal comes back only within the reactivation window (90 days by default):
    on the last day of the window it still may, one moment later it can only be deregistered."""
    window = settings.POSFLEET["REACTIVATION_WINDOW"]
    if terminal.deactivated_at is None or now() > reactivation_deadline(terminal.deactivated_at):
        raise GuardFailed(
            _("The reactivation window of %(days)d days has closed; the terminal can only be deregistered.")
            % {"days": window.days},
            guard="within_reactivation_window",
        )


def not_held_by_a_case(terminal: Terminal, change: Change) -> None:
    """A terminal stopped for a reserved reason (a closure case, a replacement) is moved on only by the
    case that stopped it (its job): a person withdraws the closure request instead, so a terminal under
    closure never transacts again behind the case's back."""
    if terminal.status_reason in RESERVED_REASONS and not change.asked.get("by_system"):
        raise GuardFailed(
            _("This terminal is held by a closure or replacement under way: withdraw that request first."),
            guard="not_held_by_a_case",
        )


GUARDS: dict[str, Callable[[Terminal, Change], None]] = {
    "merchant_under_agent": merchant_under_agent,
    "store_of_merchant": store_of_merchant,
    "within_reactivation_window": within_reactivation_window,
    "not_held_by_a_case": not_held_by_a_case,
}
