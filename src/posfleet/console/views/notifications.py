"""The in-app inbox (everyone) and the deliveries page (provider staff: what went out, what is
waiting, what failed or died; admins send again)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import forbidden, signed_in
from posfleet.iam.web import actor_from_request
from posfleet.notifications.labels import event_label, notice_label
from posfleet.notifications.models import Channel, Delivery
from posfleet.notifications.notices import WEBHOOK
from posfleet.notifications.selectors import deliveries_visible_to, inbox_entries, inbox_of, unread_count
from posfleet.notifications.services import delivery_resend, inbox_mark_read
from posfleet.platform.errors import DomainError, PermissionDenied, ValidationFailed

PAGE = 50


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery as the page shows it: its notice kind (and a webhook's event type) in words."""

    delivery: Delivery
    notice: str
    event: str


@console_login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    show = "unread" if request.GET.get("show") == "unread" else "all"
    items = inbox_of(user)
    if show == "unread":
        items = items.filter(read_at__isnull=True)
    page = Paginator(items, PAGE).get_page(request.GET.get("page"))
    return render_page(
        request,
        "console/notifications/inbox.html",
        {
            "page": page,
            "entries": inbox_entries(list(page.object_list)),  # in the reader's language, now
            "show": show,
            "unread": unread_count(user),
        },
        partial="results",
    )


@console_login_required
@require_POST
def inbox_read(request: HttpRequest) -> HttpResponse:
    """Mark one item (``item``) or, with ``all=1``, every unread item read, then go to ``next`` (the
    item's link) or back to the inbox. A request naming neither marks nothing."""
    user = signed_in(request)
    raw = request.POST.get("item", "")
    ids = [int(raw)] if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    try:
        inbox_mark_read(user=user, item_ids=ids, everything=request.POST.get("all") == "1")
    except ValidationFailed as exc:
        messages.error(request, str(exc.detail))
        return HttpResponseRedirect(reverse("console:inbox"))
    target = request.POST.get("next", "")
    if not (target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=False)):
        target = reverse("console:inbox")
    return HttpResponseRedirect(target)


@console_login_required
@require_GET
def deliveries(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    try:
        qs = deliveries_visible_to(user)
    except PermissionDenied:
        return forbidden(request, _("The deliveries page is for the provider's staff."))
    counts = dict(qs.order_by().values_list("status").annotate(n=Count("id")))
    status = request.GET.get("status", "")
    if status not in Delivery.Status.values:
        status = ""
    channel = request.GET.get("channel", "")
    if channel not in Channel.values:
        channel = ""
    shown = qs.order_by("-id")
    if status:
        shown = shown.filter(status=status)
    if channel:
        shown = shown.filter(channel=channel)
    page = Paginator(shown, PAGE).get_page(request.GET.get("page"))
    rows = [
        DeliveryRow(
            d,
            notice_label(d.notice),
            event_label(d.message.event_type) if d.notice == WEBHOOK else "",
        )
        for d in page.object_list
    ]
    tabs = [("", _("All"), sum(counts.values()))] + [
        (value, label, counts.get(value, 0)) for value, label in Delivery.Status.choices
    ]
    return render_page(
        request,
        "console/notifications/deliveries.html",
        {
            "page": page,
            "rows": rows,
            "tabs": tabs,
            "status": status,
            "channel": channel,
            "channels": Channel.choices,
            "may_resend": user.has_perm("notifications.resend"),
            "bar": _bar(counts),
        },
        partial="results",
    )


@console_login_required
@require_POST
def delivery_resend_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        delivery_resend(actor=actor_from_request(request), delivery_id=pk)
    except PermissionDenied:
        return forbidden(request, _("Only a platform admin may send a notice again."))
    except DomainError as exc:
        messages.error(request, str(exc.detail))
    else:
        messages.success(request, _("The notice is queued and goes out within a minute."))
    return HttpResponseRedirect(reverse("console:deliveries") + "?status=pending")


BAR_COLOURS = {"sent": "success", "pending": "info", "failed": "warning", "dead": "danger"}


def _bar(counts: dict[str, int]) -> list[dict[str, object]]:
    """The stacked bar over the statuses: each one's share of all deliveries, in percent."""
    total = sum(counts.values())
    if not total:
        return []
    return [
        {
            "status": value,
            "label": label,
            "count": counts.get(value, 0),
            "percent": round(100 * counts.get(value, 0) / total, 1),
            "colour": BAR_COLOURS[value],
        }
        for value, label in Delivery.Status.choices
        if counts.get(value, 0)
    ]
