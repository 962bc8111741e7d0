"""A relocation alert's life (移机告警) as data. Pure Python: no ORM, no Django settings.

A terminal's heartbeat reported a position far from its store's coordinates: the heartbeat service
opens an alert (at most one open per terminal); a person with the right to manage terminals reviews it
once: the terminal did move (``confirmed_moved``) or it is a false alarm (``dismissed``, with why).
Both are final: a later move raises a new alert (``fleet/services/health.py``).

``TRANSITIONS`` maps ``(status, command) -> next status``; the services, the console's buttons, the
Mermaid diagram in docs/state-machines/relocation-alert.md and the tests are derived from it.
"""

from __future__ import annotations

from enum import StrEnum

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class RelocationStatus(TextChoices):
    OPEN = "open", pgettext_lazy("relocation alert status", "open")  # raised, waiting for a review
    CONFIRMED_MOVED = "confirmed_moved", _("confirmed moved")  # the terminal did move (final)
    DISMISSED = "dismissed", pgettext_lazy("relocation alert status", "dismissed")  # a false alarm (final)


class RelocationCommand(StrEnum):
    CONFIRM_MOVED = "confirm_moved"
    DISMISS = "dismiss"


COMMAND_LABELS = {
    RelocationCommand.CONFIRM_MOVED: _("Confirm moved"),
    RelocationCommand.DISMISS: _("Dismiss"),
}

S, C = RelocationStatus, RelocationCommand

INITIAL = S.OPEN
TRANSITIONS: dict[tuple[RelocationStatus, RelocationCommand], RelocationStatus] = {
    (S.OPEN, C.CONFIRM_MOVED): S.CONFIRMED_MOVED,
    (S.OPEN, C.DISMISS): S.DISMISSED,
}
FINAL = frozenset({S.CONFIRMED_MOVED, S.DISMISSED})
# A dismissal says why the alert was a false alarm; a confirmation may say what follows.
NOTE_REQUIRED = frozenset({C.DISMISS})


def next_state(current: str, command: str) -> RelocationStatus | None:
    """The status ``command`` leads to from ``current``, or None when it is not allowed there."""
    try:
        return TRANSITIONS.get((RelocationStatus(current), RelocationCommand(command)))
    except ValueError:
        return None


def commands_from(current: str) -> list[RelocationCommand]:
    return [cmd for (state, cmd) in TRANSITIONS if state == current]


def to_mermaid() -> str:
    """The machine as a Mermaid state diagram (docs/state-machines/relocation-alert.md)."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL.value}: heartbeat far from the store"]
    for (state, command), target in TRANSITIONS.items():
        lines.append(f"    {state.value} --> {target.value}: {command.value}")
    for state in sorted(FINAL, key=lambda s: s.value):
        lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines) + "\n"
