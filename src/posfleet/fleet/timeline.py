"""A terminal's timeline, one read model for every screen that shows it: the API
(``GET /terminals/{sn}/events``), the console's terminal page and the dashboard's latest events.

``terminal_timeline(user, sn)`` is the selector: the terminal the user may see (others' are
``NotFound``) with the audit events that belong to its timeline (its own and the import of its
batch), oldest first. ``timeline_entry`` says what a row shows: the event and its label, who did it,
the reason and its label, the note, the statuses before and after, and the facts of ``after`` worth
showing. Labels come from the domain's vocabularies (audit/vocabulary.py, fleet/states.py, and the
reasons another context registered for its own events with ``audit.vocabulary.register_reasons``),
never from a screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from posfleet.audit.selectors import events_for_any
from posfleet.audit.vocabulary import ActorKind, EventType, registered_reasons
from posfleet.fleet.models import Terminal
from posfleet.fleet.selectors import terminal_for
from posfleet.fleet.services import EVENT_OF
from posfleet.fleet.states import SPECS, Command
from posfleet.iam.models import Role, User
from posfleet.parties.selectors import agents_visible_to

if TYPE_CHECKING:
    from posfleet.audit.models import AuditEvent, AuditEventQuerySet

Label = str | Promise

# Facts recorded in ``after`` worth showing on a timeline row, in this order, with their labels. A fact
# that ``before`` already held with the same value did not change and is left out.
FACTS: dict[str, Promise] = {
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
    "kind": _("command"),
    "key_id": _("key ID"),
    "firmware": _("firmware"),
    "distance_m": _("distance from the store (m)"),
    "reported": _("reported position"),
}


@dataclass(frozen=True)
class Fact:
    key: str  # the key in ``after``
    label: Label
    value: Any


@dataclass(frozen=True)
class TimelineEntry:
    """One row of a timeline: the audit event with its labels and the facts worth showing."""

    seq: int
    occurred_at: datetime
    event_type: str
    event_label: Label
    actor_kind: str
    actor_kind_label: Label
    actor_label: str
    subject_type: str
    subject_id: str
    reason: str  # the code recorded
    reason_label: Label  # its label in the taxonomy of the command that recorded it
    note: str
    outcome: str
    before_status: str  # "" when the event changed no status
    after_status: str
    facts: tuple[Fact, ...]
    before: Mapping[str, Any]
    after: Mapping[str, Any]


@dataclass(frozen=True)
class TerminalTimeline:
    terminal: Terminal
    events: AuditEventQuerySet  # oldest first; the API pages it by ``seq``

    def entries(self, *, newest_first: bool = False) -> list[TimelineEntry]:
        return timeline_entries(self.events.order_by("-seq") if newest_first else self.events)


def timeline_subjects(terminal: Terminal) -> list[tuple[str, str]]:
    """The audit subjects whose events make up ``terminal``'s timeline."""
    subjects = [("terminal", terminal.sn)]
    if terminal.import_batch:
        subjects.append(("import_batch", terminal.import_batch))
    return subjects


def timeline_events(terminal: Terminal, reader: User | None = None) -> AuditEventQuerySet:
    """The events of ``terminal``'s timeline, oldest first, from where ``reader`` may read it
    (``tenure_start``; all of it without a reader). The caller checked that the reader may see the
    terminal (``terminal_timeline`` does)."""
    events = events_for_any(timeline_subjects(terminal))
    start = None if reader is None else tenure_start(terminal, reader)
    return events if start is None else events.filter(seq__gt=start)


def tenure_start(terminal: Terminal, reader: User) -> int | None:
    """Where ``reader``'s part of ``terminal``'s history starts (events with a greater ``seq``; None:
    from its start). The provider's staff read it all. A merchant or an agent reads the terminal's
    current life (after its latest refurbishment) since it last left another merchant (for a merchant
    reader) or an agent outside the reader's subtree (for an agent reader): a refurbished or taken-over
    device's earlier holders, with their codes, stores, TIDs, reasons and notes, are not theirs to read."""
    if reader.is_provider_staff:
        return None
    if reader.role == Role.MERCHANT and terminal.merchant is not None:
        key, mine = "merchant", [terminal.merchant.mid]
    elif reader.role == Role.AGENT and terminal.agent_id is not None:
        key, mine = "agent", list(agents_visible_to(reader).values_list("code", flat=True))  # its subtree
    else:
        return None
    held_by_another = (
        Q(before__has_key=key) & ~Q(**{f"before__{key}": None}) & ~Q(**{f"before__{key}__in": mine})
    )
    boundary = events_for_any([("terminal", terminal.sn)]).filter(
        Q(event_type=EVENT_OF[Command.REFURBISH]) | held_by_another
    )
    return boundary.order_by("-seq").values_list("seq", flat=True).first()


def terminal_timeline(user: User, sn: str) -> TerminalTimeline:
    """The terminal ``user`` may see (``NotFound`` otherwise) with the events of its timeline that are
    theirs to read (``tenure_start``), oldest first; ``.entries()``, or ``timeline_entries`` of a page of
    ``.events``, give the rows."""
    terminal = terminal_for(user, sn)
    return TerminalTimeline(terminal, timeline_events(terminal, user))


# -- labels -----------------------------------------------------------------------------------------

_COMMAND_OF_EVENT = {str(event): command for command, event in EVENT_OF.items()}


def event_label(event_type: str) -> Label:
    try:
        return EventType(event_type).label
    except ValueError:
        return event_type


def actor_kind_label(actor_kind: str) -> Label:
    try:
        return ActorKind(actor_kind).label
    except ValueError:
        return actor_kind


def reason_label(event_type: str, reason: str) -> Label:
    """The translated label of ``reason`` in the taxonomy of the event that recorded it; the code itself
    when no taxonomy knows it."""
    if not reason:
        return ""
    registered = registered_reasons(event_type)  # another context's own words for its event
    if registered is not None and reason in registered.values:
        return registered(reason).label
    command = _COMMAND_OF_EVENT.get(event_type)
    taxonomy = SPECS[command].reasons if command is not None else None
    if taxonomy is not None and reason in taxonomy.values:
        return taxonomy(reason).label
    for spec in SPECS.values():
        if spec.reasons is not None and reason in spec.reasons.values:
            return spec.reasons(reason).label
    return reason


def facts(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Fact, ...]:
    shown = []
    for key, label in FACTS.items():
        value = after.get(key)
        if value in (None, "") or (key in before and before.get(key) == value):
            continue
        shown.append(Fact(key, label, value))
    return tuple(shown)


def timeline_entry(event: AuditEvent) -> TimelineEntry:
    before = event.before or {}
    after = event.after or {}
    return TimelineEntry(
        seq=event.seq,
        occurred_at=event.occurred_at,
        event_type=event.event_type,
        event_label=event_label(event.event_type),
        actor_kind=event.actor_kind,
        actor_kind_label=actor_kind_label(event.actor_kind),
        actor_label=event.actor_label,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        reason=event.reason,
        reason_label=reason_label(event.event_type, event.reason),
        note=event.note,
        outcome=event.outcome,
        before_status=before.get("status") or "",
        after_status=after.get("status") or "",
        facts=facts(before, after),
        before=before,
        after=after,
    )


def timeline_entries(events: Iterable[AuditEvent]) -> list[TimelineEntry]:
    return [timeline_entry(e) for e in events]
