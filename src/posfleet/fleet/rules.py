"""Who may run which terminal command (django-rules). Scope is checked twice: the selectors hide
others' terminals (404) and these object predicates refuse them again (defence in depth)."""

from __future__ import annotations

import rules

from posfleet.fleet.states import Command
from posfleet.iam.rules import is_admin, is_agent, is_merchant, is_provider_staff, is_warehouse


@rules.predicate
def holds_terminal(user: object, terminal: object) -> bool:
    """The terminal's agent is the user's agent organisation or one of its sub-agents."""
    org = getattr(user, "organisation", None)
    agent = getattr(terminal, "agent", None)
    return bool(org is not None and agent is not None and agent.organisation.path.startswith(org.path))


@rules.predicate
def owns_terminal(user: object, terminal: object) -> bool:
    merchant = getattr(terminal, "merchant", None)
    return bool(merchant is not None and merchant.organisation_id == getattr(user, "organisation_id", None))


agent_of = is_agent & holds_terminal
merchant_of = is_merchant & owns_terminal
stock_keeper = is_admin | is_warehouse

COMMAND_RULES: dict[Command, rules.Predicate] = {
    Command.ALLOCATE: stock_keeper,
    Command.PULL_BACK: stock_keeper,
    Command.SHIP: stock_keeper | agent_of,  # the warehouse, or the agent shipping from its stock
    Command.BIND: is_admin | agent_of,
    Command.ACTIVATE: is_admin | agent_of,
    Command.SUSPEND: is_admin,
    Command.RESUME: is_admin,
    Command.DEACTIVATE: is_admin | agent_of | merchant_of,
    Command.REACTIVATE: is_admin | agent_of | merchant_of,
    Command.DEREGISTER: is_admin,
    Command.RECEIVE_RETURN: stock_keeper,
    Command.REFURBISH: stock_keeper,
    Command.SCRAP: stock_keeper,
    Command.REPORT_LOST: is_admin | agent_of | merchant_of,
}


def permission_name(command: Command | str) -> str:
    return f"fleet.{command}_terminal"


for _command, _predicate in COMMAND_RULES.items():
    rules.add_perm(permission_name(_command), _predicate)

rules.add_perm("fleet.view_terminal", is_provider_staff | agent_of | merchant_of)
rules.add_perm("fleet.import_terminals", stock_keeper)
rules.add_perm("fleet.export_terminals", rules.is_authenticated)

# -- the device channel of smart terminals (fleet/services/devices.py) ------------------------------
# The provider's admins and warehouse run every command (the warehouse wipes and re-parameterises
# devices it refurbishes); an agent locks, unlocks and messages the devices of its own merchants; a
# merchant may lock its own device (as it may report it lost) and message its own staff, but never
# unlock it (a lock may be the provider's, for risk), wipe it or change its parameters. The credential
# a device signs in with is the warehouse's to issue and revoke (it provisions the device).
DEVICE_COMMAND_RULES: dict[str, rules.Predicate] = {
    "lock": stock_keeper | agent_of | merchant_of,
    "unlock": stock_keeper | agent_of,
    "wipe": stock_keeper,
    "message": stock_keeper | agent_of | merchant_of,
    "update_params": stock_keeper,
}


def device_command_permission(kind: str) -> str:
    return f"fleet.send_{kind}_device_command"


for _kind, _predicate in DEVICE_COMMAND_RULES.items():
    rules.add_perm(device_command_permission(_kind), _predicate)

rules.add_perm("fleet.view_device_commands", is_provider_staff | agent_of | merchant_of)
rules.add_perm("fleet.manage_device_credential", stock_keeper)

# -- device health: relocation alerts (移机告警, fleet/services/health.py) ------------------------------
# Whoever sees the terminal sees its alerts (the provider's staff, its agents, its merchant; nobody
# else: 404). Reviewing one (confirm moved, dismiss) is the provider's admins', who manage terminals in
# the field (suspend, resume, deregister).
rules.add_perm("fleet.view_relocation_alert", is_provider_staff | agent_of | merchant_of)
rules.add_perm("fleet.review_relocation_alert", is_admin)
