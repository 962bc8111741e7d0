"""The codes eligibility speaks in (factors, gates, outcomes) and their translated labels."""

from __future__ import annotations

from enum import StrEnum

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

type Text = str | Promise  # translated when rendered, in the language active then


class FactorCode(StrEnum):
    MONTHS_ACTIVE = "months_active"
    VOLUME = "volume"
    ANOMALY_RATE = "anomaly_rate"
    DISPUTES = "disputes"
    CLOSURE_REASON = "closure_reason"
    KYC_FRESHNESS = "kyc_freshness"


FACTORS = (
    FactorCode.MONTHS_ACTIVE,
    FactorCode.VOLUME,
    FactorCode.ANOMALY_RATE,
    FactorCode.DISPUTES,
    FactorCode.CLOSURE_REASON,
    FactorCode.KYC_FRESHNESS,
)
FACTOR_LABELS: dict[str, Text] = {
    FactorCode.MONTHS_ACTIVE: gettext_lazy("Months active"),
    FactorCode.VOLUME: gettext_lazy("Takings"),
    FactorCode.ANOMALY_RATE: gettext_lazy("Declines and reversals"),
    FactorCode.DISPUTES: gettext_lazy("Refunds (disputes)"),
    FactorCode.CLOSURE_REASON: gettext_lazy("Closure reason"),
    FactorCode.KYC_FRESHNESS: gettext_lazy("KYC freshness"),
}
WAITING_PERIOD, OUTSTANDING_DEBT = "waiting_period", "outstanding_debt"
GATE_LABELS: dict[str, Text] = {
    WAITING_PERIOD: gettext_lazy("Waiting period"),
    OUTSTANDING_DEBT: gettext_lazy("Outstanding debt"),
}


class Outcome(StrEnum):
    TOO_EARLY = "too_early"
    BLOCKED = "blocked"
    APPROVE = "approve"
    MANUAL_REVIEW = "manual_review"
    REJECT = "reject"


OUTCOME_LABELS: dict[str, Text] = {
    Outcome.TOO_EARLY: gettext_lazy("too early"),
    Outcome.BLOCKED: gettext_lazy("blocked by debt"),
    Outcome.APPROVE: gettext_lazy("approve"),
    Outcome.MANUAL_REVIEW: gettext_lazy("manual review"),
    Outcome.REJECT: gettext_lazy("reject"),
}
