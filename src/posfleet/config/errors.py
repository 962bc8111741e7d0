"""The root URLconf's error pages for errors no view answered (a middleware raised, or Django refused
the request before any view): under /api/ a problem+json like every other API error, elsewhere the
console's pages."""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from posfleet.api import problems
from posfleet.console import views as console_views


def _api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _api(request):
        return problems.handle_bad_request(request, exception)
    return console_views.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _api(request):
        error = sys.exc_info()[1]
        return problems.handle_unexpected(request, error or RuntimeError("server error"))
    return defaults.server_error(request)
