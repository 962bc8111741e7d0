"""Notices: from committed events to deliveries, and deliveries to the world.

1. ``fan_out`` (an outbox handler, in the message's transaction) turns an event into ``Delivery`` rows:
   one per recipient and channel (notices.py says who hears what), plus one per subscribed webhook
   endpoint. The unique ``dedupe_key`` makes a second fan-out of the same event create nothing.
2. ``deliver_due`` (a task, enqueued after commit and swept every minute by the scheduler) sends the
   due deliveries. A delivery is claimed with a compare-and-set that also pushes its next attempt a
   lease ahead, so two workers never send it at once and a worker that dies mid-send leaves it to be
   retried when the lease ends (receivers drop the copy by event id). A failure is retried with
   exponential backoff; a permanent refusal or ``MAX_ATTEMPTS`` failures make it ``dead``, and a dead
   notice to a merchant is escalated to the users of its agent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.iam.models import Organisation, OrgKind, Role, User
from posfleet.iam.selectors import provider
from posfleet.notifications import channels, outbound
from posfleet.notifications.models import Channel, Delivery, InboxItem, WebhookEndpoint
from posfleet.notifications.notices import (
    ADMINS,
    AGENT,
    ESCALATION,
    MERCHANT,
    STAFF,
    WEBHOOK,
    notices_for,
)
from posfleet.notifications.rendering import render
from posfleet.notifications.selectors import endpoints_of
from posfleet.parties.selectors import merchant_of_organisation
from posfleet.platform import keyring, wake
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from posfleet.platform.events import REGISTRY
from posfleet.platform.models import DataKey, OutboxMessage
from posfleet.platform.outbox import backoff

log = logging.getLogger(__name__)

PENDING, SENT, FAILED, DEAD = (
    Delivery.Status.PENDING,
    Delivery.Status.SENT,
    Delivery.Status.FAILED,
    Delivery.Status.DEAD,
)
WEBHOOK_NOTICE = WEBHOOK


# -- 1. fan-out -----------------------------------------------------------------------------------


def fan_out(message: OutboxMessage) -> None:
    """The deliveries ``message`` makes (outbox handler: runs inside the message's transaction)."""
    rows: list[Delivery] = []
    for notice in notices_for(message.event_type, message.payload):
        for audience, channel_list in notice.audiences.items():
            organisation = _audience(audience, message)
            if organisation is not None:
                roles = PROVIDER_ROLES.get(audience)
                rows += _deliveries(message, notice.key, organisation, channel_list, roles=roles)
    endpoints = WebhookEndpoint.objects.filter(organisation_id__in=message.organisation_ids, active=True)
    rows += [
        Delivery(
            message=message,
            notice=WEBHOOK_NOTICE,
            channel=Channel.WEBHOOK,
            organisation_id=endpoint.organisation_id,
            endpoint=endpoint,
            dedupe_key=f"{message.event_id}:{WEBHOOK_NOTICE}:w{endpoint.pk}",
        )
        for endpoint in endpoints
        if endpoint.wants(message.event_type)
    ]
    if rows:
        Delivery.objects.bulk_create(rows, ignore_conflicts=True)
        wake.after_commit("notifications.deliver", once=True, coalesce=True)


# The provider's audiences: who of its users hears (staff: applications to review; admins: broken data).
PROVIDER_ROLES = {STAFF: frozenset({Role.ADMIN, Role.REVIEWER}), ADMINS: frozenset({Role.ADMIN})}


def _audience(audience: str, message: OutboxMessage) -> Organisation | None:
    organisations = list(Organisation.objects.filter(pk__in=message.organisation_ids))
    merchant_org = next((o for o in organisations if o.kind == OrgKind.MERCHANT), None)
    if audience == ADMINS:  # the provider's own business, whichever organisations an event concerns
        return provider()
    if audience in PROVIDER_ROLES:
        return next((o for o in organisations if o.kind == OrgKind.PROVIDER), None)
    if audience == MERCHANT:
        return merchant_org
    if audience == AGENT:
        if merchant_org is not None:
            merchant = merchant_of_organisation(merchant_org.pk)
            if merchant is not None:
                return merchant.agent.organisation
        agents = [o for o in organisations if o.kind == OrgKind.AGENT]
        return max(agents, key=lambda o: o.path.count("/"), default=None)  # the nearest agent
    return None


def _deliveries(
    message: OutboxMessage,
    notice: str,
    organisation: Organisation,
    channel_list: tuple[str, ...],
    *,
    escalation_of: Delivery | None = None,
    roles: frozenset[str] | None = None,
) -> list[Delivery]:
    """The deliveries of ``notice`` to ``organisation``'s users (and, for a merchant, its contact) over
    ``channel_list``. Off the console, the one rule (ADR 0026):

    - e-mail goes to every address on record: each user's, and the merchant's contact address when no
      user has it — the written record, with the whole text;
    - SMS goes to the merchant's contact mobile (``channels.sms_number``: a landline takes none) when the
      notice is time-critical (SMS in its channel list: a deactivation, a deadline, money) or when the
      merchant has no e-mail address on record at all — so a merchant with a mobile hears of every
      notice that leaves the console, and one without gets e-mail; with both, a time-critical notice
      goes both ways. Only while an SMS provider is configured (``POSFLEET_SMS_URL``).
    """
    users_qs = User.objects.filter(organisation=organisation, is_active=True)
    if roles is not None:
        users_qs = users_qs.filter(role__in=roles)
    users = list(users_qs.order_by("pk"))
    contact = merchant_of_organisation(organisation.pk) if organisation.kind == OrgKind.MERCHANT else None
    prefix = f"{message.event_id}:{notice}" + (f":{escalation_of.pk}" if escalation_of else "")
    rows: list[Delivery] = []

    def add(channel: str, target: str, user: User | None = None) -> None:
        rows.append(
            Delivery(
                message=message,
                notice=notice,
                channel=channel,
                organisation=organisation,
                user=user,
                language=user.language if user is not None else settings.LANGUAGE_CODE,
                escalation_of=escalation_of,
                dedupe_key=f"{prefix}:{channel}:{target}",
            )
        )

    mailed: list[tuple[str, User | None]] = []
    addresses = set()
    for user in users:
        if user.email:
            addresses.add(user.email.lower())
            mailed.append((f"u{user.pk}", user))
    if contact is not None and contact.contact_email and contact.contact_email.lower() not in addresses:
        mailed.append(("contact", None))
    mobile = (
        channels.sms_number(contact.contact_phone)
        if contact is not None and settings.POSFLEET_NOTIFY["SMS_URL"]
        else ""
    )
    for channel in channel_list:
        if channel == Channel.INBOX:
            for user in users:
                add(channel, f"u{user.pk}", user)
        elif channel == Channel.EMAIL:
            for target, mail_user in mailed:
                add(channel, target, mail_user)
            if mobile and not mailed and Channel.SMS not in channel_list:
                add(Channel.SMS, "contact")  # no e-mail address on record: the mobile instead
        elif channel == Channel.SMS and mobile:
            add(channel, "contact")
    return rows


# -- 2. delivery ----------------------------------------------------------------------------------


@dataclass
class DeliveryRun:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0


def _due() -> Q:
    return Q(status__in=[PENDING, FAILED]) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now()))


def deliver_due(*, limit: int = 500) -> DeliveryRun:
    """Send up to ``limit`` due deliveries, oldest first."""
    run = DeliveryRun()
    for pk in list(Delivery.objects.filter(_due()).order_by("id").values_list("pk", flat=True)[:limit]):
        outcome = deliver_one(pk)
        setattr(run, outcome, getattr(run, outcome) + 1)
    return run


def deliver_one(pk: int) -> str:
    """Claim, send and record one delivery; returns "sent", "failed", "dead" or "skipped"."""
    lease = settings.POSFLEET_NOTIFY["LEASE"]
    claimed = Delivery.objects.filter(_due(), pk=pk).update(
        attempts=F("attempts") + 1, next_attempt_at=now() + lease
    )
    if not claimed:
        return "skipped"  # another worker has it, or it is no longer due
    delivery = Delivery.objects.select_related("message", "user", "endpoint", "organisation").get(pk=pk)
    try:
        language = _send(delivery) or delivery.language
    except channels.DeliveryError as exc:
        return _failed(delivery, exc.reason, permanent=exc.permanent)
    except Exception as exc:
        log.exception("delivery %s crashed", pk)
        return _failed(delivery, f"internal error ({type(exc).__name__})", permanent=False)
    Delivery.objects.filter(pk=pk).update(
        status=SENT, sent_at=now(), next_attempt_at=None, last_error="", language=language
    )
    return "sent"


def _failed(delivery: Delivery, reason: str, *, permanent: bool) -> str:
    dead = permanent or delivery.attempts >= settings.POSFLEET_NOTIFY["MAX_ATTEMPTS"]
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DEAD if dead else FAILED,
            last_error=reason[:200],
            next_attempt_at=None if dead else now() + backoff(delivery.attempts),
        )
        if dead:
            escalate(delivery)
    log.warning(
        "delivery %s (%s via %s) %s: %s",
        delivery.pk,
        delivery.notice,
        delivery.channel,
        "dead" if dead else "failed",
        reason,
    )
    return "dead" if dead else "failed"


def escalate(delivery: Delivery) -> int:
    """A notice that never reached a merchant by e-mail or SMS goes to its agent's users (inbox and
    e-mail). Returns how many deliveries that made."""
    if (
        delivery.channel not in {Channel.EMAIL, Channel.SMS}
        or delivery.escalation_of_id is not None
        or delivery.organisation.kind != OrgKind.MERCHANT
    ):
        return 0
    merchant = merchant_of_organisation(delivery.organisation_id)
    if merchant is None:
        return 0
    rows = _deliveries(
        delivery.message,
        ESCALATION,
        merchant.agent.organisation,
        (Channel.INBOX, Channel.EMAIL),
        escalation_of=delivery,
    )
    Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    if rows:
        wake.after_commit("notifications.deliver", once=True, coalesce=True)
    return len(rows)


# -- what is sent ---------------------------------------------------------------------------------


def recipient_language(delivery: Delivery) -> str:
    """The language a delivery is written in when it is sent: its user's preference of the moment (a
    change of language reaches the retries too), else the provider's (``LANGUAGE_CODE``)."""
    known = {code for code, _name in settings.LANGUAGES}
    if delivery.user is not None and delivery.user.language in known:
        return delivery.user.language
    return settings.LANGUAGE_CODE


def content(delivery: Delivery, language: str | None = None) -> tuple[str, str]:
    """Subject and body of ``delivery`` in ``language`` (default: its recipient's language now)."""
    return render(delivery.notice, params_of(delivery), language or recipient_language(delivery))


def params_of(delivery: Delivery) -> dict[str, Any]:
    """What a delivery's words are made of, in no language (``rendering.render`` formats it): the event's
    facts, or, for an escalation, the notice that was not delivered and how it failed."""
    message = delivery.message
    if delivery.notice != ESCALATION:
        return message_params(message)
    original = delivery.escalation_of
    assert original is not None
    merchant = merchant_of_organisation(original.organisation_id)
    return {
        "notice": original.notice,
        "params": message_params(message),
        "merchant_name": merchant.name if merchant else "",
        "mid": merchant.mid if merchant else "",
        "channel": original.channel,
        "attempts": original.attempts,
    }


def message_params(message: OutboxMessage) -> dict[str, Any]:
    """An event's payload and the facts around it: its aggregate (``sn``; an application's ``number``),
    the merchant's name and when it happened (``occurred_at``, ISO). JSON values only."""
    payload = dict(message.payload)
    merchant_name = ""
    for org in Organisation.objects.filter(pk__in=message.organisation_ids, kind=OrgKind.MERCHANT):
        merchant = merchant_of_organisation(org.pk)
        merchant_name = merchant.name if merchant else org.name
    extra: dict[str, Any] = {}
    if message.aggregate_type == "application":
        extra["number"] = message.aggregate_id
    return {
        **payload,
        "sn": message.aggregate_id,
        "merchant_name": merchant_name,
        "occurred_at": message.occurred_at.isoformat(),
        **extra,
    }


def _link(delivery: Delivery) -> str:
    message = delivery.message
    try:
        if message.aggregate_type == "terminal":
            return reverse("console:terminal", args=[message.aggregate_id])
        if message.aggregate_type == "application":
            return reverse("console:application", args=[message.aggregate_id])
    except NoReverseMatch:
        return ""
    return ""


def _send(delivery: Delivery) -> str:
    """Send ``delivery``; returns the language it was written in ("" for a webhook)."""
    message = delivery.message
    event_id = str(message.event_id)
    if delivery.channel == Channel.WEBHOOK:
        endpoint = delivery.endpoint
        if endpoint is None or not endpoint.active:
            raise channels.DeliveryError("webhook endpoint removed or disabled", permanent=True)
        channels.send_webhook(
            url=endpoint.url,
            msg_id=event_id,
            payload={
                "id": event_id,
                "type": message.event_type,
                "timestamp": message.occurred_at.isoformat(),
                "data": message.payload,
            },
            secrets_=endpoint_secrets(endpoint),
        )
        return ""
    params = params_of(delivery)
    language = recipient_language(delivery)
    subject, body = render(delivery.notice, params, language)
    if delivery.channel == Channel.INBOX:
        if delivery.user is None:
            raise channels.DeliveryError("no inbox", permanent=True)
        # The kind (the delivery's notice) and the parameters are what the inbox shows, rendered when it
        # is read in the reader's language of the moment; title and body keep the text as delivered.
        InboxItem.objects.get_or_create(
            delivery=delivery,
            defaults={
                "user": delivery.user,
                "title": subject[:200],
                "body": body,
                "params": params,
                "link": _link(delivery),
                "created_at": now(),
            },
        )
        return language
    address = _address(delivery)
    if not address:
        raise channels.DeliveryError(f"no {delivery.channel} address on record", permanent=True)
    if delivery.channel == Channel.EMAIL:
        channels.send_email(to=address, subject=subject, body=body, event_id=event_id)
    elif delivery.channel == Channel.SMS:
        channels.send_sms(to=address, text=f"{subject}: {body}", event_id=event_id)
    else:
        raise channels.DeliveryError(f"unknown channel {delivery.channel}", permanent=True)
    return language


def _address(delivery: Delivery) -> str:
    if delivery.user is not None:
        return delivery.user.email if delivery.channel == Channel.EMAIL else ""
    merchant = merchant_of_organisation(delivery.organisation_id)
    if merchant is None:
        return ""
    if delivery.channel == Channel.EMAIL:
        return merchant.contact_email
    return channels.sms_number(merchant.contact_phone)


# -- operator actions -----------------------------------------------------------------------------


def delivery_resend(*, actor: Actor, delivery_id: int) -> Delivery:
    """Send a failed or dead delivery again, now (the attempt count starts over)."""
    actor.require_person("notifications.resend")
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            raise NotFound()
        if delivery.status not in {FAILED, DEAD}:
            raise Conflict(_("Only a failed or dead delivery can be sent again."), status=delivery.status)
        before = {"status": delivery.status, "attempts": delivery.attempts}
        Delivery.objects.filter(pk=delivery.pk).update(status=PENDING, attempts=0, next_attempt_at=None)
        record(
            actor,
            Entry(
                event_type=EventType.NOTIFICATION_RESENT,
                subject_type="delivery",
                subject_id=str(delivery.pk),
                before=before,
                after={"status": PENDING, "notice": delivery.notice, "channel": delivery.channel},
            ),
        )
        wake.after_commit("notifications.deliver", once=True, coalesce=True)
    delivery.refresh_from_db()
    return delivery


def endpoint_secrets(endpoint: WebhookEndpoint) -> list[str]:
    valid = [_unseal_secret(endpoint, endpoint.secret_sealed, "secret")]
    if (
        endpoint.previous_secret_sealed
        and endpoint.previous_valid_until
        and endpoint.previous_valid_until > now()
    ):
        valid.append(_unseal_secret(endpoint, endpoint.previous_secret_sealed, "previous"))
    return valid


def inbox_mark_read(*, user: User, item_ids: list[int] | None = None, everything: bool = False) -> int:
    """Mark the given items of the user's inbox read, or with ``everything`` every unread one; returns
    how many. Exactly one of the two is given: a request naming nothing marks nothing (it is refused)."""
    if everything and item_ids:
        raise ValidationFailed(
            _("Either name the notices to mark read or mark them all read, not both."), field="ids"
        )
    if not everything and not item_ids:
        raise ValidationFailed(_("Say which notices to mark read, or mark them all read."), field="ids")
    items = InboxItem.objects.filter(user=user, read_at__isnull=True)
    if not everything:
        items = items.filter(pk__in=item_ids or [])
    return items.update(read_at=now())


# -- webhook endpoints ----------------------------------------------------------------------------


def _require_webhooks(actor: Actor) -> User:
    return actor.require_person("notifications.manage_webhooks")


def endpoint_for(user: User, endpoint_id: int) -> WebhookEndpoint:
    """The user's organisation's endpoint; any other answers NotFound (404)."""
    endpoint = endpoints_of(user).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound()
    return endpoint


def _check_endpoint(url: str, event_types: list[str]) -> outbound.Destination:
    if len(url) > 500:
        raise ValidationFailed(_("The URL is longer than 500 characters."), field="url")
    try:
        # Resolved now (unresolvable names refused) unless private addresses are allowed (tests, labs),
        # and checked again, resolved once, at every delivery: ADR 0021.
        resolve = not settings.POSFLEET_NOTIFY["WEBHOOK_ALLOW_PRIVATE"]
        destination, _addresses = channels.webhook_destination(url or "", resolve=resolve)
    except outbound.Refused as refused:
        raise ValidationFailed(refused.message, field="url", reason=refused.code) from None
    unknown = sorted(set(event_types) - set(REGISTRY))
    if unknown:
        raise ValidationFailed(
            _("Unknown event type “%(name)s”.") % {"name": unknown[0][:64]}, field="event_types"
        )
    return destination


def _seal_secret(key: DataKey, secret: str, which: str) -> bytes:
    return keyring.seal(key, secret.encode(), f"webhook_endpoint:{key.pk}:{which}")


def _unseal_secret(endpoint: WebhookEndpoint, sealed: bytes | memoryview, which: str) -> str:
    return keyring.unseal(
        endpoint.data_key, sealed, f"webhook_endpoint:{endpoint.data_key_id}:{which}"
    ).decode()


def webhook_endpoint_create(
    *, actor: Actor, url: str, description: str = "", event_types: list[str] | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the actor's organisation; returns it and its secret (shown this once)."""
    user = _require_webhooks(actor)
    if user.organisation is None:
        raise PermissionDenied()
    types = sorted(set(event_types or []))
    destination = _check_endpoint(url, types)
    secret = channels.new_webhook_secret()
    with transaction.atomic():
        key = keyring.new_key()
        endpoint = WebhookEndpoint.objects.create(
            organisation=user.organisation,
            url=url,
            description=description[:200],
            event_types=types,
            data_key=key,
            secret_sealed=_seal_secret(key, secret, "secret"),
        )
        record(
            actor,
            Entry(
                event_type=EventType.WEBHOOK_ENDPOINT_CREATED,
                subject_type="webhook_endpoint",
                subject_id=str(endpoint.pk),
                after={"host": destination.host, "event_types": types},
            ),
        )
    return endpoint, secret


def webhook_secret_rotate(
    *, actor: Actor, endpoint_id: int, overlap_hours: int = 24
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one stays valid for ``overlap_hours`` (0–168), both signing meanwhile."""
    user = _require_webhooks(actor)
    if not 0 <= overlap_hours <= 168:
        raise ValidationFailed(_("The overlap is 0 to 168 hours."), field="overlap_hours")
    with transaction.atomic():
        endpoint = endpoint_for(user, endpoint_id)
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        secret = channels.new_webhook_secret()
        until = now() + timedelta(hours=overlap_hours)
        previous = _unseal_secret(endpoint, endpoint.secret_sealed, "secret")
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            secret_sealed=_seal_secret(endpoint.data_key, secret, "secret"),
            previous_secret_sealed=_seal_secret(endpoint.data_key, previous, "previous"),
            previous_valid_until=until,
        )
        record(
            actor,
            Entry(
                event_type=EventType.WEBHOOK_SECRET_ROTATED,
                subject_type="webhook_endpoint",
                subject_id=str(endpoint.pk),
                after={"previous_valid_until": until.isoformat()},
            ),
        )
    endpoint.refresh_from_db()
    return endpoint, secret


def webhook_endpoint_disable(*, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    """Stop sending to the endpoint; its pending deliveries become dead when their turn comes."""
    user = _require_webhooks(actor)
    with transaction.atomic():
        endpoint = endpoint_for(user, endpoint_id)
        if not WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).update(active=False):
            raise Conflict(_("This endpoint is already disabled."))
        record(
            actor,
            Entry(
                event_type=EventType.WEBHOOK_ENDPOINT_DISABLED,
                subject_type="webhook_endpoint",
                subject_id=str(endpoint.pk),
                before={"active": True},
                after={"active": False},
            ),
        )
    endpoint.refresh_from_db()
    return endpoint
