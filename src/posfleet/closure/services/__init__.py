"""The closure context's services: the only writers of closure cases (``cases``: quote, request,
withdraw, review, shipment, step retry, the review clock; ``returns``: the device at the warehouse;
``complaints``: merchants' complaints, their clock, and the provider taking an agent termination over)."""

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
from posfleet.closure.services.complaints import (
    allowed_commands,
    complaint_acknowledge,
    complaint_close,
    complaint_escalate,
    complaint_for,
    complaint_raise,
    complaint_reject,
    complaint_reopen,
    complaint_resolve,
    complaint_sla_sweep,
    complaint_take_over,
)
from posfleet.closure.services.returns import closure_inspect, closure_receive

__all__ = [
    "AlreadyInCase",
    "Proposal",
    "QuoteStale",
    "allowed_commands",
    "case_for",
    "closure_decide",
    "closure_inspect",
    "closure_quote",
    "closure_receive",
    "closure_report_shipment",
    "closure_request",
    "closure_step_retry",
    "closure_withdraw",
    "complaint_acknowledge",
    "complaint_close",
    "complaint_escalate",
    "complaint_for",
    "complaint_raise",
    "complaint_reject",
    "complaint_reopen",
    "complaint_resolve",
    "complaint_sla_sweep",
    "complaint_take_over",
    "job_actor",
    "move",
    "new_certificate_code",
    "progressed",
    "review_remind_sweep",
]
