"""Who may do what with a closure case (django-rules). Asked on the case's merchant, so the same rule
answers before a case exists (requesting) and after (withdrawing, reading)."""

from __future__ import annotations

import rules

from posfleet.iam.rules import is_admin, is_agent, is_merchant, is_provider_staff, is_reviewer, is_warehouse
from posfleet.parties.rules import is_the_merchant, signed_the_merchant

# On a merchant: the merchant itself, the agent that signed it (or one above), the provider's admins.
its_people = is_admin | (is_merchant & is_the_merchant) | (is_agent & signed_the_merchant)

rules.add_perm("closure.request_closure", its_people)
rules.add_perm("closure.withdraw_closure", its_people)
rules.add_perm(
    "closure.view_closure",
    is_provider_staff | (is_merchant & is_the_merchant) | (is_agent & signed_the_merchant),
)
# Reviewers decide (the service also refuses the person who asked: maker-checker).
rules.add_perm("closure.review_closure", is_admin | is_reviewer)
# The returned device: received and graded at the warehouse.
rules.add_perm("closure.handle_return", is_admin | is_warehouse)
# Giving the parcel's tracking number: whoever may withdraw.
rules.add_perm("closure.report_shipment", its_people)
# Starting a step that needs attention again (after a channel refused, say): the provider's admins.
rules.add_perm("closure.retry_step", is_admin)


# -- ending with the agent, and complaints (ADR 0023) ---------------------------------------------------


def _under(user: object, path: str) -> bool:
    org = getattr(user, "organisation", None)
    return bool(org is not None and path.startswith(org.path))


@rules.predicate
def is_agent_termination(user: object, case: object) -> bool:
    return getattr(case, "kind", "") == "agent_termination"


@rules.predicate
def taken_over(user: object, case: object) -> bool:
    return getattr(case, "taken_over_at", None) is not None


@rules.predicate
def signed_the_cases_merchant(user: object, case: object) -> bool:
    return _under(user, case.merchant.agent.organisation.path)  # type: ignore[attr-defined]


# Asking to end with the agent is the merchant's own step (or the provider's admins', on its behalf).
rules.add_perm("closure.request_agent_termination", is_admin | (is_merchant & is_the_merchant))
# Who decides a case (on the case): a closure, the provider's reviewers; an agent termination, the
# merchant's agent (or one above) until the provider's staff take it over, then those staff only.
provider_reviewers = is_admin | is_reviewer
rules.add_perm(
    "closure.decide_case",
    (~is_agent_termination & provider_reviewers)
    | (is_agent_termination & ~taken_over & is_agent & signed_the_cases_merchant)
    | (is_agent_termination & taken_over & provider_reviewers),
)


@rules.predicate
def owns_the_complaint(user: object, complaint: object) -> bool:
    return getattr(user, "organisation_id", None) == complaint.merchant.organisation_id  # type: ignore[attr-defined]


@rules.predicate
def addressed_to_users_agent(user: object, complaint: object) -> bool:
    """Addressed to the user's agent organisation or one of its sub-agents."""
    return _under(user, complaint.addressed_to.path)  # type: ignore[attr-defined]


@rules.predicate
def with_provider(user: object, complaint: object) -> bool:
    return complaint.escalated_at is not None or complaint.addressed_to.kind == "provider"  # type: ignore[attr-defined]


rules.add_perm(
    "closure.view_complaint",
    is_provider_staff | (is_merchant & owns_the_complaint) | (is_agent & addressed_to_users_agent),
)
# Raising (on the merchant): the merchant itself, or the provider's admins recording one it phoned in.
rules.add_perm("closure.raise_complaint", is_admin | (is_merchant & is_the_merchant))
# Acknowledging and answering: whoever holds it — the agent it is addressed to, or the provider's staff.
rules.add_perm(
    "closure.handle_complaint",
    (~with_provider & is_agent & addressed_to_users_agent) | (with_provider & provider_reviewers),
)
# Escalating to the provider: the merchant, or the provider's staff taking it.
rules.add_perm("closure.escalate_complaint", (is_merchant & owns_the_complaint) | provider_reviewers)
# Taking the related agent termination over: the provider's reviewers and admins.
rules.add_perm("closure.take_over_case", provider_reviewers)
# Closing (satisfied, or withdrawn) and reopening: the merchant.
rules.add_perm("closure.close_complaint", is_merchant & owns_the_complaint)
