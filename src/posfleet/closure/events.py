"""Events of closure cases (written to the outbox in the service's or the step's transaction)."""

from __future__ import annotations

from dataclasses import dataclass

from posfleet.platform.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class ClosureProgressed(DomainEvent):
    """A closure case moved on: ``step`` is what happened (requested, withdrawn, approved, rejected,
    review_reminded, escalated, a step's name with ``state`` done/waiting/failed, completed)."""

    name = "closure.progressed"
    aggregate_type = "closure"

    step: str
    state: str = ""
    status: str = ""
    merchant: str = ""
    terminals: str = ""  # SNs, comma-separated
    reason: str = ""
    waiting_for: str = ""
    return_address: str = ""
    return_due_on: str = ""
    return_reference: str = ""
    refund_fen: int = 0
    still_owed_fen: int = 0  # what the merchant owes after this step (contract ended, deposit released)
    certificate_code: str = ""
    review_due_at: str = ""  # the case's review deadline
    penalty_fen: int = 0  # contract ended: the early-termination penalty charged
    ended_on: str = ""  # contract ended: the day
    paid_fen: int = 0  # final settlement: what its batches paid the merchant
    paid_on: str = ""  # final settlement: the day the last of them was paid ("": nothing to pay)
    damage_fen: int = 0  # inspected: the damage charged in all
    grades: str = ""  # inspected: "SN: grade" per device, comma-separated
    recovery_fee_fen: int = 0  # return overdue: the recovery fees charged in all


@dataclass(frozen=True, kw_only=True)
class ComplaintProgressed(DomainEvent):
    """A complaint moved on: ``step`` is what happened (raised, acknowledged, resolved, rejected,
    escalated, taken_over, closed, reopened); ``handler`` is who holds it now (agent or provider)."""

    name = "complaint.progressed"
    aggregate_type = "complaint"

    step: str
    status: str = ""
    merchant: str = ""
    category: str = ""
    subject: str = ""
    handler: str = ""
    agent: str = ""  # the agent's code it is addressed to ("" when addressed to the provider)
    case: str = ""  # the related closure case's number
    due_at: str = ""
    reason: str = ""  # why escalated (late, merchant, staff, case_review_late)
