"""Events of expiry and renewal (written to the outbox in the sweep's or the renewal's transaction)."""

from __future__ import annotations

from dataclasses import dataclass

from posfleet.platform.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class ServiceExpiryMilestone(DomainEvent):
    """A terminal's service reached a milestone: ``t30``/``t7``/``t1`` (days before expiry) or
    ``expired`` (the grace period runs until ``suspend_on``)."""

    name = "service.expiry_milestone"
    aggregate_type = "terminal"

    milestone: str
    expires_on: str
    days_left: int
    suspend_on: str
    tid: str | None = None
    merchant: str | None = None


@dataclass(frozen=True, kw_only=True)
class ServiceRenewed(DomainEvent):
    name = "service.renewed"
    aggregate_type = "terminal"

    expires_on: str
    previous_expires_on: str
    fee_fen: int
    tid: str | None = None
    merchant: str | None = None
