"""The OpenAPI schema: served, complete, and equal to the reviewed snapshot in docs/api/."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management import CommandError, call_command

from posfleet.api.openapi import SNAPSHOT, live_text, snapshot_text


def test_the_schema_matches_the_reviewed_snapshot():
    live, committed = live_text(), snapshot_text()
    assert live == committed, (
        f"The API's OpenAPI schema changed and {SNAPSHOT} was not updated. Review the change, then run "
        "`make openapi` and commit docs/api/openapi.json with it."
    )


def test_the_snapshot_is_pretty_sorted_json_with_a_final_newline():
    text = snapshot_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_the_schema_and_the_docs_are_served_offline(client):
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert json.loads(served.content) == json.loads(live_text())
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    # Nothing fetched from elsewhere: every script, style sheet and link is one of this server's paths
    # (not a word search for "cdn": the page's random CSRF token may spell it).
    fetched = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html)
    assert fetched
    assert [url for url in fetched if not url.startswith("/") or url.startswith("//")] == []
    for asset in ("swagger-ui-bundle.js", "swagger-ui-init.js", "swagger-ui.css"):
        assert client.get(f"/static/ninja/{asset}").status_code == 200


# Downloads whose content type is the file's own.
BINARY = {
    "/api/v1/applications/{number}/documents/{document_id}": ["application/pdf", "image/jpeg", "image/png"],
    "/api/v1/backups/{backup_id}/download": ["application/zip"],
    "/api/v1/closures/{number}/certificate.html": ["text/html"],
    "/api/v1/closures/{number}/statement.html": ["text/html"],
}


def test_every_operation_declares_its_errors_as_problems():
    schema = json.loads(live_text())
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]
    # 101 + the six of /plan-change-requests + the two of /reports + the review guide + /me/home (issue 14)
    assert len(operations) == 111
    for path, method, op in operations:
        codes = set(op["responses"])
        assert "401" in codes, (method, path)
        # The device channel is the devices' own: their credential only (never a token or a session).
        expected = (
            [{"DeviceAuth": []}]
            if path.startswith("/api/v1/device/")
            else [{"TokenAuth": []}, {"SessionAuth": []}]
        )
        assert op["security"] == expected, (method, path)
        for code, response in op["responses"].items():
            ok = BINARY.get(path, ["application/pdf"] if path.endswith(".pdf") else ["application/json"])
            kinds = ["application/problem+json"] if int(code) >= 400 else ok
            assert list(response["content"]) == kinds, (method, path, code)
        # The device channel answers with the device's own rules: an ack is idempotent by itself.
        if method == "post" and not path.startswith("/api/v1/device/"):
            assert {"400", "403", "409", "422"} <= codes, (method, path)
            headers = {p["name"] for p in op["parameters"] if p["in"] == "header"}
            assert "Idempotency-Key" in headers, (method, path)
            # X-Step-Up-TOTP only where the operation can be destructive (not on creating a rate plan).
            assert headers <= {"Idempotency-Key", "X-Step-Up-TOTP"}, (method, path)


def test_the_command_checks_and_writes(tmp_path, capsys):
    target = tmp_path / "openapi.json"
    target.write_text('{"old": true}\n', encoding="utf-8")
    with pytest.raises(CommandError, match="make openapi"):
        call_command("openapi", "--check", "--path", str(target))
    out = capsys.readouterr().out
    assert '-{"old": true}' in out
    assert out.startswith("---")
    call_command("openapi", "--write", "--path", str(target))
    assert target.read_text(encoding="utf-8") == live_text()
    call_command("openapi", "--check", "--path", str(target))
