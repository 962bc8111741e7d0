"""Who may renew a terminal's service: staff, the agent that signed the merchant, the merchant."""

from __future__ import annotations

import rules

from posfleet.fleet.rules import agent_of as fleet_agent_of
from posfleet.iam.rules import is_admin, is_agent, is_merchant, is_provider_staff, is_reviewer, is_warehouse
from posfleet.parties.rules import is_the_merchant, signed_the_merchant

# Offering a renewal (a notice with the price): staff and the agent that signed the merchant.
rules.add_perm("enrollment.offer_renewal", is_admin | (is_agent & signed_the_merchant))
rules.add_perm("enrollment.send_renewal_offers", is_admin | is_agent)
rules.add_perm(
    "enrollment.renew_service", is_admin | (is_agent & signed_the_merchant) | (is_merchant & is_the_merchant)
)
# Whether to offer renewal at all on the expiry calendar (the service decides per terminal, above).
rules.add_perm("enrollment.renew_some_service", is_admin | is_agent | is_merchant)

# Replacement (换机), asked about each terminal (the old one and the new one): an admin, or the agent
# that holds both. The merchant asks its agent for it; it does not replace on its own.
rules.add_perm("enrollment.replace_terminal", is_admin | fleet_agent_of)


# -- applications -----------------------------------------------------------------------------------


@rules.predicate
def serves_the_application(user: object, application: object) -> bool:
    """The application's agent is the user's agent organisation or one of its sub-agents."""
    org = getattr(user, "organisation", None)
    agent = getattr(application, "agent", None)
    return bool(org is not None and agent is not None and agent.organisation.path.startswith(org.path))


@rules.predicate
def applied_as_the_merchant(user: object, application: object) -> bool:
    """The user's merchant is the application's merchant (or its closed predecessor, or submitted it)."""
    org_id = getattr(user, "organisation_id", None)
    for name in ("merchant", "previous_merchant"):
        merchant = getattr(application, name, None)
        if merchant is not None and merchant.organisation_id == org_id:
            return True
    submitter = getattr(application, "submitted_by", None)
    return bool(submitter is not None and submitter.organisation_id == org_id)


agent_of_application = is_agent & serves_the_application
merchant_of_application = is_merchant & applied_as_the_merchant

rules.add_perm("enrollment.submit_application", is_admin | is_agent | is_merchant)
rules.add_perm(
    "enrollment.view_application", is_provider_staff | agent_of_application | merchant_of_application
)
# Reviewers decide; the service also refuses a reviewer's decision on an application they submitted.
rules.add_perm("enrollment.review_application", is_admin | is_reviewer)
# Personal data is shown to the people who must check it, and to no one else.
rules.add_perm("enrollment.view_kyc", is_admin | is_reviewer)
# Answering a request for more information: whoever may submit for this merchant.
rules.add_perm("enrollment.respond_application", is_admin | agent_of_application | merchant_of_application)
rules.add_perm("enrollment.fulfil_application", is_admin | is_warehouse | agent_of_application)
rules.add_perm("enrollment.confirm_delivery", is_admin | agent_of_application | merchant_of_application)
rules.add_perm("enrollment.install_application", is_admin | agent_of_application)
