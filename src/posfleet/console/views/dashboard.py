"""The dashboard: the fleet at a glance, scoped to what the user may see (provider staff and agents);
a merchant user gets its own home instead (``views/merchant_home.py``)."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from posfleet.console import queries
from posfleet.console.views.base import console_login_required, render_page
from posfleet.console.views.merchant_home import home
from posfleet.fleet import selectors as fleet
from posfleet.fleet.states import IN_SERVICE, STOPPED, Status
from posfleet.fleet.timeline import timeline_entries
from posfleet.iam.models import User
from posfleet.iam.rules import is_merchant
from posfleet.platform.clock import today

EXPIRY_DAYS = 30
EXPIRY_ROWS = 10


@console_login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if is_merchant(user):  # a shopkeeper gets its own home, not the operator's fleet view
        return home(request, user)
    by_status = fleet.count_by_status(user)
    by_model = fleet.count_by_model(user)
    start = today()
    end = start + timedelta(days=EXPIRY_DAYS)
    expiring = fleet.sim_expiring(user, start, end)
    activity = queries.terminal_activity(user)
    terminals_url = reverse("console:terminals")
    statuses = [s for s in Status if by_status.get(s.value)]
    charts = {
        "status": {
            "labels": [str(s.label) for s in statuses],
            "codes": [s.value for s in statuses],
            "values": [by_status[s.value] for s in statuses],
            "url": terminals_url,
        },
        "model": {"labels": [name for name, _n in by_model], "values": [n for _name, n in by_model]},
        "activity": {
            "labels": [date_format(day, "MONTH_DAY_FORMAT") for day in activity.days],
            "values": activity.counts,
        },
    }
    context = {
        "total": sum(by_status.values()),
        "active": by_status.get(Status.ACTIVE, 0),
        "stopped": sum(by_status.get(s, 0) for s in STOPPED),
        "status_rows": [(s, by_status[s.value]) for s in statuses],
        "model_rows": by_model,
        "expiring_count": expiring.count(),
        "expiring": [
            (t, (t.service_expires_on - start).days) for t in expiring[:EXPIRY_ROWS] if t.service_expires_on
        ],
        "expiring_days": EXPIRY_DAYS,
        "expiring_url": terminals_url
        + "?"
        + urlencode(
            {
                "status": [s.value for s in Status if s in IN_SERVICE],
                "sim_from": start.isoformat(),
                "sim_to": end.isoformat(),
                "sort": "sim_expiry",
            },
            doseq=True,
        ),
        "activity": activity,
        "latest": timeline_entries(activity.latest),
        "charts": charts,
    }
    return render_page(request, "console/dashboard.html", context)
