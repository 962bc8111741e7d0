"""A terminal's service period and its replacement: the fleet's steps of composite services of
enrollment (renewal, activation, 换机), which check who may and run them in their own transaction."""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Replacement, Terminal
from posfleet.fleet.services.locks import terminal_lock, terminals_lock
from posfleet.fleet.states import (
    IN_SERVICE,
    Status,
)
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    GuardFailed,
    NotFound,
    ValidationFailed,
)

# ---------------------------------------------------------------------------------------------
# Service period: renewal moves a terminal's paid-up service (and SIM) expiry on.


def terminal_service_extend(*, actor: Actor, sn: str, expires_on: date) -> Terminal:
    """Set the terminal's service expiry to ``expires_on`` (later than now): called by renewal, which
    has checked who may renew and charged the fee in the same transaction. Audited."""
    actor.require(None)  # renewal and activation checked who may
    with transaction.atomic():
        terminal = terminal_lock(actor, sn)
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
    actor.require(None)  # the replacement checked who may
    sn, old_sn = sn.strip().upper(), old_sn.strip().upper()
    if sn == old_sn:
        raise ValidationFailed(_("A terminal cannot replace itself."), field="new_sn")
    with transaction.atomic():
        locked = terminals_lock(actor, [sn, old_sn])
        new, old = locked.get(sn), locked.get(old_sn)
        if new is None or old is None:
            raise NotFound()
        if old.status != Status.DEREGISTERED:
            raise GuardFailed(
                _("The replaced terminal must be deregistered first (it is %(status)s).")
                % {"status": Status(old.status).label},
                guard="old_deregistered",
            )
        if new.status not in IN_SERVICE or new.merchant_id is None:
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
