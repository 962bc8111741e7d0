"""The expiry calendar: what runs out in the next 12 weeks (a chart), the terminals due in the next
30 days or in their grace period (a table), and renewal from the row."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import formats
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.money.common import forbidden, signed_in
from posfleet.enrollment.services.expiry import grace_days, service_renew
from posfleet.enrollment.services.offers import renewal_offers
from posfleet.fleet.models import Terminal
from posfleet.fleet.selectors import terminals_visible_to
from posfleet.fleet.states import IN_SERVICE
from posfleet.iam.web import actor_from_request
from posfleet.platform.clock import today
from posfleet.platform.errors import DomainError, NotFound, PermissionDenied
from posfleet.platform.money import format_fen

WEEKS = 12
PAGE = 50


@console_login_required
@require_GET
def expiry_calendar(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    day = today()
    monday = day - timedelta(days=day.weekday())
    in_service = terminals_visible_to(user).filter(
        status__in=IN_SERVICE, merchant__isnull=False, service_expires_on__isnull=False
    )
    per_day = dict(
        in_service.filter(
            service_expires_on__gte=monday, service_expires_on__lt=monday + timedelta(weeks=WEEKS)
        )
        .order_by()
        .values_list("service_expires_on")
        .annotate(n=Count("id"))
    )
    weeks = [monday + timedelta(weeks=w) for w in range(WEEKS)]
    counts = [sum(per_day.get(start + timedelta(days=d), 0) for d in range(7)) for start in weeks]
    due = in_service.filter(
        service_expires_on__gte=day - timedelta(days=grace_days()),
        service_expires_on__lte=day + timedelta(days=30),
    ).order_by("service_expires_on", "sn")
    page = Paginator(due, PAGE).get_page(request.GET.get("page"))
    rows = [_row(t, day) for t in page.object_list]
    return render_page(
        request,
        "console/expiry/calendar.html",
        {
            "page": page,
            "rows": rows,
            # Who may renew at all (the service decides per terminal: the signing agent, the merchant).
            "may_renew": user.has_perm("enrollment.renew_some_service"),
            "may_offer": user.has_perm("enrollment.send_renewal_offers"),
            "grace_days": grace_days(),
            "chart": {
                "labels": [formats.date_format(start, "MONTH_DAY_FORMAT") for start in weeks],
                "values": counts,
                "label": _("Terminals whose service expires that week"),
            },
            "total_12_weeks": sum(counts),
        },
    )


def _row(terminal: Terminal, day: date) -> dict[str, object]:
    assert terminal.service_expires_on is not None
    left = (terminal.service_expires_on - day).days
    if left < 0:
        state, colour = _("expired, in grace"), "danger"
    elif left <= 7:
        state, colour = _("due within a week"), "warning"
    else:
        state, colour = _("due within 30 days"), "info"
    return {"terminal": terminal, "days_left": left, "state": state, "colour": colour}


@console_login_required
@require_POST
def expiry_renew(request: HttpRequest) -> HttpResponse:
    """Renew one terminal (its row's button) or every ticked one, a year each; each on its own."""
    sns = [sn.strip()[:32] for sn in request.POST.getlist("sn") if sn.strip()][:200]
    if not sns:
        messages.error(request, _("Tick at least one terminal."))
        return HttpResponseRedirect(reverse("console:expiry"))
    actor = actor_from_request(request)
    renewed, refused = [], []
    for sn in sns:
        try:
            renewal = service_renew(actor=actor, sn=sn, years=1)
        except NotFound as exc:
            if len(sns) == 1:
                raise Http404 from exc
            refused.append(f"{sn}: {_('not found')}")
        except PermissionDenied:
            if len(sns) == 1:
                return forbidden(request, _("You may not renew this terminal's service."))
            refused.append(f"{sn}: {_('not allowed')}")
        except DomainError as exc:
            refused.append(f"{sn}: {exc.detail}")
        else:
            renewed.append(renewal)
    if len(renewed) == 1 and not refused:
        renewal = renewed[0]
        messages.success(
            request,
            _("Terminal %(sn)s renewed until %(day)s; the fee of %(fee)s is charged to the merchant.")
            % {
                "sn": renewal.terminal.sn,
                "day": renewal.expires_on.isoformat(),
                "fee": format_fen(renewal.fee_fen),
            },
        )
    elif renewed:
        messages.success(
            request,
            _("%(n)s terminals renewed for a year; %(fee)s in fees is charged to their merchants.")
            % {"n": len(renewed), "fee": format_fen(sum(r.fee_fen for r in renewed))},
        )
    for line in refused:
        messages.error(request, line)
    return HttpResponseRedirect(reverse("console:expiry"))


@console_login_required
@require_POST
def expiry_offers(request: HttpRequest) -> HttpResponse:
    """Offer the renewal, with its price, to the merchants of the ticked terminals (once per expiry)."""
    try:
        result = renewal_offers(actor=actor_from_request(request), sns=request.POST.getlist("sn"))
    except PermissionDenied:
        return forbidden(request, _("Renewal offers are sent by platform admins and agents."))
    except DomainError as exc:
        messages.error(request, str(exc.detail))
        return HttpResponseRedirect(reverse("console:expiry"))
    messages.success(
        request,
        _("Renewal offers sent for %(sent)s terminals; %(already)s had one for this expiry already.")
        % {"sent": len(result.sent), "already": len(result.already)},
    )
    if result.skipped:
        messages.warning(
            request,
            _("Not offered (not yours, not in service, or without a contract): %(sns)s")
            % {"sns": ", ".join(result.skipped[:20])},
        )
    return HttpResponseRedirect(reverse("console:expiry"))
