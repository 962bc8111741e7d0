"""Request ids, NUL rejection and log redaction."""

from __future__ import annotations

import logging

import pytest

from posfleet.platform.logging import RedactFilter, redact


def test_every_response_carries_a_request_id(client, db):
    response = client.get("/healthz")
    assert response.json()["status"] == "ok"
    assert len(response["X-Request-ID"]) == 32
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-12345678"})
    assert echoed["X-Request-ID"] == "abc-12345678"
    forged = client.get("/healthz", headers={"X-Request-ID": "bad id\r\nX-Evil: 1"})
    assert forged["X-Request-ID"] != "bad id\r\nX-Evil: 1"


@pytest.mark.parametrize("path", ["/console/terminals/?q=SN%00X", "/accounts/login/?next=%00"])
def test_nul_in_query_is_refused(client, db, path):
    assert client.get(path).status_code == 400


def test_nul_in_a_form_field_is_refused_before_login_runs(client, db):
    response = client.post("/accounts/login/", {"username": "ad\x00min", "password": "x"})
    assert response.status_code == 400
    from posfleet.audit.models import AuditEvent

    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "leak"),
    [
        ("token pf_abcdefghijklmnopqrstuvwxyz", "pf_abcdefghijklmnop"),
        ("password=hunter2hunter2", "hunter2"),
        ("call 13800138000 now", "13800138000"),
        ("mail zhang.san@example.com", "zhang.san@example.com"),
        ("card 6222021234567890123", "6222021234567890123"),
        ("X-Step-Up-TOTP: 123456 totp=654321", "654321"),
    ],
)
def test_redaction_removes_secrets_and_personal_data(raw, leak):
    assert leak not in redact(raw)


def test_a_crafted_value_cannot_forge_a_second_log_line():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "user %s", ("evil\n2026 CRITICAL forged",), None
    )
    RedactFilter().filter(record)
    assert "\n" not in record.getMessage()
