"""Re-application after closure (重新申请, DOMAIN.md workflow 5): who may have terminals again, and why.

Three parts, kept apart so each can be read and tested on its own (ADR 0015):

* **Policy** — versioned configuration in ``enrollment/policies/eligibility-<n>.json``: the waiting
  period, the look-back window, each factor's weight and scale, the decision thresholds. The version
  in force on a day is the one with the latest ``effective_from`` on or before it, unless
  ``settings.POSFLEET_ELIGIBILITY_POLICY`` pins one. Released files are never edited: a change is a
  new version, so a past decision can be re-explained with the version it used (its digest is kept).
* **Facts** — read from the database once (``merchant_facts``): a fixed handful of queries, every
  transaction figure aggregated in SQL.
* **Decision** — pure (``decide``): gates first (the waiting period must be over, nothing may be
  owed), then a score of 0–100 integer points, the sum of each factor's contribution
  ``weight × share ÷ 1000`` (share in permille from the factor's scale, rounded down, so a
  contribution never exceeds its weight). Every factor and gate carries a precise text for staff and
  a plain one for the merchant, translated when shown.

``assess(merchant, on=…)`` does all three; ``Assessment.as_json()`` / ``Assessment.from_json()``
store a decision with its policy version and rebuild it, texts included, in any language.
"""

from posfleet.enrollment.eligibility.codes import FACTORS, Outcome
from posfleet.enrollment.eligibility.decision import Assessment, assess, decide
from posfleet.enrollment.eligibility.facts import Facts, MerchantNotClosed, merchant_facts
from posfleet.enrollment.eligibility.policy import (
    POLICY_DIR,
    PolicyError,
    load_policies,
    load_policy,
    parse_policy,
    policy_in_force,
    policy_version,
    shipped_policies,
)

__all__ = [
    "FACTORS",
    "POLICY_DIR",
    "Assessment",
    "Facts",
    "MerchantNotClosed",
    "Outcome",
    "PolicyError",
    "assess",
    "decide",
    "load_policies",
    "load_policy",
    "merchant_facts",
    "parse_policy",
    "policy_in_force",
    "policy_version",
    "shipped_policies",
]
