"""Who may manage parties, who may run each command of the merchant's life, and who may see their
personal contact data (phone, e-mail, name)."""

from __future__ import annotations

import rules

from posfleet.iam.rules import is_admin, is_agent, is_merchant
from posfleet.parties.states import Command


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

# The merchant's life is the provider's decision (risk, compliance, the end of a closure case): its
# admins, and the jobs and the system (which act on the provider's authority). Agents and merchants ask
# for a closure through its case; they do not close, suspend or resume a merchant themselves.
MERCHANT_COMMAND_RULES: dict[Command, rules.Predicate] = {
    Command.SUSPEND: is_admin,
    Command.RESUME: is_admin,
    Command.CLOSE: is_admin,
}


def merchant_permission(command: Command | str) -> str:
    return f"parties.{command}_merchant"


for _command, _predicate in MERCHANT_COMMAND_RULES.items():
    rules.add_perm(merchant_permission(_command), _predicate)

# Contact data is personal data: the admin, the merchant itself and the agents that signed it.
rules.add_perm(
    "parties.view_merchant_contact",
    is_admin | (is_merchant & is_the_merchant) | (is_agent & signed_the_merchant),
)
rules.add_perm("parties.view_agent_contact", is_admin | (is_agent & is_the_agent_or_above))

# Payment-channel bindings: recorded at activation and unbound at closure, both on the provider's
# authority (its admins; the closure case's jobs and the system pass as everywhere).
rules.add_perm("parties.bind_channel", is_admin)
rules.add_perm("parties.unbind_channel", is_admin)
