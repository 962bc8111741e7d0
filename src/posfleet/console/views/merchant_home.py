"""The merchant's home: what a shopkeeper opens the console for (``console:dashboard`` for a merchant
user; provider staff and agents keep the fleet dashboard, ``views/dashboard.py``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from posfleet.console.merchant_home import EXPIRY_SOON_DAYS, merchant_home, terminal_list_url
from posfleet.console.views.base import render_page
from posfleet.fleet.states import WITH_MERCHANT
from posfleet.iam.models import User
from posfleet.platform.clock import now, today


def home(request: HttpRequest, user: User) -> HttpResponse:
    """The merchant user's home (signed in, GET: ``dashboard`` checked both)."""
    context = {
        "home": merchant_home(user, on=today(), at=now()),
        "soon_days": EXPIRY_SOON_DAYS,
        "in_use_url": terminal_list_url(WITH_MERCHANT),
    }
    return render_page(request, "console/home/home.html", context)
