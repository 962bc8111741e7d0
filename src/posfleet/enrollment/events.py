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
    fee_due_on: str = ""  # the day the renewal fee fell due (deducted from the next settlement)
    tid: str | None = None
    merchant: str | None = None


@dataclass(frozen=True, kw_only=True)
class TerminalReplaced(DomainEvent):
    """Terminal ``aggregate_id`` (deregistered, to come back) was replaced by ``replaced_by``, which took
    over its merchant, store, service expiry and contract (换机)."""

    name = "terminal.replaced"
    aggregate_type = "terminal"

    replaced_by: str
    reason: str
    tid: str | None = None  # the replaced terminal's TID
    new_tid: str | None = None
    new_status: str = ""
    service_expires_on: str | None = None
    contract: int | None = None
    merchant: str | None = None
    store: str | None = None


@dataclass(frozen=True, kw_only=True)
class ApplicationProgressed(DomainEvent):
    """An application moved on: ``step`` is the audit event's name without ``application.``
    (submitted, info_requested, info_given, approved, rejected, review_reminded, allocated, shipped,
    delivered, installed, tested, completed)."""

    name = "application.progressed"
    aggregate_type = "application"

    step: str
    status: str
    kind: str
    shop_name: str
    terminal_count: int
    merchant: str | None = None
    agent: str | None = None
    reason: str = ""  # the reviewer's note (rejected, info_requested, approved)
    reasons: str = ""  # the preset reason codes (enrollment/review.py), comma-separated
    carrier: str = ""
    tracking_no: str = ""
    review_due_at: str = ""


@dataclass(frozen=True, kw_only=True)
class RenewalOffered(DomainEvent):
    name = "service.renewal_offered"
    aggregate_type = "terminal"

    expires_on: str
    fee_fen: int
    tid: str | None = None
    merchant: str | None = None
