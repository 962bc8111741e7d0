"""Who may do what with money. Object predicates scope merchants like parties/rules.py."""

from __future__ import annotations

import rules

from posfleet.iam.rules import is_admin, is_agent, is_merchant, is_provider_staff, is_reviewer
from posfleet.parties.rules import is_the_merchant, signed_the_merchant

rules.add_perm("billing.manage_plans", is_admin)
rules.add_perm("billing.view_plans", rules.is_authenticated)
# Plan change requests (ADR 0027): the merchant or its agent asks (and may withdraw); the admin, who
# assigns plans, decides.
rules.add_perm(
    "billing.request_plan_change", (is_agent & signed_the_merchant) | (is_merchant & is_the_merchant)
)
rules.add_perm("billing.decide_plan_change", is_admin)
rules.add_perm("billing.offer_contract", is_admin | (is_agent & signed_the_merchant))
rules.add_perm("billing.accept_contract", is_admin | (is_merchant & is_the_merchant))
# Moving an active contract to the merchant's replacement terminal (换机): the object is the merchant.
rules.add_perm("billing.transfer_contract", is_admin | (is_agent & signed_the_merchant))
rules.add_perm("billing.release_deposit", is_admin | is_reviewer)
# Closure's postings (contract end, penalty, damage, deposit set-off): the closure case's job runs them.
rules.add_perm("billing.end_contract", is_admin)
rules.add_perm("billing.ingest_transactions", is_admin)
rules.add_perm("billing.run_settlement", is_admin)
rules.add_perm(
    "billing.view_money",
    is_provider_staff | (is_agent & signed_the_merchant) | (is_merchant & is_the_merchant),
)
