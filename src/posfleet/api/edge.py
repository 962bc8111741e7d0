"""What wraps every view under /api/v1/: input no view may see, and route misses as problems."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils.translation import gettext as _

from posfleet.api import problems
from posfleet.platform.errors import NotFound, ValidationFailed

NUL = "\x00"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def nul_field(request: HttpRequest) -> str | None:
    """Where the request carries a NUL character, if anywhere. PostgreSQL cannot store or even
    compare text with NUL in it, so such input is refused once, here, on every database."""
    if NUL in request.path:
        return "path"
    for name, values in request.GET.lists():
        if NUL in name or any(NUL in v for v in values):
            return name.replace(NUL, "")
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and NUL in value:
            return key[5:].replace("_", "-").title()
    body = request.body
    if b"\\u0000" in body or b"\x00" in body:
        try:
            if _has_nul(json.loads(body)):
                return "body"
        except ValueError:
            return None  # not JSON: the view answers 400
    return None


def not_an_object(request: HttpRequest) -> bool:
    """A JSON body that parses but is not an object (``true``, ``[]``, ``"x"``): every body of this
    API is an object, and ninja would otherwise read such a body as ``{}`` — all defaults. Invalid
    JSON is left to the view (400)."""
    if request.method not in {"POST", "PUT", "PATCH"} or "json" not in (request.content_type or ""):
        return False
    body = request.body.lstrip()
    if not body or body.startswith(b"{"):
        return False
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    return problems.problem_response(request, NotFound())


not_found.csrf_exempt = True  # type: ignore[attr-defined]


def guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Refuse NUL input (422) and bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (413), and turn ninja's
    plain-text 405 into a problem (keeping Allow)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            field = nul_field(request)
        except RequestDataTooBig:
            return problems.problem_response(request, problems.PayloadTooLarge())
        if field is not None:
            error = ValidationFailed(_("Text must not contain NUL characters."), field=field)
            return problems.problem_response(request, error)
        if not_an_object(request):
            error = ValidationFailed(_("The request body must be a JSON object."), field="body")
            return problems.problem_response(request, error)
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            problem = problems.problem_response(request, problems.MethodNotAllowed())
            problem["Allow"] = response["Allow"]
            return problem
        return response

    return wrapped
