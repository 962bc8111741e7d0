"""The relocation alerts a person may read (a terminal heard of far from its store): the list by tab,
with a search, and one alert; the terminal's open alert is on its health (``selectors``)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from posfleet.fleet.models import RelocationAlert
from posfleet.fleet.selectors import terminals_visible_to
from posfleet.iam.models import User
from posfleet.platform.errors import NotFound


def relocation_alerts_visible_to(user: User) -> QuerySet[RelocationAlert]:
    """The relocation alerts of the terminals ``user`` may see (others' are simply not there)."""
    qs = RelocationAlert.objects.select_related(
        "terminal", "terminal__model", "terminal__merchant", "terminal__agent", "store", "reviewed_by"
    )
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_provider_staff:
        return qs
    return qs.filter(terminal__in=terminals_visible_to(user).values("pk"))


RELOCATION_TABS = ("open", "confirmed_moved", "dismissed", "all")


def search_relocation_alerts(user: User, tab: str = "open", q: str = "") -> QuerySet[RelocationAlert]:
    """``user``'s relocation alerts of one tab (a status, or ``all``), newest first; ``q`` is part of an
    SN or TID."""
    qs = relocation_alerts_visible_to(user)
    if tab != "all":
        qs = qs.filter(status=tab)
    text = q.strip().upper()
    if text:
        qs = qs.filter(Q(terminal__sn__contains=text) | Q(terminal__tid__contains=text))
    return qs.order_by("-detected_at", "-id")


def relocation_alert_for(user: User, alert_id: int) -> RelocationAlert:
    """Alert ``alert_id`` if ``user`` may see it; ``NotFound`` otherwise."""
    alert = relocation_alerts_visible_to(user).filter(pk=alert_id).first()
    if alert is None:
        raise NotFound()
    return alert
