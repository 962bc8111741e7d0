"""/api/v1/closures over HTTP: quote, request with step-up, the stale quote, another tenant's case,
maker-checker, and every refusal changing nothing."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from posfleet.closure.models import CaseTerminal, ClosureCase
from posfleet.closure.tests.conftest import closable
from posfleet.fleet.models import Terminal
from posfleet.platform.models import OutboxMessage
from posfleet.testing.refusals import assert_nothing_recorded
from posfleet.testing.sessions import sign_in
from posfleet.testing.totp import code_at, enrol


def post(client: Client, path: str, body: dict, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def setup(world):  # type: ignore[no-untyped-def]
    for name in ("merchant_a", "reviewer", "merchant_b", "agent_b"):
        enrol(world.users[name])
    return closable(world)


def test_merchant_quotes_requests_and_a_reviewer_approves(setup) -> None:
    world, sn = setup.world, setup.terminal.sn
    merchant = sign_in(Client(), world.users["merchant_a"])
    quote = post(merchant, "/api/v1/closures/quote", {"terminals": [sn]})
    assert quote.status_code == 200, quote.content
    body = quote.json()
    assert {line["code"] for line in body["lines"]} >= {"penalty", "fees_due", "deposit", "recovery_fee"}
    assert body["expected_refund_fen"] == 14_000
    request = {"terminals": [sn], "reason": "shop_closed", "quote_digest": body["digest"]}
    without = post(merchant, "/api/v1/closures", request)
    assert without.status_code == 403
    assert without.json()["code"] == "step_up_required"
    created = post(merchant, "/api/v1/closures", request, HTTP_X_STEP_UP_TOTP=code_at())
    assert created.status_code == 201, created.content
    number = created.json()["number"]
    assert created.json()["status"] == "requested"
    assert created.json()["actions"] == ["withdraw"]
    assert Terminal.objects.get(sn=sn).status == "deactivated"

    reviewer = sign_in(Client(), world.users["reviewer"])
    assert reviewer.get("/api/v1/closures?view=review").json()["items"][0]["number"] == number
    approved = post(
        reviewer,
        f"/api/v1/closures/{number}/decision",
        {"decision": "approve"},
        HTTP_X_STEP_UP_TOTP=code_at(),
    )
    assert approved.status_code == 200, approved.content
    steps = {step["name"]: step["state"] for step in approved.json()["steps"]}
    assert steps["contract"] == "pending"  # the worker runs it


def test_refusals_change_nothing(setup) -> None:
    world, sn = setup.world, setup.terminal.sn
    merchant = sign_in(Client(), world.users["merchant_a"])
    digest = post(merchant, "/api/v1/closures/quote", {"terminals": [sn]}).json()["digest"]
    outsider = sign_in(Client(), world.users["merchant_b"])
    with assert_nothing_recorded(
        Terminal.objects.all(), ClosureCase.objects.all(), OutboxMessage.objects.all()
    ):
        # Another tenant's terminal: as if it did not exist.
        other = post(outsider, "/api/v1/closures/quote", {"terminals": [sn]})
        assert other.status_code == 404
        # A stale quote: the new one comes back.
        stale = post(
            merchant,
            "/api/v1/closures",
            {"terminals": [sn], "reason": "cost", "quote_digest": "0" * 64},
        )
        assert stale.status_code == 409
        assert stale.json()["code"] == "quote_stale"
        assert "digest" in stale.json()["quote"]
        # An unknown reason, and "other" without a note.
        bad = post(
            merchant,
            "/api/v1/closures",
            {"terminals": [sn], "reason": "bored", "quote_digest": digest},
        )
        assert bad.status_code == 422
        assert bad.json()["code"] == "validation_error"
    created = post(
        merchant,
        "/api/v1/closures",
        {"terminals": [sn], "reason": "cost", "quote_digest": digest},
        HTTP_X_STEP_UP_TOTP=code_at(),
    )
    assert created.status_code == 201, created.content
    number = created.json()["number"]
    with assert_nothing_recorded(
        ClosureCase.objects.all(), CaseTerminal.objects.all(), OutboxMessage.objects.all()
    ):
        # A second case for the same terminal.
        again = post(merchant, "/api/v1/closures/quote", {"terminals": [sn]})
        assert again.status_code == 409
        assert again.json()["code"] == "closure_already_requested"
        # Another tenant's case is not found; a merchant cannot decide its own case.
        assert outsider.get(f"/api/v1/closures/{number}").status_code == 404
        own = post(merchant, f"/api/v1/closures/{number}/decision", {"decision": "reject", "note": "x"})
        assert own.status_code == 403
