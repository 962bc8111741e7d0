"""Events of the money context (written to the outbox in the service's transaction)."""

from __future__ import annotations

from dataclasses import dataclass

from posfleet.platform.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class PlanChangeProgressed(DomainEvent):
    """A plan change request moved on: ``step`` is what happened (requested, approved, rejected,
    withdrawn); an approval names the day the plan applies from (``applies_from``)."""

    name = "plan_change.progressed"
    aggregate_type = "plan_change"

    step: str
    status: str
    merchant: str  # MID
    from_plan: str = ""  # plan codes ("" when the merchant had none)
    to_plan: str = ""
    effective_from: str = ""  # the requested day
    applies_from: str = ""  # an approval's: the assignment's day
    reason: str = ""
