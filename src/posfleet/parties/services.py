"""Creating agents, merchants and stores, and the merchant's life (parties/states.py): the only writers
of ``Merchant.status``. Each change is audited, in its own transaction."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.iam.models import Organisation, OrgKind
from posfleet.iam.selectors import organisations_told
from posfleet.iam.stepup import require_fresh_step_up
from posfleet.parties.events import MerchantStatusChanged
from posfleet.parties.models import Agent, Merchant, Store
from posfleet.parties.rules import merchant_permission
from posfleet.parties.selectors import merchants_visible_to
from posfleet.parties.states import SPECS, Command, MerchantStatus, commands_from, next_state
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    Conflict,
    NotFound,
    TransitionNotAllowed,
    ValidationFailed,
)
from posfleet.platform.events import publish
from posfleet.platform.models import DataKey


def _require_admin(actor: Actor) -> None:
    actor.require("parties.manage")


def _validated(obj: Agent | Merchant | Store, exclude: list[str]) -> None:
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise ValidationFailed(_("The data is not valid."), errors=exc.message_dict) from exc


def agent_create(
    *,
    actor: Actor,
    code: str,
    name: str,
    parent: Agent | None = None,
    contact_name: str = "",
    contact_phone: str = "",
) -> Agent:
    _require_admin(actor)
    with transaction.atomic():
        parent_org = (
            parent.organisation
            if parent is not None
            else Organisation.objects.filter(kind=OrgKind.PROVIDER).first()
        )
        if parent_org is None:
            raise ValidationFailed(_("Create the provider organisation first."))
        org = Organisation(kind=OrgKind.AGENT, name=name, parent=parent_org)
        org.save()
        agent = Agent(
            organisation=org, code=code, name=name, contact_name=contact_name, contact_phone=contact_phone
        )
        _validated(agent, exclude=["organisation"])
        agent.save()
        record(
            actor,
            Entry(
                event_type=EventType.AGENT_CREATED,
                subject_type="agent",
                subject_id=code,
                after={"name": name, "parent": parent.code if parent else None},
            ),
        )
    return agent


def merchant_create(
    *,
    actor: Actor,
    agent: Agent,
    mid: str,
    kind: str,
    name: str,
    legal_name: str,
    mcc: str,
    contact_name: str = "",
    contact_phone: str = "",
    contact_email: str = "",
    data_key: DataKey | None = None,
) -> Merchant:
    _require_admin(actor)
    with transaction.atomic():
        org = Organisation(kind=OrgKind.MERCHANT, name=name, parent=agent.organisation)
        org.save()
        merchant = Merchant(
            organisation=org,
            agent=agent,
            mid=mid,
            kind=kind,
            name=name,
            legal_name=legal_name,
            mcc=mcc,
            contact_name=contact_name,
            contact_phone=contact_phone,
            contact_email=contact_email,
            data_key=data_key,
        )
        _validated(merchant, exclude=["organisation", "agent", "data_key"])
        merchant.save()
        record(
            actor,
            Entry(
                event_type=EventType.MERCHANT_CREATED,
                subject_type="merchant",
                subject_id=mid,
                after={"agent": agent.code, "kind": kind, "mcc": mcc},
            ),
        )
    return merchant


def store_create(
    *, actor: Actor, merchant: Merchant, code: str, name: str, city: str = "", address: str = ""
) -> Store:
    _require_admin(actor)
    with transaction.atomic():
        store = Store(merchant=merchant, code=code, name=name, city=city, address=address)
        _validated(store, exclude=["merchant"])
        store.save()
        record(
            actor,
            Entry(
                event_type=EventType.STORE_CREATED,
                subject_type="store",
                subject_id=f"{merchant.mid}/{code}",
                after={"name": name, "city": city},
            ),
        )
    return store


# ---------------------------------------------------------------------------------------------
# The merchant's life: one function per command (STYLE.md §1-§7). Each runs, in one transaction:
# lock the row as the actor sees it (others' merchants: 404) → permission (403) → the transition from
# the table (409) → the reason (422) → a fresh step-up for the destructive ones (403) → the status moved
# with compare-and-set → the audit event and the outbox message. A refusal raises before anything is
# written, so nothing changes and nothing is recorded.

EVENT_OF: dict[Command, EventType] = {
    Command.SUSPEND: EventType.MERCHANT_SUSPENDED,
    Command.RESUME: EventType.MERCHANT_RESUMED,
    Command.CLOSE: EventType.MERCHANT_CLOSED,
}


def merchant_suspend(*, actor: Actor, mid: str, reason: str, note: str = "") -> Merchant:
    """Stop the merchant for a while (risk, compliance, unpaid fee…): ``active`` → ``suspended``."""
    return _run(actor=actor, mid=mid, command=Command.SUSPEND, reason=reason, note=note)


def merchant_resume(*, actor: Actor, mid: str, note: str = "") -> Merchant:
    """Lift the suspension: ``suspended`` → ``active``. Takes no reason (like a terminal's resume)."""
    return _run(actor=actor, mid=mid, command=Command.RESUME, note=note)


def merchant_close(*, actor: Actor, mid: str, reason: str, note: str = "") -> Merchant:
    """End the merchant for good (注销): ``active`` or ``suspended`` → ``closed``; needs a fresh
    step-up. It is never reopened: a closed merchant re-applies through a new application."""
    return _run(actor=actor, mid=mid, command=Command.CLOSE, reason=reason, note=note)


def _lock(actor: Actor, mid: str) -> Merchant:
    """Fetch and lock the merchant as ``actor`` may see it; others' merchants are not found."""
    if actor.is_system:
        qs = Merchant.objects.select_related("organisation", "agent", "agent__organisation")
    elif actor.user is not None:
        qs = merchants_visible_to(actor.user)
    else:
        raise NotFound()
    merchant = qs.select_for_update(of=("self",)).filter(mid=mid.strip().upper()).first()
    if merchant is None:
        raise NotFound()
    return merchant


def _check_reason(command: Command, reason: str, note: str) -> str:
    reasons = SPECS[command].reasons
    if reasons is None:
        if reason:
            raise ValidationFailed(_("This action takes no reason."), field="reason")
        return ""
    allowed = list(reasons.values)
    if not reason:
        raise ValidationFailed(_("Choose a reason."), field="reason", allowed=allowed)
    if reason not in allowed:
        raise ValidationFailed(
            _("Unknown reason “%(reason)s”.") % {"reason": reason[:48]}, field="reason", allowed=allowed
        )
    if reason == "other" and not note.strip():
        raise ValidationFailed(_("Say in the note what the other reason is."), field="note")
    return reason


def _run(*, actor: Actor, mid: str, command: Command, reason: str = "", note: str = "") -> Merchant:
    note = clean_text(note)
    with transaction.atomic():
        merchant = _lock(actor, mid)
        actor.require(merchant_permission(command), merchant)
        from_status = merchant.status
        target = next_state(from_status, command)
        if target is None:
            raise TransitionNotAllowed(
                _("“%(command)s” is not allowed while the merchant is %(status)s.")
                % {"command": command.value, "status": MerchantStatus(from_status).label},
                current_status=from_status,
                allowed=[c.value for c in commands_from(from_status)],
            )
        reason = _check_reason(command, reason, note)
        if SPECS[command].step_up:
            require_fresh_step_up(actor)

        at = now()
        # Compare-and-set: the row is locked, and the WHERE clause refuses a status moved meanwhile.
        if not Merchant.objects.filter(pk=merchant.pk, status=from_status).update(status=target):
            raise Conflict()
        merchant.status = target
        record(
            actor,
            Entry(
                event_type=EVENT_OF[command],
                subject_type="merchant",
                subject_id=merchant.mid,
                reason=reason,
                note=note,
                before={"status": from_status},
                after={"status": target.value},
                occurred_at=at,
            ),
        )
        publish(
            [
                MerchantStatusChanged(
                    aggregate_id=merchant.mid,
                    organisation_ids=organisations_told(merchant.organisation.path),
                    command=command.value,
                    from_status=from_status,
                    to_status=target.value,
                    reason=reason,
                    agent=merchant.agent.code,
                )
            ],
            occurred_at=at,
        )
    return merchant
