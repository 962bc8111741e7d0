"""What wraps every view under /api/v1/: input no view may see, route misses as problems, and any
error the view or this wrapper raises as a problem (never Django's HTML pages)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from ninja.parser import Parser

from posfleet.api import problems
from posfleet.platform.errors import NotFound, ValidationFailed

NUL = "\x00"


class OnceParser(Parser):
    """Query strings and forms as given: a parameter of one value sent several times reaches its
    schema as the list it is, and is refused there (422), instead of quietly keeping the last value.
    Parameters declared as lists (``status`` of the lists, "repeat for several") take every value."""

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key in data:
            values = data.getlist(key)
            result[key] = values if key in list_fields or len(values) > 1 else values[0]
        return result


# No body of this API nests deeper than a few levels; deeper JSON is refused before anything parses it
# (Python's parser, and any recursive walk over the result, would raise RecursionError).
MAX_JSON_DEPTH = 32


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


def _nests_deeper(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` is JSON whose arrays and objects nest more than ``limit`` levels. A body with
    fewer opening brackets than that cannot, and is not parsed here; one that is not JSON is left to
    the view (400)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    try:
        data = json.loads(body)
    except RecursionError:
        return True
    except ValueError:
        return False
    return isinstance(data, dict | list) and _nests_deeper(data, limit)


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
    """Refuse JSON nested too deep (400), NUL input (422) and bodies over DATA_UPLOAD_MAX_MEMORY_SIZE
    (413); turn ninja's plain-text 405 into a problem (keeping Allow); and answer any error raised
    here or by the view as a problem (an unreadable multipart body 400, anything else 500)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return _guard(view, request, *args, **kwargs)
        except Exception as exc:
            return problems.handle_unexpected(request, exc)

    return wrapped


def _guard(
    view: Callable[..., HttpResponse], request: HttpRequest, *args: Any, **kwargs: Any
) -> HttpResponse:
    try:
        deep = too_deep(request.body)
        field = None if deep else nul_field(request)
    except RequestDataTooBig:
        return problems.problem_response(request, problems.PayloadTooLarge())
    if deep:
        detail = _("The JSON body nests arrays and objects more than %(limit)s levels deep.") % {
            "limit": MAX_JSON_DEPTH
        }
        return problems.problem_response(request, problems.JsonTooDeep(detail))
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
