"""The bench-only URLconf of ``bench/api_reads.py``: the app's URLs unchanged, then two bare views.

- ``/bench/bare/<pk>``: one terminal row by primary key as JSON, no auth, no ninja, through no
  middleware at all (``BareFirstMiddleware``, first in the stack, answers it): the floor of a Django
  view that reads one row on this server and database.
- ``/bench/bare-mw/<pk>``: the same view through the app's whole middleware stack (sessions,
  locale, CSRF, auth, OTP, CSP, htmx, auditlog…), to tell the middleware's share from the API's.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from posfleet.config.urls import handler404  # noqa: F401 (the app's 404 page)
from posfleet.config.urls import urlpatterns as app_urlpatterns

COLUMNS = (
    "id",
    "sn",
    "tid",
    "status",
    "status_reason",
    "status_changed_at",
    "sim_iccid",
    "service_expires_on",
    "firmware_version",
    "last_heartbeat_at",
    "registered_at",
)


def bare(request: HttpRequest, pk: int) -> HttpResponse:
    from posfleet.fleet.models import Terminal

    row = Terminal.objects.filter(pk=pk).values(*COLUMNS).first()
    if row is None:
        return JsonResponse({"detail": "not found"}, status=404)
    return JsonResponse(row)


class BareFirstMiddleware:
    """Answers ``/bench/bare/<pk>`` before the rest of the stack; every other request passes on."""

    PREFIX = "/bench/bare/"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(self.PREFIX):
            return bare(request, int(request.path_info[len(self.PREFIX) :]))
        return self.get_response(request)


urlpatterns = [
    *app_urlpatterns,
    path("bench/bare-mw/<int:pk>", bare, name="bench-bare-mw"),
]
