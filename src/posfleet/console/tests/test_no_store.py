"""Responses with personal data or secrets are never kept by a browser, proxy or CDN cache: every answer
to a signed-in request (session or API token) — the console, /accounts/, /admin/, the API — says
``Cache-Control: no-store`` (platform/middleware.py, NoStoreMiddleware). Public answers (the health
check, static files) keep their caching."""

from __future__ import annotations

import pytest
from django.test import Client

from posfleet.api.tests.helpers import new_token

pytestmark = pytest.mark.django_db


def directives(response) -> set[str]:
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part.strip()}


def assert_no_store(response) -> None:
    assert response.status_code < 500, response.content[:200]
    assert {"no-store", "private"} <= directives(response), (
        response.status_code,
        response.get("Cache-Control"),
    )


def test_signed_in_console_and_account_pages_are_not_stored(world, login):
    client = login("merchant_a")
    for path in ("/console/", "/console/terminals/", "/console/inbox/", "/accounts/security/", "/nope"):
        assert_no_store(client.get(path))
    assert_no_store(login("admin").get("/admin/", follow=True))
    assert_no_store(client.get("/console/no/such/page/"))  # a 404 to a signed-in user too


def test_api_answers_to_a_token_or_a_session_are_not_stored(world, login):
    token = new_token(world.user("merchant_a"))
    bearer = Client(headers={"Authorization": f"Bearer {token}"})
    for path in ("/api/v1/me", "/api/v1/terminals", "/api/v1/notifications", "/api/v1/terminals/NOPE"):
        assert_no_store(bearer.get(path))
    assert_no_store(login("admin").get("/api/v1/me"))


def test_an_answer_carrying_a_secret_is_not_stored(world):
    token = new_token(world.user("merchant_a"))
    bearer = Client(headers={"Authorization": f"Bearer {token}"})
    created = bearer.post(
        "/api/v1/webhook-endpoints", {"url": "https://hooks.example.com/in"}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["secret"].startswith("whsec_")
    assert_no_store(created)


def test_signing_in_answers_are_not_stored(world):
    from posfleet.testing.personas import PASSWORD

    client = Client()
    response = client.post("/accounts/login/", {"username": "merchant_a", "password": PASSWORD})
    assert response.status_code == 302
    assert_no_store(response)


def test_public_answers_keep_their_caching(client):
    health = client.get("/healthz")
    assert health.json()["status"] == "ok"
    assert "no-store" not in directives(health)
    static = client.get("/static/console/console.css")
    assert static.status_code == 200
    assert "no-store" not in directives(static)
    assert "max-age" in static.get("Cache-Control", "")
