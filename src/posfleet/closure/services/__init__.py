"""The closure context's services: the only writers of closure cases (``cases``: quote, request,
withdraw, review, shipment, step retry, the review clock; ``returns``: the device at the warehouse)."""

from posfleet.closure.common import case_for, job_actor, move, new_certificate_code, progressed
from posfleet.closure.services.cases import (
    AlreadyInCase,
    Proposal,
    QuoteStale,
    closure_decide,
    closure_quote,
    closure_report_shipment,
    closure_request,
    closure_step_retry,
    closure_withdraw,
    review_remind_sweep,
)
from posfleet.closure.services.returns import closure_inspect, closure_receive

__all__ = [
    "AlreadyInCase",
    "Proposal",
    "QuoteStale",
    "case_for",
    "closure_decide",
    "closure_inspect",
    "closure_quote",
    "closure_receive",
    "closure_report_shipment",
    "closure_request",
    "closure_step_retry",
    "closure_withdraw",
    "job_actor",
    "move",
    "new_certificate_code",
    "progressed",
    "review_remind_sweep",
]
