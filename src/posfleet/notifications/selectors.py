"""Reading notices: a user's inbox, the deliveries staff may see, an organisation's endpoints."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django.utils import translation

from posfleet.iam.models import User
from posfleet.notifications.models import Delivery, InboxItem, WebhookEndpoint
from posfleet.notifications.rendering import render
from posfleet.platform.errors import PermissionDenied


def inbox_of(user: User) -> QuerySet[InboxItem]:
    return InboxItem.objects.filter(user=user).select_related("delivery__message")


@dataclass(frozen=True)
class InboxEntry:
    item: InboxItem
    title: str
    body: str


def inbox_text(item: InboxItem, language: str | None = None) -> tuple[str, str]:
    """The title and body of an inbox item in ``language`` (default: the active one, the reader's),
    rendered now from its kind and parameters. An item from before parameters were kept, or of a kind
    that no longer exists, shows the text it was delivered with."""
    if item.params is not None:
        try:
            language = language or translation.get_language() or settings.LANGUAGE_CODE
            return render(item.delivery.notice, item.params, language)
        except (KeyError, TypeError, ValueError):
            pass
    return item.title, item.body


def inbox_entries(items: list[InboxItem], language: str | None = None) -> list[InboxEntry]:
    return [InboxEntry(item, *inbox_text(item, language)) for item in items]


def unread_count(user: User) -> int:
    return InboxItem.objects.filter(user=user, read_at__isnull=True).count()


def deliveries_visible_to(user: User) -> QuerySet[Delivery]:
    """Every delivery, for the provider's staff; nobody else sees this list (403)."""
    if not user.has_perm("notifications.view_deliveries"):
        raise PermissionDenied()
    return Delivery.objects.select_related("message", "organisation", "user", "endpoint")


def endpoints_of(user: User) -> QuerySet[WebhookEndpoint]:
    if user.organisation_id is None:
        return WebhookEndpoint.objects.none()
    return WebhookEndpoint.objects.filter(organisation_id=user.organisation_id)
