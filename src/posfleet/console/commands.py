"""Which terminal commands the console offers, and to which of the selected terminals they apply.

Everything is derived from the rules in fleet/rules.py and the table in fleet/states.py through
fleet.selectors; the services check it all again when the command runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from posfleet.fleet import selectors as fleet
from posfleet.fleet.models import Terminal
from posfleet.fleet.rules import permission_name
from posfleet.fleet.states import Command, Status, next_state
from posfleet.iam.models import User


def commands_for_role(user: User) -> list[Command]:
    """The commands ``user`` could run on *some* terminal in their scope (the bulk toolbar).

    The rules are asked about a stand-in terminal held by the user's own agent organisation and
    owned by their own merchant organisation, so the answer follows fleet/rules.py exactly.
    """
    organisation = getattr(user, "organisation", None)
    stand_in = SimpleNamespace(
        agent=SimpleNamespace(organisation=organisation) if organisation is not None else None,
        merchant=SimpleNamespace(organisation_id=getattr(user, "organisation_id", None)),
    )
    return [
        command
        for command in Command
        if user.has_perm(permission_name(command), stand_in)  # type: ignore[arg-type]
    ]


def parse_sns(raw: Sequence[str]) -> list[str]:
    """Selected serial numbers, normalised, duplicates dropped, order kept, capped at the bulk limit."""
    seen: dict[str, None] = {}
    for value in raw:
        sn = value.strip().upper()
        if sn and len(sn) <= 32:
            seen.setdefault(sn, None)
    return list(seen)[: settings.POSFLEET["BULK_MAX_ITEMS"]]


@dataclass(frozen=True)
class Candidate:
    """One selected terminal and whether the command applies to it."""

    sn: str
    terminal: Terminal | None
    applies: bool
    why: str | Promise = ""  # when it does not apply: why it will be skipped


def preview(user: User, command: Command, sns: Sequence[str]) -> list[Candidate]:
    found = {t.sn: t for t in fleet.terminals_visible_to(user).filter(sn__in=list(sns))}
    candidates = []
    for sn in sns:
        terminal = found.get(sn)
        if terminal is None:
            candidates.append(Candidate(sn, None, False, _("not found")))
        elif command in fleet.allowed_commands(user, terminal):
            candidates.append(Candidate(sn, terminal, True))
        elif next_state(terminal.status, command) is None:
            status = Status(terminal.status).label
            why = _("not possible while the terminal is %(status)s") % {"status": status}
            candidates.append(Candidate(sn, terminal, False, why))
        else:
            candidates.append(Candidate(sn, terminal, False, _("you may not do this for this terminal")))
    return candidates
