"""How domain values look in the console: command icons and tones, status labels.

Labels always come from the domain's TextChoices (fleet/states.py, audit/vocabulary.py), so the
console never invents its own wording for a status, a command or a reason. Timeline rows (the event,
its reason and the facts worth showing) are the fleet's read model: fleet/timeline.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.functional import Promise

from posfleet.fleet.states import COMMAND_LABELS, SPECS, Command, Status

COMMAND_ICONS: dict[Command, str] = {
    Command.ALLOCATE: "box-arrow-right",
    Command.PULL_BACK: "box-arrow-in-left",
    Command.SHIP: "truck",
    Command.BIND: "link-45deg",
    Command.ACTIVATE: "lightning-charge",
    Command.SUSPEND: "pause-circle",
    Command.RESUME: "play-circle",
    Command.DEACTIVATE: "power",
    Command.REACTIVATE: "arrow-counterclockwise",
    Command.DEREGISTER: "x-octagon",
    Command.RECEIVE_RETURN: "box-arrow-in-down",
    Command.REFURBISH: "tools",
    Command.SCRAP: "trash3",
    Command.REPORT_LOST: "exclamation-triangle",
}

# The order in which the bulk toolbar offers commands: the everyday ones first.
COMMAND_PRIORITY: tuple[Command, ...] = (
    Command.DEACTIVATE,
    Command.REACTIVATE,
    Command.SUSPEND,
    Command.RESUME,
    Command.ALLOCATE,
    Command.SHIP,
    Command.BIND,
    Command.ACTIVATE,
    Command.PULL_BACK,
    Command.RECEIVE_RETURN,
    Command.REFURBISH,
    Command.DEREGISTER,
    Command.REPORT_LOST,
    Command.SCRAP,
)


@dataclass(frozen=True)
class CommandView:
    """A command as a button or a menu item."""

    value: str
    label: str | Promise
    icon: str
    destructive: bool  # needs step-up: shown in red


def command_view(command: Command) -> CommandView:
    return CommandView(
        value=command.value,
        label=COMMAND_LABELS[command],
        icon=COMMAND_ICONS[command],
        destructive=SPECS[command].step_up,
    )


def command_views(commands: Iterable[Command]) -> list[CommandView]:
    wanted = set(commands)
    return [command_view(c) for c in COMMAND_PRIORITY if c in wanted]


def status_label(value: str | None) -> str | Promise:
    if not value:
        return ""
    try:
        return Status(value).label
    except ValueError:
        return value
