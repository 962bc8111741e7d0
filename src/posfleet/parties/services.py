"""Creating agents, merchants and stores, the merchant's life (parties/states.py), and the terminals'
payment-channel bindings: the only writers of ``Merchant.status`` and ``ChannelBinding.status``. Each
change is audited, in its own transaction."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.iam.models import Organisation, OrgKind
from posfleet.iam.selectors import organisations_told
from posfleet.iam.stepup import require_fresh_step_up
from posfleet.parties.channels import Answer, BindingStatus, Channel, Outcome
from posfleet.parties.channels.adapters import adapter_for
from posfleet.parties.errors import ChannelAlreadyBound
from posfleet.parties.events import ChannelUnbindRefused, ChannelUnbound, MerchantStatusChanged
from posfleet.parties.models import Agent, ChannelBinding, Merchant, Store
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

logger = logging.getLogger(__name__)


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
    *,
    actor: Actor,
    merchant: Merchant,
    code: str,
    name: str,
    city: str = "",
    address: str = "",
    latitude: Decimal | None = None,
    longitude: Decimal | None = None,
) -> Store:
    """A store of ``merchant``; ``latitude``/``longitude`` (WGS-84 degrees, both or neither) are where
    its terminals are expected to be (fleet's relocation alerts)."""
    _require_admin(actor)
    with transaction.atomic():
        store = Store(
            merchant=merchant,
            code=code,
            name=name,
            city=city,
            address=address,
            latitude=latitude,
            longitude=longitude,
        )
        _validated(store, exclude=["merchant"])
        store.save()
        after: dict[str, Any] = {"name": name, "city": city}
        if store.latitude is not None and store.longitude is not None:
            after.update(latitude=str(store.latitude), longitude=str(store.longitude))
        record(
            actor,
            Entry(
                event_type=EventType.STORE_CREATED,
                subject_type="store",
                subject_id=f"{merchant.mid}/{code}",
                after=after,
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


# ---------------------------------------------------------------------------------------------
# Payment-channel bindings (渠道绑定): recorded when a terminal is enrolled in a channel, unbound at
# closure through the channel's adapter (parties/channels/adapters.py).
#
# An unbind talks to a remote party, so it cannot be one transaction: (1) mark the binding
# ``unbinding`` and count the attempt, committed, so that a crash mid-call leaves a trace; (2) call the
# channel outside any transaction (no lock held while waiting on the network); an answer that may or may
# not have taken effect (a timeout, a lost answer) is resolved by asking the channel for the binding's
# status, never assumed; (3) in one transaction write the outcome with compare-and-set on ``unbinding``,
# its evidence, the audit event and the outbox message. Two unbinds of one binding at once both reach
# the channel with the caller's key (the channel acts once per key), and only the first to settle writes
# the outcome: the other finds it settled and reports it.

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)


class UnbindOutcome(StrEnum):
    DONE = "done"  # the channel has unbound it (now, or before): the step is done
    # The channel said no (its code and message are in the evidence): final until a person acts with
    # the channel; running the step again afterwards sends the unbind again.
    REFUSED = "refused"
    # No decision yet (an error answer, no connection, or no answer and the status query did not
    # settle it): run again after ``retry_after``, with the same idempotency key.
    RETRY = "retry"


@dataclass(frozen=True)
class UnbindResult:
    outcome: UnbindOutcome
    binding_id: int
    channel: str
    # The channel's deciding answer: operation, answer, code, message, reference, http_status, at, the
    # idempotency key (and ``unbind_answer`` when a status query answered for an unsure unbind).
    evidence: dict[str, Any] = field(default_factory=dict)
    retry_after: timedelta | None = None  # RETRY only: when asking again makes sense

    @property
    def done(self) -> bool:
        return self.outcome == UnbindOutcome.DONE


def _checked_channel(channel: str, channel_merchant_id: str) -> tuple[Channel, str]:
    if channel not in Channel.values:
        raise ValidationFailed(
            _("Unknown payment channel “%(channel)s”.") % {"channel": channel[:32]},
            field="channel",
            allowed=list(Channel.values),
        )
    channel_merchant_id = channel_merchant_id.strip()
    if not re.fullmatch(r"[\x21-\x7e]{1,64}", channel_merchant_id):
        raise ValidationFailed(
            _("The merchant ID at the channel is 1 to 64 letters, digits or signs, without spaces."),
            field="channel_merchant_id",
        )
    return Channel(channel), channel_merchant_id


def channel_bind(
    *, actor: Actor, merchant_id: int, terminal_id: int, channel: str, channel_merchant_id: str
) -> ChannelBinding:
    """Record that the merchant's terminal ``terminal_id`` is enrolled in ``channel`` under the
    channel's id ``channel_merchant_id`` (at activation, and by the demo). A terminal is bound to a
    channel once at a time (``channel_already_bound``); after an unbind it may be bound again."""
    with transaction.atomic():
        if actor.is_system:
            merchants = Merchant.objects.select_related("organisation")
        elif actor.user is not None:
            merchants = merchants_visible_to(actor.user)
        else:
            raise NotFound()
        merchant = merchants.filter(pk=merchant_id).first()
        if merchant is None:
            raise NotFound()
        actor.require("parties.bind_channel", merchant)
        kind, channel_merchant_id = _checked_channel(channel, channel_merchant_id)
        # The terminal through the merchant's relation: fleet is a context above this one.
        sn = merchant.terminals.filter(pk=terminal_id).values_list("sn", flat=True).first()
        if sn is None:
            raise ValidationFailed(_("The terminal is not this merchant's."), field="terminal_id")
        taken = ChannelBinding.objects.filter(terminal_id=terminal_id, channel=kind).exclude(
            status=BindingStatus.UNBOUND
        )
        if taken.exists():
            raise ChannelAlreadyBound(channel=kind.value)
        at = now()
        binding = ChannelBinding(
            merchant=merchant,
            terminal_id=terminal_id,
            channel=kind,
            channel_merchant_id=channel_merchant_id,
            status=BindingStatus.BOUND,
            bound_at=at,
        )
        try:
            with transaction.atomic():  # a concurrent bind of the same channel: the constraint decides
                binding.save()
        except IntegrityError as exc:
            raise ChannelAlreadyBound(channel=kind.value) from exc
        record(
            actor,
            Entry(
                event_type=EventType.CHANNEL_BOUND,
                subject_type="channel_binding",
                subject_id=str(binding.pk),
                after={
                    "status": BindingStatus.BOUND.value,
                    "channel": kind.value,
                    "channel_merchant_id": channel_merchant_id,
                    "merchant": merchant.mid,
                    "terminal": sn,
                },
                occurred_at=at,
            ),
        )
    return binding


def _lock_binding(actor: Actor, binding_id: int) -> ChannelBinding:
    """Fetch and lock the binding as ``actor`` may see it (its merchant's scope); others' are not found."""
    qs = ChannelBinding.objects.select_related("merchant", "merchant__organisation", "terminal")
    if not actor.is_system:
        if actor.user is None:
            raise NotFound()
        qs = qs.filter(merchant__in=merchants_visible_to(actor.user).values("pk"))
    binding = qs.select_for_update(of=("self",)).filter(pk=binding_id).first()
    if binding is None:
        raise NotFound()
    return binding


def channel_unbind(*, actor: Actor, binding_id: int, idempotency_key: str) -> UnbindResult:
    """Unbind the binding at its channel; the closure case calls it for each binding of the terminal.

    Returns ``done`` (the channel unbound it — at once, without calling the channel, when it was unbound
    already), ``refused`` (the channel said no; the binding stays ``bound`` with the channel's answer
    in ``evidence``: a person acts) or ``retry`` (nothing settled: the binding stays ``unbinding``; call
    again after ``retry_after`` with the same ``idempotency_key``, which the channel dedupes on).

    Talks to the channel between two transactions of its own, so it must not be called inside one
    (``RuntimeError``). Refusals before anything happens: not found (404), permission (403), a bad key
    (422)."""
    if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise ValidationFailed(
            _("The idempotency key is 1 to 64 letters, digits or . _ : -."), field="idempotency_key"
        )
    with transaction.atomic(durable=True):
        binding = _lock_binding(actor, binding_id)
        actor.require("parties.unbind_channel", binding)
        if binding.status == BindingStatus.UNBOUND:
            return UnbindResult(UnbindOutcome.DONE, binding.pk, binding.channel, dict(binding.evidence))
        from_status = binding.status
        if not ChannelBinding.objects.filter(pk=binding.pk, status=from_status).update(
            status=BindingStatus.UNBINDING, attempts=F("attempts") + 1
        ):
            raise Conflict()
        binding.attempts += 1
        binding.status = BindingStatus.UNBINDING

    adapter = adapter_for(binding.channel)
    answer = adapter.unbind(binding, idempotency_key)
    unsure: Answer | None = None
    if answer.outcome == Outcome.UNKNOWN:
        unsure, answer = answer, adapter.status(binding)

    evidence = {**answer.evidence(), "idempotency_key": idempotency_key}
    if unsure is not None:
        evidence["unbind_answer"] = unsure.evidence()
    if answer.outcome == Outcome.UNBOUND:
        outcome, last = UnbindOutcome.DONE, Outcome.UNBOUND
    elif answer.outcome == Outcome.REFUSED and unsure is None:
        outcome, last = UnbindOutcome.REFUSED, Outcome.REFUSED
    elif unsure is None:
        outcome, last = UnbindOutcome.RETRY, Outcome.FAILED
    else:  # the unbind's answer was lost; the channel still holds the binding, or it is still unsure
        outcome, last = (
            UnbindOutcome.RETRY,
            (Outcome.BOUND if answer.outcome == Outcome.BOUND else Outcome.UNKNOWN),
        )
    logger.info(
        "channel binding %s (%s): unbind %s, attempt %s",
        binding.pk,
        binding.channel,
        outcome,
        binding.attempts,
    )
    with transaction.atomic(durable=True):
        return _settle(actor, binding, from_status, outcome, last, answer, evidence)


def _settle(
    actor: Actor,
    binding: ChannelBinding,
    from_status: str,
    outcome: UnbindOutcome,
    last: Outcome,
    answer: Answer,
    evidence: dict[str, Any],
) -> UnbindResult:
    """Write what the channel answered, with compare-and-set on ``unbinding``: only the first of
    concurrent unbinds settles the binding (and records it); the others report what it became."""
    at = now()
    rows = ChannelBinding.objects.filter(pk=binding.pk, status=BindingStatus.UNBINDING)
    target = {
        UnbindOutcome.DONE: BindingStatus.UNBOUND,
        UnbindOutcome.REFUSED: BindingStatus.BOUND,  # the channel still holds it
        UnbindOutcome.RETRY: BindingStatus.UNBINDING,
    }[outcome]
    changes: dict[str, Any] = {"status": target, "last_outcome": last, "evidence": evidence}
    if outcome == UnbindOutcome.DONE:
        changes["unbound_at"] = at
    if not rows.update(**changes):
        return _settled_meanwhile(binding.pk)

    merchant = binding.merchant
    subject = {"channel": binding.channel, "merchant": merchant.mid, "terminal": binding.terminal.sn}
    event_type, audit_outcome = {
        UnbindOutcome.DONE: (EventType.CHANNEL_UNBOUND, "success"),
        UnbindOutcome.REFUSED: (EventType.CHANNEL_UNBIND_REFUSED, "refused"),
        UnbindOutcome.RETRY: (EventType.CHANNEL_UNBIND_FAILED, "failure"),
    }[outcome]
    record(
        actor,
        Entry(
            event_type=event_type,
            subject_type="channel_binding",
            subject_id=str(binding.pk),
            outcome=audit_outcome,
            before={"status": from_status},
            after={
                "status": target.value,
                **subject,
                "answer": last.value,
                "code": answer.code,
                "reference": answer.reference,
                "attempts": binding.attempts,
            },
            occurred_at=at,
        ),
    )
    told = organisations_told(merchant.organisation.path)
    if outcome == UnbindOutcome.DONE:
        publish(
            [
                ChannelUnbound(
                    aggregate_id=str(binding.pk), organisation_ids=told, reference=answer.reference, **subject
                )
            ],
            occurred_at=at,
        )
    elif outcome == UnbindOutcome.REFUSED:
        publish(
            [
                ChannelUnbindRefused(
                    aggregate_id=str(binding.pk), organisation_ids=told, code=answer.code, **subject
                )
            ],
            occurred_at=at,
        )
    retry_after = None
    if outcome == UnbindOutcome.RETRY:
        backoff = min(RETRY_BASE * 2 ** min(binding.attempts - 1, 16), RETRY_MAX)
        retry_after = max(backoff, answer.retry_after or timedelta(0))
    return UnbindResult(outcome, binding.pk, binding.channel, evidence, retry_after)


def _settled_meanwhile(binding_id: int) -> UnbindResult:
    """A concurrent unbind settled the binding first: report what it became, record nothing."""
    binding = ChannelBinding.objects.get(pk=binding_id)
    if binding.status == BindingStatus.UNBOUND:
        return UnbindResult(UnbindOutcome.DONE, binding.pk, binding.channel, dict(binding.evidence))
    # Answers that disagree (one refused, one unbound): nothing is decided; the next attempt asks again.
    return UnbindResult(UnbindOutcome.RETRY, binding.pk, binding.channel, dict(binding.evidence), RETRY_BASE)
