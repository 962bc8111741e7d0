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
