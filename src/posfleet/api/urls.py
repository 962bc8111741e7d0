"""The REST API root (/api/v1/): auth, error mapping (RFC 9457), routers of each context.

Mounted by posfleet.config.urls as ``path("api/v1/", api.urls)``.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import URLPattern, re_path
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import OpenAPISchema

from posfleet.api import problems
from posfleet.api.auth import AUTH
from posfleet.api.edge import OnceParser, guarded, not_found
from posfleet.api.routers import (
    applications,
    backups,
    closures,
    complaints,
    contracts,
    deposits,
    devices,
    enrollment,
    ledger,
    me,
    notifications,
    parties,
    plan_changes,
    plans,
    reports,
    settlements,
    statements,
    terminals,
    tokens,
    transactions,
)
from posfleet.platform.errors import DomainError

DESCRIPTION = """\
Back office API of posfleet: terminals, their life, applications for terminals (KYC, review,
fulfilment), merchants, agents, API tokens, and money (rate plans, service contracts, deposits,
transactions, settlement, statements, the ledger).

- **Authentication**: `Authorization: Bearer pf_...` (an API token, read-only or read-write) or the
  console's session cookie (unsafe methods then need the `X-CSRFToken` header).
- **Errors** are RFC 9457 `application/problem+json` with a stable `code`
  (`not_authenticated`, `not_found`, `permission_denied`, `step_up_required`, `step_up_failed`,
  `step_up_locked`, `transition_not_allowed`, `guard_failed`, `validation_error`, `conflict`,
  `idempotency_key_reused`, `idempotency_in_progress`, `deposit_already_refunded`...), the request
  path in `instance` and the `request_id` (also in the `X-Request-ID` header).
- **Step-up**: destructive operations need a fresh TOTP code in `X-Step-Up-TOTP`; a code works once.
- **Idempotency**: every POST accepts `Idempotency-Key`; a retry with the same key and body replays
  the first answer byte for byte (header `Idempotent-Replayed: true`), a different body answers 422.
- **Lists** are cursor-paginated: pass `next_cursor` back as `cursor` until it is null.
- **Money** is integer fen (分) in fields named `*_fen`, with a `*_display` text (`¥1,234.56`) beside
  the ones people read; rates are decimal strings (`"0.006000"` is 0.60 %), never binary floats.
"""


class PosfleetAPI(NinjaAPI):
    @property
    def urls(self) -> tuple[list[Any], str, str]:
        patterns, app_name, namespace = super().urls
        result: list[Any] = []
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                # The root only serves to reverse the API's path; it answers a problem 404 like a miss.
                view = not_found if pattern.name == "api-root" else guarded(pattern.callback)
                pattern = URLPattern(pattern.pattern, view, pattern.default_args, pattern.name)
            result.append(pattern)
        # Every other path under /api/v1/ is a problem 404 too (not the console's HTML page).
        result.append(re_path(r"^.*$", not_found, name="api-miss"))
        return result, app_name, namespace

    def get_openapi_operation_id(self, operation: Any) -> str:
        return str(operation.view_func.__name__)

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: Any = None) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema["paths"].values():
            for operation in operations.values():
                # Any operation answers 400 to a request Django cannot take as addressed to this
                # server (an empty or foreign Host header), before its view: a problem like the rest.
                operation.setdefault("responses", {}).setdefault(
                    400,
                    {
                        "description": "Bad Request",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    },
                )
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        response["content"] = {problems.PROBLEM_CONTENT_TYPE: content["application/json"]}
        return schema


api = PosfleetAPI(
    title="posfleet API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=AUTH,
    parser=OnceParser(),
)

api.add_exception_handler(DomainError, problems.handle_domain_error)
api.add_exception_handler(NinjaValidationError, problems.handle_validation_error)
api.add_exception_handler(HttpError, problems.handle_http_error)
api.add_exception_handler(Http404, problems.handle_http404)
api.add_exception_handler(Exception, problems.handle_unexpected)

api.add_router("", me.router)
api.add_router("", terminals.router)
api.add_router("", devices.router)
api.add_router("", devices.device_router)  # the smart terminals' own channel (their credential only)
api.add_router("", parties.router)
api.add_router("", tokens.router)
# Money (issue 3)
api.add_router("", plans.router)
api.add_router("", contracts.router)
api.add_router("", deposits.router)
api.add_router("", ledger.router)
api.add_router("", transactions.router)
api.add_router("", settlements.router)
api.add_router("", statements.router)
api.add_router("", plan_changes.router)  # plan change requests (issue 14, ADR 0027)
# Notifications (issue 4)
api.add_router("", notifications.router)
api.add_router("", enrollment.router)
# Applications (issue 4)
api.add_router("", applications.router)
# Data backups (closure)
api.add_router("", backups.router)
api.add_router("", closures.router)
api.add_router("", complaints.router)  # complaints and the provider taking over (ADR 0023)
# Reports (ADR 0028)
api.add_router("", reports.router)
