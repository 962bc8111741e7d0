"""The merchant's home: what a shopkeeper opens the console for (``console:dashboard`` for a merchant
user; provider staff and agents keep the fleet dashboard, ``views/dashboard.py``). The read model is
``reports.merchant_home``, the one the API's ``GET /me/home`` answers with too."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import urlencode

from posfleet.console.views.base import render_page
from posfleet.fleet.states import WITH_MERCHANT, Status
from posfleet.iam.models import User
from posfleet.platform.clock import now, today
from posfleet.reports.merchant_home import EXPIRY_SOON_DAYS, merchant_home


def terminal_list_url(statuses: frozenset[Status] | None = None) -> str:
    base = reverse("console:terminals")
    if not statuses:
        return base
    return f"{base}?{urlencode({'status': sorted(s.value for s in statuses)}, doseq=True)}"


def home(request: HttpRequest, user: User) -> HttpResponse:
    """The merchant user's home (signed in, GET: ``dashboard`` checked both)."""
    context = {
        "home": merchant_home(user, on=today(), at=now()),
        "soon_days": EXPIRY_SOON_DAYS,
        "in_use_url": terminal_list_url(WITH_MERCHANT),
    }
    return render_page(request, "console/home/home.html", context)
