"""Decision: pure, explained."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from posfleet.enrollment.eligibility.codes import (
    FACTOR_LABELS,
    GATE_LABELS,
    OUTCOME_LABELS,
    OUTSTANDING_DEBT,
    WAITING_PERIOD,
    FactorCode,
    Outcome,
    Text,
)
from posfleet.enrollment.eligibility.facts import Facts, MerchantRef, merchant_facts
from posfleet.enrollment.eligibility.policy import Policy, PolicyError, policy_in_force, policy_version
from posfleet.enrollment.eligibility.texts import (
    _debt_texts,
    _explain,
    _staff_summary,
    _summary,
    _waiting_texts,
)
from posfleet.platform.clock import today


@dataclass(frozen=True)
class Factor:
    code: str  # FactorCode
    value: int | str | None  # months | fen | basis points | refunds | reason | days since KYC; None: unknown
    weight: int  # points this factor can give
    share_permille: int  # how much of the weight it gives
    contribution: int  # weight × share ÷ 1000, rounded down: points
    staff_text: Text
    merchant_text: Text

    @property
    def label(self) -> Text:
        return FACTOR_LABELS[self.code]


@dataclass(frozen=True)
class Gate:
    """A condition checked before the score: the waiting period is over, nothing is owed."""

    code: str  # WAITING_PERIOD | OUTSTANDING_DEBT
    passed: bool
    value: int | str  # the waiting period's last day (ISO date) | the debt in fen
    staff_text: Text
    merchant_text: Text

    @property
    def label(self) -> Text:
        return GATE_LABELS[self.code]


@dataclass(frozen=True)
class Assessment:
    on: date
    outcome: str  # Outcome
    score: int  # 0–100: the sum of the factors' contributions
    facts: Facts
    factors: tuple[Factor, ...]
    gates: tuple[Gate, ...]
    policy_version: int
    policy_digest: str
    staff_text: Text  # one line: outcome, score, thresholds
    merchant_text: Text  # one line, plain words

    @property
    def outcome_label(self) -> Text:
        return OUTCOME_LABELS[self.outcome]

    @property
    def summary(self) -> Text:
        """The one-line answer in plain words (``merchant_text``), e.g. for a refusal's detail."""
        return self.merchant_text

    @property
    def waiting_ends_on(self) -> date:
        return date.fromisoformat(str(self.gates[0].value))

    def as_json(self) -> dict[str, Any]:
        """What to store: the facts, the policy version (and digest) and the result; texts are rebuilt."""
        return {
            "on": self.on.isoformat(),
            "policy": {"version": self.policy_version, "sha256": self.policy_digest},
            "outcome": self.outcome,
            "score": self.score,
            "facts": self.facts.as_json(),
            "factors": [
                {"code": f.code, "value": f.value, "weight": f.weight, "contribution": f.contribution}
                for f in self.factors
            ],
            "gates": [{"code": g.code, "passed": g.passed, "value": g.value} for g in self.gates],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, policy: Policy | None = None) -> Assessment:
        """Rebuild a stored decision with the policy version it used (shipped, or ``policy``); refuses when
        that version's rules changed since or the stored result does not follow from its facts."""
        version, digest = int(data["policy"]["version"]), str(data["policy"]["sha256"])
        used = policy or policy_version(version)
        if (used.version, used.digest) != (version, digest):
            raise PolicyError(
                f"eligibility policy {version}",
                [f"the decision was made with rules {digest[:12]}…, the policy now has {used.digest[:12]}…"],
            )
        rebuilt = decide(Facts.from_json(data["facts"]), used, on=date.fromisoformat(data["on"]))
        if rebuilt.as_json() != json.loads(json.dumps(data)):
            raise ValueError("the stored decision does not follow from its facts and policy")
        return rebuilt


def decide(facts: Facts, policy: Policy, *, on: date) -> Assessment:
    """The decision on ``on`` for ``facts`` under ``policy``. Pure: no database, no clock."""
    if facts.lookback_months != policy.lookback_months:
        raise ValueError("the facts were gathered for another look-back than the policy's")
    values: dict[str, int | str | None] = {
        FactorCode.MONTHS_ACTIVE: facts.months_active,
        FactorCode.VOLUME: facts.volume_fen,
        FactorCode.ANOMALY_RATE: facts.anomaly_rate_bp,
        FactorCode.DISPUTES: facts.refunds,
        FactorCode.CLOSURE_REASON: facts.closure_reason or None,
        FactorCode.KYC_FRESHNESS: facts.kyc_age_days(on),
    }
    factors = []
    for code, rule in policy.rules:
        share = rule.share(values[code])
        points = rule.weight * share // 1000
        staff, merchant = _explain(code, values[code], facts, rule, share, points, on)
        factors.append(Factor(code, values[code], rule.weight, share, points, staff, merchant))
    score = sum(f.contribution for f in factors)
    ends_on = facts.closed_on + timedelta(days=policy.waiting_days)
    gates = (
        Gate(WAITING_PERIOD, on >= ends_on, ends_on.isoformat(), *_waiting_texts(facts, policy, ends_on, on)),
        Gate(OUTSTANDING_DEBT, facts.debt_fen <= 0, facts.debt_fen, *_debt_texts(facts)),
    )
    if not gates[0].passed:
        outcome = Outcome.TOO_EARLY
    elif not gates[1].passed:
        outcome = Outcome.BLOCKED
    elif score >= policy.approve_at:
        outcome = Outcome.APPROVE
    elif score >= policy.review_at:
        outcome = Outcome.MANUAL_REVIEW
    else:
        outcome = Outcome.REJECT
    return Assessment(
        on=on,
        outcome=outcome,
        score=score,
        facts=facts,
        factors=tuple(factors),
        gates=gates,
        policy_version=policy.version,
        policy_digest=policy.digest,
        staff_text=_staff_summary(outcome, score, policy),
        merchant_text=_summary(outcome, ends_on, facts.debt_fen),
    )


def assess(
    merchant: MerchantRef,
    *,
    on: date | None = None,
    policy: Policy | None = None,
    kyc_checked_on: date | None = None,
) -> Assessment:
    """May ``merchant`` (closed) have terminals again? Read its history, decide under the policy in force
    on ``on`` (today by default) unless one is given, and explain. ``kyc_checked_on``: the day of its
    last KYC check, if known (unknown is neutral)."""
    day = on or today()
    chosen = policy or policy_in_force(day)
    facts = merchant_facts(merchant, lookback_months=chosen.lookback_months, kyc_checked_on=kyc_checked_on)
    return decide(facts, chosen, on=day)
