"""Reading notices: a user's inbox, the deliveries staff may see, an organisation's endpoints."""

from __future__ import annotations

from django.db.models import QuerySet

from posfleet.iam.models import User
from posfleet.notifications.models import Delivery, InboxItem, WebhookEndpoint
from posfleet.platform.errors import PermissionDenied


def inbox_of(user: User) -> QuerySet[InboxItem]:
    return InboxItem.objects.filter(user=user).select_related("delivery__message")


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
