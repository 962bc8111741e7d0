"""The public verification page of closure certificates (no login): ``/verify/`` asks for the code,
``/verify/<code>/`` shows what the certificate shows and nothing else. An unknown code answers a plain
404 that tells nothing; repeated guessing from one address is slowed down (429)."""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET

from posfleet.closure.documents import certificate_by_code, clean_code
from posfleet.platform.middleware import client_ip

GUESSES_PER_MINUTE = 30
WINDOW_SECONDS = 60
FORM_TEMPLATE = "closure/verify.html"


def verify_url(request: HttpRequest, code: str) -> str:
    """The public address of the certificate with ``code``, as printed on it."""
    return request.build_absolute_uri(reverse("closure_verify", args=[code]))


def _throttled(request: HttpRequest) -> bool:
    """Count this look-up against the caller's address; True once it made more than
    GUESSES_PER_MINUTE in the current minute (the cache's counter expires with the window)."""
    key = f"closure-verify:{client_ip(request) or 'unknown'}"
    if cache.add(key, 1, timeout=WINDOW_SECONDS):
        return False
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=WINDOW_SECONDS)
        return False
    return count > GUESSES_PER_MINUTE


def _page(request: HttpRequest, context: dict[str, object], status: int = 200) -> HttpResponse:
    response = HttpResponse(render_to_string(FORM_TEMPLATE, context, request=request), status=status)
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_GET
def verify_form(request: HttpRequest) -> HttpResponse:
    """``/verify/``: type the code; ``?code=`` goes to the certificate's page."""
    typed = request.GET.get("code", "")
    if typed:
        cleaned = clean_code(typed)
        if cleaned is not None:
            return HttpResponseRedirect(reverse("closure_verify", args=[cleaned]))
        return _page(request, {"state": "invalid", "typed": typed[:40]}, status=200)
    return _page(request, {"state": "form"})


@require_GET
def verify(request: HttpRequest, code: str) -> HttpResponse:
    """``/verify/<code>/``: the certificate's facts, or a plain "not found" (404)."""
    if _throttled(request):
        response = _page(request, {"state": "throttled"}, status=429)
        response["Retry-After"] = str(WINDOW_SECONDS)
        return response
    cleaned = clean_code(code)
    found = certificate_by_code(cleaned, verify_url=verify_url(request, cleaned)) if cleaned else None
    if found is None:
        return _page(request, {"state": "not_found"}, status=404)
    return _page(request, {"state": "found", "certificate": found, "for_pdf": False})
