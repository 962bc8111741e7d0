"""Schemathesis over the whole OpenAPI schema (QUALITY.md "Bad input"): for anonymous callers, an
admin and another tenant, every generated request gets a declared status, a body that matches the
schema, problem+json for every error, and never a 5xx. ``-m long`` runs it for every persona, longer."""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from posfleet.api.openapi import live_text
from posfleet.api.tests.helpers import PERSONAS, new_token

pytestmark = pytest.mark.fuzz

SCHEMA = schemathesis.openapi.from_dict(json.loads(live_text()))
SCHEMA.config.update(base_url="http://testserver")
SCHEMA.app = get_wsgi_application()  # requests go through the whole Django stack, in process
FUZZ = settings(
    max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate]
)
LONG = settings(
    max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate]
)


@pytest.fixture
def app(fleet):
    """The real WSGI stack (middleware included). Django's test client keeps the test's database
    connection open across requests; the bare handler would close it, so do the same here."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield SCHEMA.app
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _headers(response) -> dict[str, str]:
    return {k.lower(): (v[0] if isinstance(v, list) else v) for k, v in response.headers.items()}


def _call(case, app, token: str | None) -> None:
    # Generated credentials out; the persona's real token in, as an explicit header.
    case.headers = {
        k: v for k, v in (case.headers or {}).items() if k.lower() not in {"authorization", "cookie"}
    }
    case.cookies = {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Uncompressed answers: schemathesis's WSGI transport does not decode brotli or gzip (the API's
    # compression has its own tests, console/tests/test_compression.py).
    headers["Accept-Encoding"] = "identity"
    # Random cursors, keys and codes are schema-valid strings that the API rightly refuses (422, 404):
    # the "schema-valid data must be accepted" check does not apply to them.
    response = case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
    assert response.status_code < 500
    if response.status_code >= 400:
        assert _headers(response)["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == response.status_code
        assert "Traceback" not in response.text


@pytest.mark.parametrize("persona", [None, "admin", "agent_b"])
@SCHEMA.parametrize()
@FUZZ
def test_fuzz(case, app, world, persona):
    _call(case, app, new_token(world.user(persona)) if persona else None)


@pytest.fixture
def tokens_of_everyone(world, request):
    if "long" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long: run with -m long")
    return [None, *(new_token(world.user(persona)) for persona in PERSONAS)]


@pytest.mark.long
@SCHEMA.parametrize()
@LONG
def test_fuzz_long(case, app, tokens_of_everyone):
    for token in tokens_of_everyone:
        _call(case, app, token)
