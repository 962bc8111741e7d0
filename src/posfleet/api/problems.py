"""RFC 9457 problem details: every error the API answers is ``application/problem+json``.

A problem carries ``type``, ``title``, ``status``, ``detail``, ``code`` (stable, the contract),
``instance`` (the request path), ``request_id`` and the domain error's parameters (``allowed``,
``field``, ``errors``...). Domain errors are mapped once, by their own ``status`` and ``code``; nothing
else (tracebacks, SQL, secrets) ever reaches a body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import BadRequest as UnreadableRequest
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext_lazy as _
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import NinjaJSONEncoder
from pydantic import ConfigDict, Field

from posfleet.platform.errors import DomainError, NotFound, ValidationFailed

logger = logging.getLogger("posfleet.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
TYPE_PREFIX = "urn:posfleet:problem:"

# The fields of the problem itself; a domain parameter of the same name is renamed, never overrides.
_CORE = {"type", "title", "status", "detail", "code", "instance", "request_id"}


# ---------------------------------------------------------------------------------------------
# Errors that only the API edge raises (the domain ones live in posfleet.platform.errors).


class NotAuthenticated(DomainError):
    code = "not_authenticated"
    status = 401
    title = _("Authentication is needed: send a bearer API token or sign in.")


class CsrfFailed(DomainError):
    code = "csrf_failed"
    status = 403
    title = _("The CSRF check failed: send the X-CSRFToken header with a session.")


class TokenReadOnly(DomainError):
    code = "permission_denied"
    status = 403
    title = _("This API token is read-only.")


class BadRequest(DomainError):
    code = "bad_request"
    status = 400
    title = _("The request body could not be read as JSON.")


class JsonTooDeep(DomainError):
    code = "json_too_deep"
    status = 400
    title = _("The request body is nested too deeply.")


class MalformedMultipart(DomainError):
    code = "malformed_multipart"
    status = 400
    title = _(
        "The multipart/form-data body could not be read: send it with a boundary in its Content-Type "
        "and parts that use it."
    )


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    status = 413
    title = _("The request body is too large; send fewer items per request.")


class MethodNotAllowed(DomainError):
    code = "method_not_allowed"
    status = 405
    title = _("This method is not allowed here.")


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status = 422
    title = _("This Idempotency-Key was already used for a different request.")


class IdempotencyInProgress(DomainError):
    code = "idempotency_in_progress"
    status = 409
    title = _("A request with this Idempotency-Key is still being processed; retry later.")


class InvalidCursor(ValidationFailed):
    title = _("The cursor is not valid; start again from the first page.")


class InternalError(DomainError):
    code = "internal_error"
    status = 500
    title = _("Something went wrong on our side. The request id identifies it in our logs.")


class Throttled(DomainError):
    code = "throttled"
    status = 429
    title = _("Too many requests; slow down.")


# ---------------------------------------------------------------------------------------------
# The schema (for OpenAPI) and the rendering.


class Problem(Schema):
    """An RFC 9457 problem. Domain parameters (``allowed``, ``field``, ``errors``...) come beside."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:posfleet:problem:not_found"])
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code; part of the API contract.")
    instance: str = Field(description="The path of the request.")
    request_id: str = Field(description="Echoed in the X-Request-ID header; quote it to support.")


def _jsonable(value: Any) -> Any:
    """Parameters as JSON-native values (lazy translations become strings)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def problem_body(request: HttpRequest, error: DomainError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + error.code,
        "title": str(error.title),
        "status": error.status,
        "detail": str(error.detail),
        "code": error.code,
        "instance": request.path,
        "request_id": getattr(request, "request_id", ""),
    }
    for key, value in error.params.items():
        name = f"param_{key}" if key in _CORE else key
        body[name] = _jsonable(value)
    return body


def render_json(data: Any) -> bytes:
    return json.dumps(data, cls=NinjaJSONEncoder, ensure_ascii=False).encode()


def problem_response(request: HttpRequest, error: DomainError) -> HttpResponse:
    response = HttpResponse(
        render_json(problem_body(request, error)), status=error.status, content_type=PROBLEM_CONTENT_TYPE
    )
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="posfleet"'
    return response


# ---------------------------------------------------------------------------------------------
# Exception handlers for the NinjaAPI (registered in api/urls.py).


def handle_domain_error(request: HttpRequest, exc: Any) -> HttpResponse:
    assert isinstance(exc, DomainError)
    return problem_response(request, exc)


# Names of the schema arguments of our operations: not part of what the client sent.
_WRAPPERS = {"body", "filters", "page"}


def _field_errors(errors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        path = loc[2:] if len(loc) > 2 and loc[1] in _WRAPPERS else loc[1:]
        result.append(
            {
                "field": ".".join(path),
                "in": loc[0] if loc else "",
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return result


def handle_validation_error(request: HttpRequest, exc: Any) -> HttpResponse:
    assert isinstance(exc, NinjaValidationError)
    errors = _field_errors(exc.errors)
    fields = sorted({e["field"] for e in errors if e["field"]})
    error = ValidationFailed(
        _("The request is not valid: check %(fields)s.") % {"fields": ", ".join(fields) or "-"},
        errors=errors,
    )
    return problem_response(request, error)


class _Forbidden(DomainError):
    code = "permission_denied"
    status = 403
    title = _("You do not have permission to do this.")


class _HttpStatus(DomainError):
    """An HTTP error without a domain meaning: its status is kept, its text is not echoed."""

    title = _("The request could not be carried out.")

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status
        self.code = f"http_{status}"


def handle_http_error(request: HttpRequest, exc: Any) -> HttpResponse:
    assert isinstance(exc, HttpError)
    status = exc.status_code
    error: DomainError
    if isinstance(exc, AuthenticationError) or status == 401:
        error = NotAuthenticated()
    elif status == 403:
        error = CsrfFailed() if "csrf" in str(exc).lower() else _Forbidden()
    elif status == 400:
        error = BadRequest()
    elif status == 404:
        error = NotFound()
    elif status == 429:
        error = Throttled()
    else:
        error = _HttpStatus(status)
    return problem_response(request, error)


def handle_http404(request: HttpRequest, exc: Any) -> HttpResponse:
    assert isinstance(exc, Http404)
    return problem_response(request, NotFound())


def client_error(exc: Any) -> DomainError | None:
    """The problem of an error that is the client's although no view raised it on purpose: a body
    Django cannot read (multipart without a boundary 400, over the size limit 413, too many fields or
    files 400). None for anything else."""
    if isinstance(exc, MultiPartParserError):
        return MalformedMultipart()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, SuspiciousOperation | UnreadableRequest):
        return _HttpStatus(400)
    return None


def handle_bad_request(request: HttpRequest, exc: Any) -> HttpResponse:
    """A request Django refused before any view could (the root URLconf's handler400 under /api/)."""
    return problem_response(request, client_error(exc) or _HttpStatus(400))


def handle_unexpected(request: HttpRequest, exc: Any) -> HttpResponse:
    """Any other error, wherever it happens under /api/ (ninja's handlers, the edge wrapper, the
    root URLconf's handler500): the client's own (``client_error``) is its 4xx; anything else a 500
    whose traceback goes to the log (redacted there) and whose answer holds the request id only."""
    error = client_error(exc)
    if error is not None:
        return problem_response(request, error)
    logger.error(
        "unhandled error in %s %s (request %s)",
        request.method,
        request.path,
        getattr(request, "request_id", ""),
        exc_info=exc,
    )
    return problem_response(request, InternalError())
