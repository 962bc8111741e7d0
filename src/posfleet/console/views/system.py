"""Health check, the site root, the 404 page (HTML for people, problem+json for the API) and the
console's 400 page."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from posfleet.platform.errors import NotFound


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})


def home(request: HttpRequest) -> HttpResponse:
    # The console sends anonymous visitors on to the login page itself.
    return HttpResponseRedirect(reverse("console:dashboard"))


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        # Same shape as the API's own problems (api/problems.py), which console may not import.
        problem = {
            "type": f"urn:posfleet:problem:{NotFound.code}",
            "title": str(NotFound.title),
            "status": 404,
            "detail": _("There is nothing at this address."),
            "code": NotFound.code,
            "instance": request.path,
            "request_id": getattr(request, "request_id", ""),
        }
        return JsonResponse(problem, status=404, content_type="application/problem+json")
    return render(request, "console/404.html", status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A request refused before any view could read it (the root URLconf's handler400 outside /api/).
    It may come before the language is chosen, so the browser's language is used here."""
    with translation.override(translation.get_language_from_request(request)):
        if isinstance(exception, MultiPartParserError):
            reason = _(
                "The upload could not be read: the form arrived without the boundary that separates its "
                "parts. Reload the page and choose the file again."
            )
        else:
            reason = _("The request could not be read. Reload the page and try again.")
        return render(request, "console/400.html", {"reason": reason}, status=400)
