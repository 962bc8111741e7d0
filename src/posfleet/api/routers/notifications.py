"""/notifications (the caller's inbox; staff: every delivery) and /webhook-endpoints (the caller's
organisation's endpoints; secrets shown once)."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from posfleet.api import notification_schemas as n
from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.iam.models import User
from posfleet.notifications.labels import notice_label
from posfleet.notifications.models import Delivery, InboxItem, WebhookEndpoint
from posfleet.notifications.selectors import (
    InboxEntry,
    deliveries_visible_to,
    endpoints_of,
    inbox_of,
    inbox_text,
    unread_count,
)
from posfleet.notifications.services import (
    delivery_resend,
    endpoint_for,
    inbox_mark_read,
    webhook_endpoint_create,
    webhook_endpoint_disable,
    webhook_secret_rotate,
)
from posfleet.platform.context import Actor
from posfleet.platform.errors import PermissionDenied

router = Router(tags=["notifications"])


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


def inbox_item(item: InboxItem) -> n.InboxItemOut:
    title, body = inbox_text(item)  # in the caller's language of the moment
    return inbox_entry(InboxEntry(item, title, body))


def inbox_entry(entry: InboxEntry) -> n.InboxItemOut:
    """An inbox item with its text as rendered for the reader (``notifications.selectors.inbox_entries``)."""
    item, title, body = entry.item, entry.title, entry.body
    return n.InboxItemOut(
        id=item.pk,
        event_id=str(item.delivery.message.event_id),
        event_type=item.delivery.message.event_type,
        notice_label=notice_label(item.delivery.notice),
        title=title,
        body=body,
        link=item.link,
        created_at=item.created_at,
        read_at=item.read_at,
    )


def delivery_out(d: Delivery) -> n.DeliveryOut:
    if d.endpoint_id is not None:
        recipient = f"endpoint {d.endpoint_id}"
    elif d.user is not None:
        recipient = d.user.get_username()
    else:
        recipient = "contact"
    return n.DeliveryOut(
        id=d.pk,
        event_id=str(d.message.event_id),
        event_type=d.message.event_type,
        notice=d.notice,
        notice_label=notice_label(d.notice),
        channel=d.channel,
        organisation=d.organisation.name,
        recipient=recipient,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_error=d.last_error,
        escalation_of=d.escalation_of_id,
        created_at=d.created_at,
        sent_at=d.sent_at,
    )


def endpoint_out(e: WebhookEndpoint) -> n.EndpointOut:
    return n.EndpointOut(
        id=e.pk,
        url=e.url,
        description=e.description,
        event_types=list(e.event_types),
        active=e.active,
        previous_secret_valid_until=e.previous_valid_until if e.previous_secret_sealed else None,
        created_at=e.created_at,
    )


def endpoint_with_secret(e: WebhookEndpoint, secret: str | None) -> n.EndpointSecretOut:
    return n.EndpointSecretOut(**endpoint_out(e).model_dump(), secret=secret)


@router.get("/notifications", summary="My inbox", response=s.responses({200: n.InboxPage}, s.READ_LIST))
def notifications_list(request: HttpRequest, page: Query[PageQuery]) -> n.InboxPage:
    """The caller's in-app notices, newest first, with the number still unread."""
    user = _user(request)
    rows, cursor = keyset(inbox_of(user), list_name="inbox", key="id", page=page, descending=True)
    return n.InboxPage(items=[inbox_item(i) for i in rows], next_cursor=cursor, unread=unread_count(user))


@router.post(
    "/notifications/read",
    summary="Mark notices read",
    response=s.responses({200: n.MarkedOut}, (400, 401, 403, 409, 422)),
)
def notifications_read(
    request: HttpRequest, body: n.MarkReadIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Mark the given items (`ids`) or, with `"all": true`, every unread item of the caller's inbox read.
    One of the two is required (422 otherwise). Others' ids are ignored."""

    def work(who: Actor) -> Outcome:
        if who.read_only or who.user is None:
            raise PermissionDenied()
        marked = inbox_mark_read(user=who.user, item_ids=body.ids, everything=body.all)
        return Outcome(200, {"marked": marked})

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/notifications/deliveries",
    summary="Deliveries (provider staff)",
    response=s.responses({200: n.DeliveryPage}, (401, 403, 422)),
)
def deliveries_list(
    request: HttpRequest, query: Query[n.DeliveryQuery], page: Query[PageQuery]
) -> n.DeliveryPage:
    """Every notice sent or to be sent — pending, sent, failed (retrying) or dead — newest first."""
    qs = deliveries_visible_to(_user(request))
    if query.status:
        qs = qs.filter(status=query.status)
    if query.channel:
        qs = qs.filter(channel=query.channel)
    if query.event_id:
        qs = qs.filter(message__event_id=query.event_id) if _is_uuid(query.event_id) else qs.none()
    rows, cursor = keyset(qs, list_name="deliveries", key="id", page=page, descending=True)
    return n.DeliveryPage(items=[delivery_out(d) for d in rows], next_cursor=cursor)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@router.post(
    "/notifications/deliveries/{delivery_id}/resend",
    summary="Send a failed or dead delivery again",
    response=s.responses({200: n.DeliveryOut}, (400, 401, 403, 404, 409, 422)),
)
def deliveries_resend(
    request: HttpRequest, delivery_id: int, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Platform admins only. The attempt count starts over; the worker sends it within a minute."""

    def work(who: Actor) -> Outcome:
        delivery = delivery_resend(actor=who, delivery_id=delivery_id)
        delivery = Delivery.objects.select_related("message", "organisation", "user").get(pk=delivery.pk)
        return Outcome(200, presenters.dump(delivery_out(delivery)))

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/webhook-endpoints",
    summary="My organisation's webhook endpoints",
    response=s.responses({200: n.EndpointPage}, s.READ_LIST),
)
def endpoints_list(request: HttpRequest, page: Query[PageQuery]) -> n.EndpointPage:
    rows, cursor = keyset(endpoints_of(_user(request)), list_name="endpoints", key="id", page=page)
    return n.EndpointPage(items=[endpoint_out(e) for e in rows], next_cursor=cursor)


@router.post(
    "/webhook-endpoints",
    summary="Add a webhook endpoint",
    response=s.responses({201: n.EndpointSecretOut}, (400, 401, 403, 409, 422)),
)
def endpoints_create(
    request: HttpRequest, body: n.EndpointIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Your organisation's events are POSTed to `url`, signed per Standard Webhooks (headers
    `webhook-id`, `webhook-timestamp`, `webhook-signature`). The secret is in this answer only."""

    def work(who: Actor) -> Outcome:
        endpoint, secret = webhook_endpoint_create(
            actor=who, url=body.url, description=body.description, event_types=body.event_types
        )
        return Outcome(
            201,
            presenters.dump(endpoint_with_secret(endpoint, secret)),
            stored=presenters.dump(endpoint_with_secret(endpoint, None)),
        )

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    summary="One webhook endpoint",
    response=s.responses({200: n.EndpointOut}, s.READ_ONE),
)
def endpoints_detail(request: HttpRequest, endpoint_id: int) -> n.EndpointOut:
    return endpoint_out(endpoint_for(_user(request), endpoint_id))


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate",
    summary="Rotate an endpoint's secret",
    response=s.responses({200: n.EndpointSecretOut}, (400, 401, 403, 404, 409, 422)),
)
def endpoints_rotate(
    request: HttpRequest, endpoint_id: int, body: n.RotateIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """A new secret, in this answer only. Until `previous_secret_valid_until` every delivery carries
    both signatures, so switch your receiver to the new secret within the overlap."""

    def work(who: Actor) -> Outcome:
        endpoint, secret = webhook_secret_rotate(
            actor=who, endpoint_id=endpoint_id, overlap_hours=body.overlap_hours
        )
        return Outcome(
            200,
            presenters.dump(endpoint_with_secret(endpoint, secret)),
            stored=presenters.dump(endpoint_with_secret(endpoint, None)),
        )

    return execute(request, actor(request), work, key=idempotency_key)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    summary="Disable a webhook endpoint",
    response=s.responses({200: n.EndpointOut}, (401, 403, 404, 409, 422)),
)
def endpoints_disable(request: HttpRequest, endpoint_id: int) -> n.EndpointOut:
    """Nothing more is sent to it; what was still pending is dropped (dead)."""
    return endpoint_out(webhook_endpoint_disable(actor=actor(request), endpoint_id=endpoint_id))
