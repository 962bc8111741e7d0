"""Events the parties context publishes to the outbox (in the transaction of the change)."""

from __future__ import annotations

from dataclasses import dataclass

from posfleet.platform.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class MerchantStatusChanged(DomainEvent):
    """A merchant was suspended, resumed or closed (parties/states.py). ``aggregate_id`` is its MID."""

    name = "merchant.status_changed"
    aggregate_type = "merchant"

    command: str
    from_status: str
    to_status: str
    reason: str = ""
    agent: str | None = None  # the code of the agent that signed it


@dataclass(frozen=True, kw_only=True)
class ChannelUnbound(DomainEvent):
    """A terminal's binding to a payment channel was undone by the channel. ``aggregate_id`` is the
    binding's id."""

    name = "channel.unbound"
    aggregate_type = "channel_binding"

    channel: str
    merchant: str  # MID
    terminal: str  # SN
    reference: str = ""  # the channel's reference of the unbind


@dataclass(frozen=True, kw_only=True)
class ChannelUnbindRefused(DomainEvent):
    """A payment channel refused to unbind a terminal: it stays bound until a person acts (the
    channel's ``code`` and ``message`` say why). ``aggregate_id`` is the binding's id."""

    name = "channel.unbind_refused"
    aggregate_type = "channel_binding"

    channel: str
    merchant: str  # MID
    terminal: str  # SN
    code: str = ""
