"""Replacement (换机): a new SN takes over a terminal's binding, contract and history; the old one goes
to the return path.

``terminal_replace`` does it all in one transaction, through the other contexts' own services:

1. the new terminal — ``allocated`` to the agent that holds the old one — is shipped, bound to the old
   terminal's merchant and store with a TID of its own, and activated; when the old terminal was
   suspended, the new one is suspended for the same reason (a risk hold or an unpaid fee does not
   end with a new device, and an expired service stays expired);
2. the old terminal is deactivated and deregistered with the reserved reason ``replacement``: the
   warehouse receives it back later (``receive_return``) and inspects, refurbishes or scraps it;
3. ``fleet.terminal_take_over`` records the link (``fleet.Replacement``) and gives the new terminal
   the old one's service expiry; the expiry notices already sent for that expiry are copied, so the
   merchant is not told twice;
4. the active service contract moves, as it is (fees, fees due, deposit, terms), with
   ``billing.contract_transfer``; a rate plan assigned to the old terminal itself is assigned to the
   new one from today (and its later changes from their dates).

**The TID does not move.** ISO 8583 field 41 names the device to the acquiring channel, and the
terminal keys are issued per device: the new terminal gets the next free TID at binding, the old
one keeps its TID (its transactions, statements and audit trail stay findable by it) until it is
refurbished. The merchant's MID (field 42) and the store do not change.

Who: an admin, or the agent that holds both terminals (``enrollment.replace_terminal``), with a
fresh step-up — the old terminal is deregistered, which is destructive. The fleet steps run as the
job ``terminal_replace`` (an agent may not ship or deregister on its own), carrying the request id;
the replacement itself (``terminal.replaced``), the link and the contract move are recorded under
the acting user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.db.models import QuerySet, TextChoices
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import PlanAssignment, ServiceContract
from posfleet.billing.services.contracts import contract_transfer
from posfleet.billing.services.plans import plan_assign
from posfleet.enrollment.events import TerminalReplaced
from posfleet.enrollment.models import ExpiryMilestone
from posfleet.enrollment.services.expiry import active_contract_of
from posfleet.fleet.selectors import Replacement, Terminal, owners_of, terminal_by_pk, terminals_visible_to
from posfleet.fleet.services import (
    terminal_activate,
    terminal_bind,
    terminal_deactivate,
    terminal_deregister,
    terminal_ship,
    terminal_suspend,
    terminal_take_over,
    terminals_lock,
)
from posfleet.fleet.states import DeactivationReason, Status, SuspensionReason
from posfleet.iam.models import User
from posfleet.iam.stepup import require_fresh_step_up
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    GuardFailed,
    NotFound,
    TransitionNotAllowed,
    ValidationFailed,
)
from posfleet.platform.events import publish

PERMISSION = "enrollment.replace_terminal"
# An old terminal that can be replaced: in service with a merchant. A bound terminal has never been
# activated and cannot be deactivated (fleet/states.py): it is activated or reported lost instead.
REPLACEABLE = (Status.ACTIVE, Status.SUSPENDED)


class ReplacementReason(TextChoices):
    """Why a merchant's terminal is exchanged for another."""

    DEVICE_FAULT = "device_fault", gettext_lazy("device fault")
    DAMAGE = "damage", gettext_lazy("damaged")
    TECHNOLOGY_UPDATE = "technology_update", gettext_lazy("technology update")
    OTHER = "other", gettext_lazy("other")


@dataclass(frozen=True)
class ReplacementOutcome:
    old: Terminal
    new: Terminal
    contract: ServiceContract | None
    replacement: Replacement


# ---------------------------------------------------------------------------------------------
# Selectors (what the console offers)


def may_replace(user: User, terminal: Terminal) -> bool:
    """Whether ``user`` may replace ``terminal`` now (the service checks it all again)."""
    return terminal.status in REPLACEABLE and user.has_perm(PERMISSION, terminal)


def replacement_stock(user: User, terminal: Terminal) -> QuerySet[Terminal]:
    """The terminals that could replace ``terminal``: the stock its agent holds, as ``user`` sees it."""
    if terminal.agent_id is None:
        return terminals_visible_to(user).none()
    return (
        terminals_visible_to(user)
        .filter(status=Status.ALLOCATED, agent_id=terminal.agent_id)
        .exclude(pk=terminal.pk)
        .order_by("sn")
    )


# ---------------------------------------------------------------------------------------------
# The service


def _check_reason(reason: str, note: str) -> str:
    allowed = list(ReplacementReason.values)
    if not reason:
        raise ValidationFailed(_("Choose a reason."), field="reason", allowed=allowed)
    if reason not in allowed:
        raise ValidationFailed(
            _("Unknown reason “%(reason)s”.") % {"reason": reason[:48]}, field="reason", allowed=allowed
        )
    if reason == ReplacementReason.OTHER and not note.strip():
        raise ValidationFailed(_("Say in the note what the other reason is."), field="note")
    return reason


def _check_new(old: Terminal, new: Terminal) -> None:
    if new.status != Status.ALLOCATED or new.agent_id != old.agent_id:
        agent = old.agent.code if old.agent is not None else "—"
        raise GuardFailed(
            _("Terminal %(sn)s is not in the stock of agent %(agent)s (it is %(status)s).")
            % {"sn": new.sn, "agent": agent, "status": Status(new.status).label},
            guard="new_in_agent_stock",
        )
    if ServiceContract.objects.filter(terminal=new, status=ServiceContract.Status.ACTIVE).exists():
        raise GuardFailed(
            _("Terminal %(sn)s has a service contract in force of its own.") % {"sn": new.sn},
            guard="new_without_contract",
        )


def terminal_replace(
    *, actor: Actor, old_sn: str, new_sn: str, reason: str, note: str = ""
) -> ReplacementOutcome:
    """Replace terminal ``old_sn`` by ``new_sn`` (see the module): 404 for a terminal the actor cannot
    see, 403 without the permission or a fresh step-up, 409 when a terminal is not where it must be,
    422 for a bad reason or an unknown new SN. A refusal changes nothing."""
    note = clean_text(note)
    old_sn, new_sn = old_sn.strip().upper()[:32], new_sn.strip().upper()[:32]
    with transaction.atomic():
        locked = terminals_lock(actor, [old_sn, new_sn])
        old, new = locked.get(old_sn), locked.get(new_sn)
        if old is None:
            raise NotFound()
        actor.require(PERMISSION, old)
        if old.status not in REPLACEABLE or old.merchant is None:
            raise TransitionNotAllowed(
                _("Only a terminal in service (active or suspended) can be replaced; this one is %(status)s.")
                % {"status": Status(old.status).label},
                current_status=old.status,
            )
        reason = _check_reason(reason, note)
        if not new_sn:
            raise ValidationFailed(_("Choose the new terminal."), field="new_sn")
        if new_sn == old.sn:
            raise ValidationFailed(_("A terminal cannot replace itself."), field="new_sn")
        if new is None:
            raise ValidationFailed(_("Unknown terminal “%(sn)s”.") % {"sn": new_sn}, field="new_sn")
        actor.require(PERMISSION, new)
        _check_new(old, new)
        require_fresh_step_up(actor)

        merchant = old.merchant
        old_status, old_reason, old_tid = old.status, old.status_reason, old.tid
        contract = active_contract_of(old)
        job = Actor(
            kind="job", label="terminal_replace", request_id=actor.request_id, source_ip=actor.source_ip
        )
        step = f"replacement of {old.sn} by {new.sn} ({actor.label or actor.kind})"

        # 1. The new terminal takes the old one's place (its own TID, the next free one).
        terminal_ship(actor=job, sn=new.sn, note=step)
        terminal_bind(
            actor=job,
            sn=new.sn,
            merchant_mid=merchant.mid,
            store_code=old.store.code if old.store is not None else "",
            note=step,
        )
        terminal_activate(actor=job, sn=new.sn, note=step)
        if old_status == Status.SUSPENDED:
            held = old_reason if old_reason in SuspensionReason.values else SuspensionReason.OTHER
            terminal_suspend(actor=job, sn=new.sn, reason=held, note=f"{step}: suspended like {old.sn}")
        # 2. The old one ends and goes to the return path.
        terminal_deactivate(actor=job, sn=old.sn, reason=DeactivationReason.REPLACEMENT, note=step)
        terminal_deregister(actor=job, sn=old.sn, reason=DeactivationReason.REPLACEMENT, note=step)
        # 3. The link and the service period; 4. the contract and a terminal's own rate plan.
        replacement = terminal_take_over(actor=actor, sn=new.sn, old_sn=old.sn, note=note)
        _copy_expiry_milestones(old, new, old.service_expires_on)
        if contract is not None:
            contract = contract_transfer(actor=actor, contract=contract, terminal_id=new.pk)
        _carry_rate_plans(job, old, new, merchant.mid, today())

        new = terminal_by_pk(new.pk)
        expires = new.service_expires_on
        record(
            actor,
            Entry(
                event_type=EventType.TERMINAL_REPLACED,
                subject_type="terminal",
                subject_id=old.sn,
                reason=reason,
                note=note,
                before={"status": old_status, "tid": old_tid},
                after={
                    "replaced_by": new.sn,
                    "new_tid": new.tid,
                    "new_status": new.status,
                    "merchant": merchant.mid,
                    "store": new.store.code if new.store is not None else None,
                    "contract": contract.pk if contract is not None else None,
                    "service_expires_on": expires.isoformat() if expires else None,
                },
                occurred_at=replacement.replaced_at,
            ),
        )
        owners = owners_of([old.pk])[old.pk]
        publish(
            [
                TerminalReplaced(
                    aggregate_id=old.sn,
                    organisation_ids=owners.organisations,
                    replaced_by=new.sn,
                    reason=reason,
                    tid=old_tid,
                    new_tid=new.tid,
                    new_status=new.status,
                    service_expires_on=expires.isoformat() if expires else None,
                    contract=contract.pk if contract is not None else None,
                    merchant=merchant.mid,
                    store=new.store.code if new.store is not None else None,
                )
            ],
            occurred_at=replacement.replaced_at,
        )
    old.refresh_from_db()
    return ReplacementOutcome(old=old, new=new, contract=contract, replacement=replacement)


def _copy_expiry_milestones(old: Terminal, new: Terminal, expires_on: date | None) -> None:
    """The notices already sent (and the suspension already done) for the expiry the new terminal
    takes over count for it too: the sweep does not tell the merchant again."""
    if expires_on is None:
        return
    at = now()
    ExpiryMilestone.objects.bulk_create(
        [
            ExpiryMilestone(
                terminal=new,
                expires_on=m.expires_on,
                milestone=m.milestone,
                reached_on=m.reached_on,
                created_at=at,
            )
            for m in ExpiryMilestone.objects.filter(terminal=old, expires_on=expires_on).order_by("id")
        ],
        ignore_conflicts=True,
    )


def _carry_rate_plans(job: Actor, old: Terminal, new: Terminal, mid: str, day: date) -> None:
    """A plan assigned to the old terminal itself (it wins over the merchant's) goes on for the new
    one: the plan in force today from today, and every later change from its own date."""
    assignments = list(
        PlanAssignment.objects.filter(terminal=old).select_related("plan").order_by("effective_from", "id")
    )
    in_force = [a for a in assignments if a.effective_from <= day]
    carried = [(in_force[-1], day)] if in_force else []
    carried += [(a, a.effective_from) for a in assignments if a.effective_from > day]
    for assignment, since in carried:
        plan_assign(
            actor=job,
            merchant_id=assignment.merchant_id,
            merchant_mid=mid,
            plan=assignment.plan,
            effective_from=since,
            terminal_id=new.pk,
            d0_settlement=assignment.d0_settlement,
        )
