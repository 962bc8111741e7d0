"""How domain values look in the console: command icons and tones, reason labels, timeline rows.

Labels always come from the domain's TextChoices (fleet/states.py, audit/vocabulary.py), so the
console never invents its own wording for a status, a command or a reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from posfleet.audit.vocabulary import ActorKind, EventType
from posfleet.enrollment.replacement import ReplacementReason
from posfleet.fleet.services import EVENT_OF
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


_COMMAND_OF_EVENT: dict[str, Command] = {str(event): command for command, event in EVENT_OF.items()}


def reason_label(event_type: str, reason: str) -> str | Promise:
    """The translated label of ``reason`` in the taxonomy of the command that recorded it."""
    if not reason:
        return ""
    if event_type == EventType.TERMINAL_REPLACED and reason in ReplacementReason.values:
        return ReplacementReason(reason).label
    command = _COMMAND_OF_EVENT.get(event_type)
    taxonomy = SPECS[command].reasons if command is not None else None
    if taxonomy is not None and reason in taxonomy.values:
        return taxonomy(reason).label
    for spec in SPECS.values():
        if spec.reasons is not None and reason in spec.reasons.values:
            return spec.reasons(reason).label
    return reason


def event_label(event_type: str) -> str | Promise:
    try:
        return EventType(event_type).label
    except ValueError:
        return event_type


# Facts recorded in ``after`` worth showing on a timeline row, with their labels.
_DETAIL_LABELS: dict[str, Promise] = {
    "agent": _("agent"),
    "merchant": _("merchant"),
    "store": _("store"),
    "tid": _("TID"),
    "carrier": _("carrier"),
    "tracking_no": _("tracking no."),
    "replaces": _("replaces"),
    "replaced_by": _("replaced by"),
    "new_tid": _("new TID"),
    "count": _("terminals"),
}


@dataclass(frozen=True)
class TimelineRow:
    seq: int
    at: datetime
    event_type: str
    subject_type: str
    subject_id: str
    label: str | Promise
    actor: str
    actor_kind: str | Promise
    reason: str | Promise
    note: str
    before_status: str
    after_status: str
    outcome: str
    details: list[tuple[str | Promise, Any]] = field(default_factory=list)


def timeline_row(event: Any) -> TimelineRow:
    before = event.before or {}
    after = event.after or {}
    details: list[tuple[str | Promise, Any]] = []
    for key, label in _DETAIL_LABELS.items():
        value = after.get(key)
        if value in (None, "") or (key in before and before.get(key) == value):
            continue
        details.append((label, value))
    try:
        actor_kind: str | Promise = ActorKind(event.actor_kind).label
    except ValueError:
        actor_kind = event.actor_kind
    return TimelineRow(
        seq=event.seq,
        at=event.occurred_at,
        event_type=event.event_type,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        label=event_label(event.event_type),
        actor=event.actor_label,
        actor_kind=actor_kind,
        reason=reason_label(event.event_type, event.reason),
        note=event.note,
        before_status=before.get("status") or "",
        after_status=after.get("status") or "",
        outcome=event.outcome,
        details=details,
    )
