"""Renewal offers (续费提醒): staff or the signing agent pick terminals on the expiry calendar and offer
their merchants the renewal, with the price, in one go. Each terminal is offered once per expiry date
(an ``offered`` milestone row: the same unique constraint as the notices), so a second click, or two
people at once, tell nobody twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.enrollment.events import RenewalOffered
from posfleet.enrollment.models import ExpiryMilestone
from posfleet.enrollment.services.expiry import active_contract_of
from posfleet.fleet.selectors import owners_of, terminals_by_sn
from posfleet.fleet.states import IN_SERVICE
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import ValidationFailed
from posfleet.platform.events import publish

OFFERED = "offered"
MAX_OFFERS = 500


@dataclass
class OfferResult:
    sent: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # offered before for this expiry date
    skipped: list[str] = field(default_factory=list)  # not yours, not in service, no expiry or contract


def renewal_offers(*, actor: Actor, sns: Sequence[str]) -> OfferResult:
    actor.require_person("enrollment.send_renewal_offers")
    wanted = list(dict.fromkeys(sn.strip().upper()[:32] for sn in sns if sn.strip()))
    if not wanted:
        raise ValidationFailed(_("Select at least one terminal."), field="sns")
    if len(wanted) > MAX_OFFERS:
        raise ValidationFailed(_("At most %(n)d terminals at a time.") % {"n": MAX_OFFERS}, field="sns")
    result = OfferResult()
    day = today()
    terminals = terminals_by_sn(wanted)
    owners = owners_of([t.pk for t in terminals.values()]) if terminals else {}
    with transaction.atomic():
        for sn in wanted:
            terminal = terminals.get(sn)
            if (
                terminal is None
                or terminal.merchant is None
                or not actor.may("fleet.view_terminal", terminal)
                or not actor.may("enrollment.offer_renewal", terminal.merchant)
                or terminal.status not in IN_SERVICE
                or terminal.service_expires_on is None
            ):
                result.skipped.append(sn)
                continue
            contract = active_contract_of(terminal)
            if contract is None:
                result.skipped.append(sn)
                continue
            try:
                with transaction.atomic():
                    ExpiryMilestone.objects.create(
                        terminal=terminal,
                        expires_on=terminal.service_expires_on,
                        milestone=OFFERED,
                        reached_on=day,
                        created_at=now(),
                    )
            except IntegrityError:
                result.already.append(sn)
                continue
            publish(
                [
                    RenewalOffered(
                        aggregate_id=terminal.sn,
                        organisation_ids=owners[terminal.pk].organisations,
                        expires_on=terminal.service_expires_on.isoformat(),
                        fee_fen=contract.annual_fee_fen,
                        tid=terminal.tid,
                        merchant=owners[terminal.pk].mid,
                    )
                ]
            )
            result.sent.append(sn)
        if result.sent:
            record(
                actor,
                Entry(
                    event_type=EventType.RENEWAL_OFFERED,
                    subject_type="terminals",
                    subject_id=f"{len(result.sent)} terminals",
                    after={"sns": result.sent[:100], "count": len(result.sent)},
                ),
            )
    return result
