"""The terminal life: one service function per command, the only writers of ``Terminal.status``.

Each runs the same steps (STYLE.md §1-§7), in one transaction:
lock the row → check scope (404) and permission (403) → check the transition (409), the reason (422)
and the guards (409) → require a fresh step-up for destructive commands (403) → move the status with
compare-and-set → write the audit event and the outbox message. A refusal raises before anything is
written, so nothing changes and nothing is recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django_fsm import ConcurrentTransition

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.events import TerminalsImported, TerminalStatusChanged
from posfleet.fleet.models import TID_VALIDATOR, Replacement, StatusPeriod, Terminal
from posfleet.fleet.rules import permission_name
from posfleet.fleet.states import (
    RESERVED_REASONS,
    SPECS,
    Command,
    Status,
    commands_from,
    next_state,
    offered_reasons,
)
from posfleet.iam.models import User
from posfleet.iam.selectors import provider
from posfleet.iam.stepup import require_fresh_step_up
from posfleet.parties import selectors as parties
from posfleet.platform import counters
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    Conflict,
    DomainError,
    GuardFailed,
    NotFound,
    PermissionDenied,
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


def _lock(actor: Actor, sn: str) -> Terminal:
    """Fetch and lock the terminal as ``actor`` may see it; others' terminals are not found."""
    qs = Terminal.objects.select_for_update(of=("self",)).select_related(
        "model", "agent", "agent__organisation", "merchant", "merchant__organisation", "store"
    )
    terminal = qs.filter(sn=sn.strip().upper()).first()
    if terminal is None or not _may_see(actor, terminal):
        raise NotFound()
    return terminal


def _may_see(actor: Actor, terminal: Terminal) -> bool:
    if actor.kind in {"job", "system"}:
        return True
    return actor.user is not None and actor.user.has_perm("fleet.view_terminal", terminal)


def _check_reason(actor: Actor, command: Command, reason: str, note: str) -> str:
    spec = SPECS[command]
    if spec.reasons is None:
        if reason:
            raise ValidationFailed(_("This action takes no reason."), field="reason")
        return ""
    allowed = [value for value, _label in offered_reasons(command)]
    if not reason:
        raise ValidationFailed(_("Choose a reason."), field="reason", allowed=allowed)
    if reason in RESERVED_REASONS and reason in spec.reasons.values and actor.kind in {"job", "system"}:
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


@dataclass
class Change:
    """What a command does besides moving the status."""

    fields: dict[str, Any] = field(default_factory=dict)


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
    if actor.read_only:
        raise PermissionDenied(_("This API token is read-only."))
    note = clean_text(note)
    with transaction.atomic():
        terminal = _lock(actor, sn)
        user = actor.user
        if actor.kind not in {"job", "system"} and (
            user is None or not user.has_perm(permission_name(command), terminal)
        ):
            raise PermissionDenied()
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
            terminal.save()  # compare-and-set: UPDATE ... WHERE status = <from_status>
        except ConcurrentTransition as exc:
            raise Conflict() from exc
        StatusPeriod.objects.filter(terminal=terminal, ended_at__isnull=True).update(ended_at=at)
        StatusPeriod.objects.create(terminal=terminal, status=terminal.status, started_at=at)
        after = terminal.snapshot()
        record(
            actor,
            Entry(
                event_type=EVENT_OF[command],
                subject_type="terminal",
                subject_id=terminal.sn,
                reason=reason,
                note=note,
                before=before,
                after={**after, **(extra or {})},
                occurred_at=at,
            ),
        )
        publish(
            [
                TerminalStatusChanged(
                    aggregate_id=terminal.sn,
                    organisation_ids=_owners(terminal),
                    command=command.value,
                    from_status=from_status,
                    to_status=terminal.status,
                    reason=reason,
                    tid=terminal.tid,
                    merchant=after["merchant"],
                    agent=after["agent"],
                )
            ],
            occurred_at=at,
        )
    return terminal


def _owners(terminal: Terminal) -> tuple[int, ...]:
    ids: list[int] = []
    root = provider()
    if root is not None:
        ids.append(root.pk)
    if terminal.agent is not None:
        ids.extend(int(p) for p in terminal.agent.organisation.path.strip("/").split("/"))
    if terminal.merchant is not None:
        ids.append(terminal.merchant.organisation_id)
    return tuple(sorted(set(ids)))


def _scope_user(actor: Actor) -> User | None:
    return actor.user if actor.kind in {"user", "token"} else None


# ---------------------------------------------------------------------------------------------
# Registration: a terminal enters the fleet in stock.


@dataclass(frozen=True)
class NewTerminal:
    sn: str
    model_id: int
    sim_iccid: str = ""
    service_expires_on: date | None = None
    firmware_version: str = ""


def _require(actor: Actor, perm: str) -> None:
    if actor.kind in {"job", "system"}:
        return
    if actor.read_only or actor.user is None or not actor.user.has_perm(perm):
        raise PermissionDenied()


def terminal_register(*, actor: Actor, terminal: NewTerminal, note: str = "") -> Terminal:
    """Register one device into the warehouse stock (status ``in_stock``)."""
    _require(actor, "fleet.import_terminals")
    with transaction.atomic():
        if Terminal.objects.filter(sn=terminal.sn).exists():
            raise ValidationFailed(_("A terminal with this SN exists already."), field="sn")
        created = Terminal.objects.create(
            sn=terminal.sn,
            model_id=terminal.model_id,
            sim_iccid=terminal.sim_iccid,
            service_expires_on=terminal.service_expires_on,
            firmware_version=terminal.firmware_version,
        )
        record(
            actor,
            Entry(
                event_type=EventType.TERMINAL_REGISTERED,
                subject_type="terminal",
                subject_id=created.sn,
                note=clean_text(note),
                after=created.snapshot(),
            ),
        )
    return created


_VARYING = ("sn", "model", "sim_iccid", "service_expires_on", "firmware_version")


def _insert_in_stock(*, batch: str, at: datetime, terminals: Sequence[NewTerminal]) -> None:
    """INSERT validated new terminals with one statement per chunk: COPY on PostgreSQL, executemany
    elsewhere. ``Terminal(...)`` + ``bulk_create`` cost over 100 µs a row (model instances and Django's
    per-field SQL compilation), 8x the insert itself (bench/import_terminals.py). The columns that do
    not vary per row are prepared once from a template instance, so a new field with a default needs
    no change here. Like bulk_create, this sends no signals and runs no model validation: callers pass
    validated rows (fleet.transfer validates with the model's own patterns)."""
    db = transaction.get_connection()
    fields = [f for f in Terminal._meta.concrete_fields if not f.primary_key]
    template = Terminal(model_id=0, import_batch=batch, registered_at=at)
    template.updated_at = at
    base: list[Any] = [
        None if f.name in _VARYING else f.get_db_prep_save(getattr(template, f.attname), db) for f in fields
    ]
    names = [f.name for f in fields]
    i_sn, i_model, i_iccid, i_expires, i_firmware = (names.index(n) for n in _VARYING)
    adapt_date = db.ops.adapt_datefield_value
    rows = []
    for t in terminals:
        row = base.copy()
        row[i_sn] = t.sn
        row[i_model] = t.model_id
        row[i_iccid] = t.sim_iccid
        row[i_expires] = adapt_date(t.service_expires_on)
        row[i_firmware] = t.firmware_version
        rows.append(row)
    quote = db.ops.quote_name
    table = quote(Terminal._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            with db.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608


def terminals_register_batch(*, actor: Actor, batch: str, terminals: Sequence[NewTerminal]) -> int:
    """Register a chunk of validated devices in one transaction with one audit event for the chunk.

    The import path calls this per chunk; each terminal keeps ``import_batch`` so its timeline shows
    the import event. Returns the number of terminals created.
    """
    _require(actor, "fleet.import_terminals")
    if not terminals:
        return 0
    at = now()
    with transaction.atomic():
        _insert_in_stock(batch=batch, at=at, terminals=terminals)
        digest = hashlib.sha256("\n".join(t.sn for t in terminals).encode()).hexdigest()
        record(
            actor,
            Entry(
                event_type=EventType.TERMINALS_IMPORTED,
                subject_type="import_batch",
                subject_id=batch,
                after={
                    "count": len(terminals),
                    "first_sn": terminals[0].sn,
                    "last_sn": terminals[-1].sn,
                    "sns_sha256": digest,
                },
                occurred_at=at,
            ),
        )
        publish([TerminalsImported(aggregate_id=batch, count=len(terminals))], occurred_at=at)
    return len(terminals)


# ---------------------------------------------------------------------------------------------
# One function per command.


def terminal_allocate(*, actor: Actor, sn: str, agent_code: str = "", note: str = "") -> Terminal:
    def prepare(terminal: Terminal) -> Change:
        if not agent_code:
            raise ValidationFailed(_("Choose the agent to allocate to."), field="agent")
        try:
            agent = parties.agent_for(_scope_user(actor), agent_code)
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
            merchant = parties.merchant_for(_scope_user(actor), merchant_mid)
        except NotFound as exc:
            raise ValidationFailed(
                _("Unknown merchant “%(mid)s”.") % {"mid": merchant_mid[:15]}, field="merchant"
            ) from exc
        if terminal.agent is None or not parties.agent_contains(terminal.agent, merchant.agent):
            raise GuardFailed(
                _("The merchant is not signed by the agent that holds this terminal."),
                guard="merchant_under_agent",
            )
        store = None
        if store_code:
            store = parties.store_of(merchant, store_code)
            if store is None:
                raise GuardFailed(_("The store does not belong to this merchant."), guard="store_of_merchant")
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
        return Change({"merchant": merchant, "store": store, "tid": new_tid})

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
    def prepare(terminal: Terminal) -> Change:
        window = settings.POSFLEET["REACTIVATION_WINDOW"]
        if terminal.deactivated_at is None or now() - terminal.deactivated_at > window:
            raise GuardFailed(
                _(
                    "The reactivation window of %(days)d days has closed; "
                    "the terminal can only be deregistered."
                )
                % {"days": window.days},
                guard="within_reactivation_window",
            )
        return Change()

    return _run(actor=actor, sn=sn, command=Command.REACTIVATE, note=note, prepare=prepare)


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


# ---------------------------------------------------------------------------------------------
# Service period: renewal moves a terminal's paid-up service (and SIM) expiry on.


def terminal_service_extend(*, actor: Actor, sn: str, expires_on: date) -> Terminal:
    """Set the terminal's service expiry to ``expires_on`` (later than now): called by renewal, which
    has checked who may renew and charged the fee in the same transaction. Audited."""
    if actor.read_only:
        raise PermissionDenied(_("This API token is read-only."))
    with transaction.atomic():
        terminal = _lock(actor, sn)
        before = terminal.service_expires_on
        if before is not None and expires_on <= before:
            raise ValidationFailed(
                _("The new expiry must be later than the current one (%(day)s).") % {"day": before},
                field="expires_on",
            )
        Terminal.objects.filter(pk=terminal.pk).update(service_expires_on=expires_on)
        terminal.service_expires_on = expires_on
        record(
            actor,
            Entry(
                event_type=EventType.TERMINAL_SERVICE_EXTENDED,
                subject_type="terminal",
                subject_id=terminal.sn,
                before={"service_expires_on": before.isoformat() if before else None},
                after={"service_expires_on": expires_on.isoformat()},
            ),
        )
    return terminal


# ---------------------------------------------------------------------------------------------
# Replacement (换机): the new terminal takes over from the old one.


def terminal_take_over(*, actor: Actor, sn: str, old_sn: str, note: str = "") -> Replacement:
    """Record that terminal ``sn`` replaces ``old_sn`` and give it the old terminal's service expiry.

    The last fleet step of ``enrollment.replacement.terminal_replace``, which has checked who may
    replace, bound ``sn`` to the old terminal's merchant and deregistered ``old_sn``, in the same
    transaction. Audited on the new terminal (``terminal.took_over``)."""
    if actor.read_only:
        raise PermissionDenied(_("This API token is read-only."))
    sn, old_sn = sn.strip().upper(), old_sn.strip().upper()
    if sn == old_sn:
        raise ValidationFailed(_("A terminal cannot replace itself."), field="new_sn")
    with transaction.atomic():
        locked = {
            t.sn: t
            for t in Terminal.objects.select_for_update(of=("self",))
            .select_related("merchant", "agent", "agent__organisation", "merchant__organisation", "store")
            .filter(sn__in=[sn, old_sn])
            .order_by("pk")  # a deterministic order of locks
        }
        new, old = locked.get(sn), locked.get(old_sn)
        if new is None or old is None or not _may_see(actor, new) or not _may_see(actor, old):
            raise NotFound()
        if old.status != Status.DEREGISTERED:
            raise GuardFailed(
                _("The replaced terminal must be deregistered first (it is %(status)s).")
                % {"status": Status(old.status).label},
                guard="old_deregistered",
            )
        if new.status not in {Status.BOUND, Status.ACTIVE, Status.SUSPENDED} or new.merchant_id is None:
            raise GuardFailed(
                _("The new terminal must be bound to a merchant first (it is %(status)s).")
                % {"status": Status(new.status).label},
                guard="new_bound",
            )
        if new.merchant_id != old.merchant_id:
            raise GuardFailed(
                _("The new terminal is bound to another merchant than the replaced one."),
                guard="same_merchant",
            )
        at = now()
        since = old.status_changed_at or old.registered_at
        if Replacement.objects.filter(old=old, replaced_at__gte=since).exists():
            raise GuardFailed(_("This terminal has been replaced already."), guard="not_replaced_yet")
        before = new.service_expires_on
        expires = old.service_expires_on
        Terminal.objects.filter(pk=new.pk).update(service_expires_on=expires)
        new.service_expires_on = expires
        replacement = Replacement.objects.create(
            old=old, new=new, old_tid=old.tid or "", new_tid=new.tid or "", replaced_at=at
        )
        record(
            actor,
            Entry(
                event_type=EventType.TERMINAL_TOOK_OVER,
                subject_type="terminal",
                subject_id=new.sn,
                note=clean_text(note),
                before={"service_expires_on": before.isoformat() if before else None},
                after={
                    "replaces": old.sn,
                    "replaced_tid": old.tid,
                    "service_expires_on": expires.isoformat() if expires else None,
                },
                occurred_at=at,
            ),
        )
    return replacement
