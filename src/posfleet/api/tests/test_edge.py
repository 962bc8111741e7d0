"""What the edge of /api/v1/ answers before and around every view: JSON nested too deep (400), a
multipart body that cannot be read (400), and any unexpected error, wherever it happens under /api/,
as a problem+json 500 without internals. Nothing changes on any of these refusals."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from django.test import Client, override_settings

from posfleet.api.tests.helpers import SN_A, assert_problem, trace
from posfleet.api.urls import api
from posfleet.audit.models import AuditEvent
from posfleet.platform.models import OutboxMessage

pytestmark = pytest.mark.django_db

DEEP_ARRAY = "[" * 2000 + "]" * 2000  # the finding's body
DEEP_OBJECT = '{"a":' * 2000 + "1" + "}" * 2000
DEEP_IN_A_FIELD = '{"ids": ' + "[" * 40 + "]" * 40 + "}"


def post_paths() -> list[str]:
    """Every POST operation of the API, its path parameters filled in."""
    schema = api.get_openapi_schema()
    paths = [
        re.sub(r"\{[^}]+\}", "1", path.removeprefix("/api/v1"))
        for path, operations in schema["paths"].items()
        if "post" in operations
    ]
    assert len(paths) >= 10
    return sorted(paths)


def counts() -> tuple[int, int]:
    return AuditEvent.objects.count(), OutboxMessage.objects.count()


def test_json_nested_too_deep_is_a_400_problem_on_every_post_endpoint(world, api_as):
    before = counts()
    for persona in (None, "admin"):
        client = api_as(persona)
        for path in post_paths():
            for raw in (DEEP_ARRAY, DEEP_OBJECT, DEEP_IN_A_FIELD):
                response = client.post(path, None, raw=raw.encode())
                body = assert_problem(response, 400, "json_too_deep")
                assert body["detail"] == "The JSON body nests arrays and objects more than 32 levels deep."
                assert body["instance"] == "/api/v1" + path
    assert counts() == before


def test_json_nested_as_deep_as_allowed_still_reaches_the_view(world, api_as):
    """32 levels pass the edge; the schema then refuses the shape (422), as for any wrong body."""
    raw = '{"ids": ' + "[" * 31 + "]" * 31 + "}"
    response = api_as("merchant_a").post("/notifications/read", None, raw=raw.encode())
    assert_problem(response, 422, "validation_error")


def test_an_unexpected_error_in_the_edge_is_a_problem(fleet, api_as, monkeypatch, caplog):
    from posfleet.api import edge

    def broken(request: Any) -> None:
        raise RuntimeError("SELECT secret FROM somewhere; pf_leaked_token_value")

    monkeypatch.setattr(edge, "nul_field", broken)
    before = trace(SN_A)
    with caplog.at_level(logging.ERROR, logger="posfleet.api"):
        response = api_as(None).post("/tokens", {"name": "x"}, **{"X-Request-ID": "edge-error-0001"})
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "edge-error-0001"
    assert "somewhere" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    (record,) = [r for r in caplog.records if r.name == "posfleet.api"]
    assert record.getMessage() == "unhandled error in POST /api/v1/tokens (request edge-error-0001)"
    assert record.exc_info is not None
    assert trace(SN_A) == before


class Exploding:
    """A middleware that breaks on every request: an error outside any view."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        raise RuntimeError("SELECT secret FROM somewhere")


def test_an_unexpected_error_in_a_middleware_is_a_problem_under_the_api(world, settings, caplog):
    middleware = [*settings.MIDDLEWARE, "posfleet.api.tests.test_edge.Exploding"]
    with override_settings(MIDDLEWARE=middleware), caplog.at_level(logging.ERROR, logger="posfleet.api"):
        client = Client(raise_request_exception=False)
        response = client.get("/api/v1/terminals", headers={"X-Request-ID": "mw-error-000001"})
        page = client.get("/console/")
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "mw-error-000001"
    assert response["X-Request-ID"] == "mw-error-000001"
    assert "somewhere" not in response.content.decode()
    assert any(r.getMessage().endswith("(request mw-error-000001)") for r in caplog.records)
    # The console keeps its HTML error page.
    assert page.status_code == 500
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",  # the finding: no boundary
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=ä",
    ],
)
def test_a_multipart_body_that_cannot_be_read_is_a_400_problem(world, api_as, actor_of, content_type):
    from posfleet.billing.defaults import ensure_standard_plan
    from posfleet.enrollment.models import KycDocument
    from posfleet.testing.applications import walk

    ensure_standard_plan()
    application = walk(world, actor_of, "submitted")
    documents = list(KycDocument.objects.values_list("pk", flat=True))
    before = counts()
    client = api_as("agent_a")
    body = b'--x\r\nContent-Disposition: form-data; name="kind"\r\n\r\nid_card\r\n--x--\r\n'
    response = client.client.post(
        f"/api/v1/applications/{application.number}/documents",
        body,
        content_type=content_type,
        headers=client.headers,
    )
    problem = assert_problem(response, 400, "malformed_multipart")
    assert problem["detail"] == (
        "The multipart/form-data body could not be read: send it with a boundary in its Content-Type "
        "and parts that use it."
    )
    assert list(KycDocument.objects.values_list("pk", flat=True)) == documents
    assert counts() == before
    # The same request without credentials: still the same 400 on every POST endpoint, never a 500.
    for path in post_paths():
        anonymous = Client().post("/api/v1" + path, body, content_type=content_type)
        assert anonymous.status_code in {400, 401}, (path, anonymous.status_code)
        assert anonymous["Content-Type"] == "application/problem+json"


def test_a_multipart_body_with_too_many_fields_is_a_400_problem(world, api_as, actor_of, settings):
    """Django refuses it while ninja reads the form (TooManyFieldsSent): the client's error, not a 500."""
    from posfleet.billing.defaults import ensure_standard_plan
    from posfleet.enrollment.models import KycDocument
    from posfleet.testing.applications import walk

    ensure_standard_plan()
    application = walk(world, actor_of, "submitted")
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    before = counts(), KycDocument.objects.count()
    client = api_as("agent_a")
    fields = {f"f{n}": "x" for n in range(10)} | {"kind": "id_card"}
    response = client.client.post(
        f"/api/v1/applications/{application.number}/documents", fields, headers=client.headers
    )
    body = assert_problem(response, 400, "http_400")
    assert "Traceback" not in response.content.decode()
    assert body["detail"] == "The request could not be carried out."
    assert (counts(), KycDocument.objects.count()) == before


def test_a_one_value_parameter_sent_twice_is_refused_not_cut_to_its_last(fleet, api_as):
    """``?event_id=a&event_id=b`` is not ``event_id=b``: a 422 problem naming the parameter. A list
    parameter ("repeat for several") still takes every value."""
    client = api_as("admin")
    body = assert_problem(
        client.get("/notifications/deliveries?event_id=a&event_id=b"), 422, "validation_error"
    )
    assert "event_id" in str(body)
    assert client.get("/notifications/deliveries?event_id=a").status_code == 200
    several = client.get("/terminals?status=active&status=in_stock")
    assert several.status_code == 200
    assert {t["status"] for t in several.json()["items"]} == {"active", "in_stock"}


def test_a_request_without_a_host_is_a_documented_400_problem(world):
    """An empty Host header is refused before any view, as a problem, and every operation of the
    schema declares that 400 (the fuzzer sends such requests)."""
    response = Client().get("/api/v1/me", headers={"host": "", "accept-language": "en"})
    body = assert_problem(response, 400, "http_400")
    assert body["instance"] == "/api/v1/me"
    schema = api.get_openapi_schema()
    undeclared = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if 400 not in operation["responses"] and "400" not in operation["responses"]
    ]
    assert undeclared == []
