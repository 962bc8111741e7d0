"""Gives every request an id (echoed in ``X-Request-ID``) and a trustworthy source address; keeps the
answers to signed-in requests out of every cache; refuses NUL characters."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.cache import add_never_cache_headers

from posfleet.platform.context import current_request_id

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_ip(request: HttpRequest) -> str | None:
    # Only REMOTE_ADDR: X-Forwarded-For is set by clients and cannot be trusted without a known proxy.
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


def signed_in(request: HttpRequest) -> bool:
    """Whether the request came with credentials: an ``Authorization`` header (an API token), an API
    actor, or a signed-in session user."""
    if "HTTP_AUTHORIZATION" in request.META or getattr(request, "auth", None) is not None:
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


class NoStoreMiddleware:
    """``Cache-Control: no-store, private`` (with ``no-cache, must-revalidate, max-age=0``) on every
    answer to a signed-in request: console and account pages, /admin/ and API answers carry personal
    data, and API answers may carry a token or a signing secret; no browser, proxy or CDN may keep
    them. Anonymous answers (the health check, the login page's own rules) are left as they are, and
    static files never get here (WhiteNoise answers them first)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if signed_in(request):
            add_never_cache_headers(response)
        return response


class RejectNulMiddleware:
    """Refuse a request whose path, query or form fields hold a NUL character (PostgreSQL cannot store
    one, and no legitimate value has it) with a plain 400 before any view runs. Uploaded files are not
    inspected. The API answers the same case itself as problem+json (api/edge.py)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/") and self._has_nul(request):
            return HttpResponseBadRequest("The request holds a NUL character.", content_type="text/plain")
        return self.get_response(request)

    @staticmethod
    def _has_nul(request: HttpRequest) -> bool:
        if "\x00" in request.path:
            return True
        for values in request.GET.lists():
            if any("\x00" in v for v in values[1]) or "\x00" in values[0]:
                return True
        if request.method == "POST" and request.content_type in {
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        }:
            for key, vals in request.POST.lists():
                if "\x00" in key or any("\x00" in v for v in vals):
                    return True
        return False
