"""Who may manage parties and who may see their personal contact data (phone, e-mail, name)."""

from __future__ import annotations

import rules

from posfleet.iam.rules import is_admin, is_agent, is_merchant


def _under(user: object, path: str) -> bool:
    org = getattr(user, "organisation", None)
    return bool(org is not None and path.startswith(org.path))


@rules.predicate
def signed_the_merchant(user: object, merchant: object) -> bool:
    """The merchant's agent is the user's agent organisation or one of its sub-agents."""
    return _under(user, merchant.agent.organisation.path)  # type: ignore[attr-defined]


@rules.predicate
def is_the_merchant(user: object, merchant: object) -> bool:
    return getattr(user, "organisation_id", None) == getattr(merchant, "organisation_id", -1)


@rules.predicate
def is_the_agent_or_above(user: object, agent: object) -> bool:
    return _under(user, agent.organisation.path)  # type: ignore[attr-defined]


rules.add_perm("parties.manage", is_admin)
# Contact data is personal data: the admin, the merchant itself and the agents that signed it.
rules.add_perm(
    "parties.view_merchant_contact",
    is_admin | (is_merchant & is_the_merchant) | (is_agent & signed_the_merchant),
)
rules.add_perm("parties.view_agent_contact", is_admin | (is_agent & is_the_agent_or_above))
