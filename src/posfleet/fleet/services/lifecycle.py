"""The terminal life: one service function per command, the only writers of ``Terminal.status``.

Each runs the same steps (STYLE.md §1-§7), in one transaction:
lock the row → check scope (404) and permission (403) → check the transition (409), the reason (422)
and the guards named by the command's spec (409, ``fleet/guards.py``) → require a fresh step-up for
destructive commands (403) → move the status with compare-and-set → write the audit event and the
outbox message. A refusal raises before anything is written, so nothing changes and nothing is
recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from auditlog.context import disable_auditlog
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django_fsm import ConcurrentTransition

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.events import TerminalStatusChanged
from posfleet.fleet.guards import GUARDS, Change, reactivation_deadline
from posfleet.fleet.models import TID_VALIDATOR, StatusPeriod, Terminal
from posfleet.fleet.rules import permission_name
from posfleet.fleet.services import keys
from posfleet.fleet.services.locks import terminal_lock
from posfleet.fleet.states import (
    RESERVED_REASONS,
    SPECS,
    Command,
    Status,
    commands_from,
    next_state,
    offered_reasons,
)
from posfleet.iam.selectors import organisations_told
from posfleet.iam.stepup import require_fresh_step_up
from posfleet.parties import selectors as parties
from posfleet.platform import counters
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    Conflict,
    DomainError,
    NotFound,
    TransitionNotAllowed,
    ValidationFailed,
)
from posfleet.platform.events import publish

EVENT_OF: dict[Command, EventType] = {
    Command.ALLOCATE: EventType.TERMINAL_ALLOCATED,
    Command.PULL_BACK: EventType.TERMINAL_PULLED_BACK,
    Command.SHIP: EventType.TERMINAL_SHIPPED,
    Command.BIND: EventType.TERMINAL_BOUND,
    Command.ACTIVATE: EventType.TERMINAL_ACTIVATED,
    Command.SUSPEND: EventType.TERMINAL_SUSPENDED,
    Command.RESUME: EventType.TERMINAL_RESUMED,
    Command.DEACTIVATE: EventType.TERMINAL_DEACTIVATED,
    Command.REACTIVATE: EventType.TERMINAL_REACTIVATED,
    Command.DEREGISTER: EventType.TERMINAL_DEREGISTERED,
    Command.RECEIVE_RETURN: EventType.TERMINAL_RETURN_RECEIVED,
    Command.REFURBISH: EventType.TERMINAL_REFURBISHED,
    Command.SCRAP: EventType.TERMINAL_SCRAPPED,
    Command.REPORT_LOST: EventType.TERMINAL_REPORTED_LOST,
}

TID_COUNTER = "terminal_tid"
TID_START = 10_000_000


def _check_reason(actor: Actor, command: Command, reason: str, note: str) -> str:
    spec = SPECS[command]
    if spec.reasons is None:
        if reason:
            raise ValidationFailed(_("This action takes no reason."), field="reason")
        return ""
    allowed = [value for value, _label in offered_reasons(command)]
    if not reason:
        raise ValidationFailed(_("Choose a reason."), field="reason", allowed=allowed)
    if reason in RESERVED_REASONS and reason in spec.reasons.values and actor.is_system:
        return reason  # e.g. "replacement", passed by enrollment.replacement as its job
    if reason not in allowed:
        raise ValidationFailed(
            _("Unknown reason “%(reason)s”.") % {"reason": reason[:48]},
            field="reason",
            allowed=allowed,
        )
    if reason == "other" and not note.strip():
        raise ValidationFailed(_("Say in the note what the other reason is."), field="note")
    return reason


def _run(
    *,
    actor: Actor,
    sn: str,
    command: Command,
    reason: str = "",
    note: str = "",
    prepare: Callable[[Terminal], Change] | None = None,
    extra: dict[str, Any] | None = None,
) -> Terminal:
    note = clean_text(note)
    with transaction.atomic():
        terminal = terminal_lock(actor, sn)
        actor.require(permission_name(command), terminal)
        target = next_state(terminal.status, command)
        if target is None:
            raise TransitionNotAllowed(
                _("“%(command)s” is not allowed while the terminal is %(status)s.")
                % {"command": command.value, "status": Status(terminal.status).label},
                current_status=terminal.status,
                allowed=[c.value for c in commands_from(terminal.status)],
            )
        reason = _check_reason(actor, command, reason, note)
        change = prepare(terminal) if prepare is not None else Change()
        change.asked.setdefault("by_system", actor.is_system)
        for guard in SPECS[command].guards:
            GUARDS[guard](terminal, change)
        if SPECS[command].step_up:
            require_fresh_step_up(actor)

        before = terminal.snapshot()
        from_status = terminal.status
        at = now()
        getattr(terminal, command.value)()  # the django-fsm-2 transition: moves the status only
        for name, value in change.fields.items():
            setattr(terminal, name, value)
        terminal.status_reason = reason
        terminal.status_changed_at = at
        if command == Command.DEACTIVATE:
            terminal.deactivated_at = at
        elif command in {Command.REACTIVATE, Command.DEREGISTER}:
            terminal.deactivated_at = None
        try:
            # Compare-and-set: UPDATE ... WHERE status = <from_status>. The transition's record is the
            # audit event below (before and after, hash-chained); django-auditlog's field diffs are for
            # plain edits (the admin), so it does not write a second, weaker copy of this one.
            with disable_auditlog():
                terminal.save()
        except ConcurrentTransition as exc:
            raise Conflict() from exc
        StatusPeriod.objects.filter(terminal=terminal, ended_at__isnull=True).update(ended_at=at)
        StatusPeriod.objects.create(terminal=terminal, status=terminal.status, started_at=at)
        key_change = keys.on_transition(terminal, command, by=actor.label, at=at)
        after = terminal.snapshot()
        publish(
            [
                TerminalStatusChanged(
                    aggregate_id=terminal.sn,
                    organisation_ids=organisations_of(terminal),
                    command=command.value,
                    from_status=from_status,
                    to_status=terminal.status,
                    reason=reason,
                    tid=terminal.tid,
                    merchant=after["merchant"],
                    agent=after["agent"],
                    reactivate_until=(
                        reactivation_deadline(at).isoformat() if command == Command.DEACTIVATE else ""
                    ),
                )
            ],
            occurred_at=at,
        )
        # The audit row last: the chain's head stays locked from here to the commit, and every audited
        # write in the system waits for it (bench/transitions.py).
        record(
            actor,
            Entry(
                event_type=EVENT_OF[command],
                subject_type="terminal",
                subject_id=terminal.sn,
                reason=reason,
                note=note,
                before=before,
                after={**after, **key_change, **(extra or {})},
                occurred_at=at,
            ),
        )
    return terminal


def organisations_of(terminal: Terminal) -> tuple[int, ...]:
    """Who hears of this terminal's events: the provider, the agents above the one holding it and
    above its merchant, and the merchant (``iam.selectors.organisations_told``)."""
    return organisations_told(
        terminal.agent.organisation.path if terminal.agent is not None else None,
        terminal.merchant.organisation.path if terminal.merchant is not None else None,
    )


# ---------------------------------------------------------------------------------------------
# One function per command.


def terminal_allocate(*, actor: Actor, sn: str, agent_code: str = "", note: str = "") -> Terminal:
    def prepare(terminal: Terminal) -> Change:
        if not agent_code:
            raise ValidationFailed(_("Choose the agent to allocate to."), field="agent")
        try:
            agent = parties.agent_for(actor.scope_user, agent_code)
        except NotFound as exc:
            raise ValidationFailed(
                _("Unknown agent “%(code)s”.") % {"code": agent_code[:16]}, field="agent"
            ) from exc
        return Change({"agent": agent})

    return _run(actor=actor, sn=sn, command=Command.ALLOCATE, note=note, prepare=prepare)


def terminal_pull_back(*, actor: Actor, sn: str, note: str = "") -> Terminal:
    return _run(
        actor=actor, sn=sn, command=Command.PULL_BACK, note=note, prepare=lambda t: Change({"agent": None})
    )


def terminal_ship(
    *, actor: Actor, sn: str, carrier: str = "", tracking_no: str = "", note: str = ""
) -> Terminal:
    extra = {"carrier": clean_text(carrier, 64), "tracking_no": clean_text(tracking_no, 64)}
    return _run(
        actor=actor, sn=sn, command=Command.SHIP, note=note, extra={k: v for k, v in extra.items() if v}
    )


def terminal_bind(
    *, actor: Actor, sn: str, merchant_mid: str = "", store_code: str = "", tid: str = "", note: str = ""
) -> Terminal:
    def prepare(terminal: Terminal) -> Change:
        if not merchant_mid:
            raise ValidationFailed(_("Give the merchant ID (MID) to bind to."), field="merchant")
        try:
            merchant = parties.merchant_for(actor.scope_user, merchant_mid)
        except NotFound as exc:
            raise ValidationFailed(
                _("Unknown merchant “%(mid)s”.") % {"mid": merchant_mid[:15]}, field="merchant"
            ) from exc
        store = parties.store_of(merchant, store_code) if store_code else None
        new_tid = tid.strip().upper()
        if new_tid:
            try:
                TID_VALIDATOR(new_tid)
            except Exception as exc:
                raise ValidationFailed(
                    _("A terminal ID (TID) is 8 digits or capital letters."), field="tid"
                ) from exc
            if Terminal.objects.filter(tid=new_tid).exists():
                raise ValidationFailed(_("This TID is already in use."), field="tid")
        else:
            new_tid = f"{TID_START + counters.next_values(TID_COUNTER)[0]:08d}"
        return Change(
            {"merchant": merchant, "store": store, "tid": new_tid}, asked={"store_code": store_code}
        )

    return _run(actor=actor, sn=sn, command=Command.BIND, note=note, prepare=prepare)


def terminal_activate(*, actor: Actor, sn: str, note: str = "") -> Terminal:
    return _run(actor=actor, sn=sn, command=Command.ACTIVATE, note=note)


def terminal_suspend(*, actor: Actor, sn: str, reason: str, note: str = "") -> Terminal:
    return _run(actor=actor, sn=sn, command=Command.SUSPEND, reason=reason, note=note)


def terminal_resume(*, actor: Actor, sn: str, note: str = "") -> Terminal:
    return _run(actor=actor, sn=sn, command=Command.RESUME, note=note)


def terminal_deactivate(*, actor: Actor, sn: str, reason: str, note: str = "") -> Terminal:
    return _run(actor=actor, sn=sn, command=Command.DEACTIVATE, reason=reason, note=note)


def terminal_reactivate(*, actor: Actor, sn: str, note: str = "") -> Terminal:
    return _run(actor=actor, sn=sn, command=Command.REACTIVATE, note=note)


def terminal_deregister(*, actor: Actor, sn: str, reason: str, note: str = "") -> Terminal:
    return _run(actor=actor, sn=sn, command=Command.DEREGISTER, reason=reason, note=note)


def terminal_receive_return(*, actor: Actor, sn: str, note: str = "") -> Terminal:
    return _run(actor=actor, sn=sn, command=Command.RECEIVE_RETURN, note=note)


def terminal_refurbish(*, actor: Actor, sn: str, note: str = "") -> Terminal:
    cleared = {"agent": None, "merchant": None, "store": None, "tid": None, "status_reason": ""}
    return _run(actor=actor, sn=sn, command=Command.REFURBISH, note=note, prepare=lambda t: Change(cleared))


def terminal_scrap(*, actor: Actor, sn: str, reason: str, note: str = "") -> Terminal:
    return _run(actor=actor, sn=sn, command=Command.SCRAP, reason=reason, note=note)


def terminal_report_lost(*, actor: Actor, sn: str, reason: str, note: str = "") -> Terminal:
    return _run(actor=actor, sn=sn, command=Command.REPORT_LOST, reason=reason, note=note)


# ---------------------------------------------------------------------------------------------
# Dispatch by name (API, console, CLI) and bulk.

_SERVICES: dict[Command, Callable[..., Terminal]] = {
    Command.ALLOCATE: terminal_allocate,
    Command.PULL_BACK: terminal_pull_back,
    Command.SHIP: terminal_ship,
    Command.BIND: terminal_bind,
    Command.ACTIVATE: terminal_activate,
    Command.SUSPEND: terminal_suspend,
    Command.RESUME: terminal_resume,
    Command.DEACTIVATE: terminal_deactivate,
    Command.REACTIVATE: terminal_reactivate,
    Command.DEREGISTER: terminal_deregister,
    Command.RECEIVE_RETURN: terminal_receive_return,
    Command.REFURBISH: terminal_refurbish,
    Command.SCRAP: terminal_scrap,
    Command.REPORT_LOST: terminal_report_lost,
}

# The extra arguments each command accepts besides reason and note.
PARAMETERS: dict[Command, tuple[str, ...]] = {
    Command.ALLOCATE: ("agent_code",),
    Command.SHIP: ("carrier", "tracking_no"),
    Command.BIND: ("merchant_mid", "store_code", "tid"),
}


def terminal_transition(
    *,
    actor: Actor,
    sn: str,
    action: str,
    reason: str = "",
    note: str = "",
    params: dict[str, str] | None = None,
) -> Terminal:
    """Run the command named ``action`` (the API's and the console's single entry point)."""
    try:
        command = Command(action)
    except ValueError as exc:
        raise ValidationFailed(
            _("Unknown action “%(action)s”.") % {"action": action[:32]},
            field="action",
            allowed=[c.value for c in Command],
        ) from exc
    params = dict(params or {})
    unknown = set(params) - set(PARAMETERS.get(command, ()))
    if unknown:
        raise ValidationFailed(
            _("Unexpected parameters: %(names)s.") % {"names": ", ".join(sorted(unknown))}, field="params"
        )
    kwargs: dict[str, Any] = {"actor": actor, "sn": sn, "note": note, **params}
    if SPECS[command].reasons is not None:
        kwargs["reason"] = reason
    elif reason:
        raise ValidationFailed(_("This action takes no reason."), field="reason")
    return _SERVICES[command](**kwargs)


@dataclass(frozen=True)
class ItemResult:
    sn: str
    ok: bool
    status: str | None = None
    code: str | None = None
    detail: str | None = None


def terminals_bulk_transition(
    *,
    actor: Actor,
    sns: Sequence[str],
    action: str,
    reason: str = "",
    note: str = "",
    params: dict[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ItemResult]:
    """Run one command over many terminals; each succeeds or fails on its own, in the given order.

    Duplicates are reported once each; the step-up (if any) was verified once for the whole batch.
    ``progress(done, total)`` is told after each terminal (a background job's bar).
    """
    limit = settings.POSFLEET["BULK_MAX_ITEMS"]
    if not sns:
        raise ValidationFailed(_("Select at least one terminal."), field="sns")
    if len(sns) > limit:
        raise ValidationFailed(_("At most %(n)d terminals at a time.") % {"n": limit}, field="sns")
    results: list[ItemResult] = []
    seen: set[str] = set()
    for raw in sns:
        sn = raw.strip().upper()
        if sn in seen:
            results.append(ItemResult(sn, False, code="duplicate", detail=_("Listed more than once.")))
            continue
        seen.add(sn)
        try:
            terminal = terminal_transition(
                actor=actor, sn=sn, action=action, reason=reason, note=note, params=params
            )
        except DomainError as exc:
            results.append(ItemResult(sn, False, code=exc.code, detail=str(exc.detail)))
        else:
            results.append(ItemResult(sn, True, status=terminal.status))
        if progress is not None:
            progress(len(results), len(sns))
    return results
