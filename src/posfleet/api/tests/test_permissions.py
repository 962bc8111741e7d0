"""QUALITY.md "Who may do what", over every endpoint: anonymous 401, someone else's object 404,
wrong role 403, right role 2xx, read-only token 403 on writes. Refusals leave no trace."""

from __future__ import annotations

import pytest

from posfleet.api.tests.helpers import (
    PERSONAS,
    SN_A,
    SN_A1,
    SN_B,
    SN_STOCK,
    assert_problem,
    new_events,
    trace,
)
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Terminal
from posfleet.testing.sessions import sign_in

ALL_SNS = {SN_A, SN_A1, SN_B, SN_STOCK}
MID_A, MID_B, MID_A1 = "100000000000001", "100000000000002", "100000000000003"
ALL_MIDS = {MID_A, MID_B, MID_A1}
ALL_AGENTS = {"AG-A", "AG-A1", "AG-B"}

SEES_TERMINALS = {
    "admin": ALL_SNS,
    "reviewer": ALL_SNS,
    "warehouse": ALL_SNS,
    "agent_a": {SN_A, SN_A1},  # its own and its sub-agent's
    "agent_a1": {SN_A1},  # not its parent's
    "agent_b": {SN_B},
    "merchant_a": {SN_A},
    "merchant_b": {SN_B},
}
SEES_MERCHANTS = {
    "admin": ALL_MIDS,
    "reviewer": ALL_MIDS,
    "warehouse": ALL_MIDS,
    "agent_a": {MID_A, MID_A1},
    "agent_a1": {MID_A1},
    "agent_b": {MID_B},
    "merchant_a": {MID_A},
    "merchant_b": {MID_B},
}
SEES_AGENTS = {
    "admin": ALL_AGENTS,
    "reviewer": ALL_AGENTS,
    "warehouse": ALL_AGENTS,
    "agent_a": {"AG-A", "AG-A1"},
    "agent_a1": {"AG-A1"},
    "agent_b": {"AG-B"},
    "merchant_a": set(),
    "merchant_b": set(),
}

READ_PATHS = [
    "/me",
    "/terminals",
    f"/terminals/{SN_A}",
    f"/terminals/{SN_A}/events",
    "/merchants",
    f"/merchants/{MID_A}",
    f"/merchants/{MID_A}/stores",
    f"/merchants/{MID_A}/events",
    "/agents",
    "/agents/AG-A",
    "/terminal-models",
    "/terminal-models/pax-a920",
    "/tokens",
]


@pytest.mark.parametrize("path", READ_PATHS)
def test_anonymous_reads_are_401(fleet, api_as, path):
    assert_problem(api_as(None).get(path), 401, "not_authenticated")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", f"/terminals/{SN_A}/transitions"),
        ("post", "/terminals/bulk-transitions"),
        ("post", "/tokens"),
        ("delete", "/tokens/1"),
    ],
)
def test_anonymous_writes_are_401_and_change_nothing(fleet, api_as, method, path):
    before = trace(SN_A)
    client = api_as(None)
    if method == "post":
        body = {"action": "deactivate", "reason": "cost", "sns": [SN_A], "name": "x"}
        response = client.post(path, body, key="anon-1")
    else:
        response = client.delete(path)
    assert_problem(response, 401, "not_authenticated")
    assert trace(SN_A) == before


def test_a_wrong_bearer_token_is_401_even_with_a_session(fleet, world, client):
    sign_in(client, world.user("admin"))
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer pf_not-a-real-token"})
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="posfleet"'


@pytest.mark.parametrize("persona", PERSONAS)
def test_terminal_reads_are_scoped(fleet, api_as, persona):
    api = api_as(persona)
    listed = api.get("/terminals")
    assert listed.status_code == 200
    assert {t["sn"] for t in listed.json()["items"]} == SEES_TERMINALS[persona]
    for sn in sorted(ALL_SNS):
        detail, events = api.get(f"/terminals/{sn}"), api.get(f"/terminals/{sn}/events")
        if sn in SEES_TERMINALS[persona]:
            assert (detail.status_code, detail.json()["sn"]) == (200, sn)
            assert events.status_code == 200
            assert {e["subject_id"] for e in events.json()["items"]} == {sn}
        else:
            assert_problem(detail, 404, "not_found")
            assert_problem(events, 404, "not_found")


@pytest.mark.parametrize("persona", PERSONAS)
def test_merchant_reads_are_scoped(fleet, api_as, persona):
    api = api_as(persona)
    listed = api.get("/merchants")
    assert listed.status_code == 200
    assert {m["mid"] for m in listed.json()["items"]} == SEES_MERCHANTS[persona]
    for mid in sorted(ALL_MIDS):
        responses = [api.get(f"/merchants/{mid}{suffix}") for suffix in ("", "/stores", "/events")]
        if mid in SEES_MERCHANTS[persona]:
            assert [r.status_code for r in responses] == [200, 200, 200]
            assert responses[0].json()["mid"] == mid
        else:
            for response in responses:
                assert_problem(response, 404, "not_found")


@pytest.mark.parametrize("persona", PERSONAS)
def test_agent_reads_are_scoped(fleet, api_as, persona):
    api = api_as(persona)
    listed = api.get("/agents")
    assert listed.status_code == 200
    assert {a["code"] for a in listed.json()["items"]} == SEES_AGENTS[persona]
    for code in sorted(ALL_AGENTS):
        response = api.get(f"/agents/{code}")
        if code in SEES_AGENTS[persona]:
            assert (response.status_code, response.json()["code"]) == (200, code)
        else:
            assert_problem(response, 404, "not_found")


@pytest.mark.parametrize("persona", PERSONAS)
def test_everyone_signed_in_reads_the_catalogue_and_themselves(fleet, api_as, persona):
    api = api_as(persona)
    models = api.get("/terminal-models")
    assert [m["code"] for m in models.json()["items"]] == ["pax-a920"]
    assert api.get("/terminal-models/pax-a920").json()["maker"] == "PAX"
    assert_problem(api.get("/terminal-models/nope"), 404, "not_found")
    me = api.get("/me").json()
    assert (me["username"], me["auth"], me["read_only"]) == (persona, "token", False)


# ---------------------------------------------------------------------------------------------
# Writes: (persona, sn, action, reason, params) -> (status, code). Refusals are sent without a TOTP
# code: the service refuses on scope and role before it asks for step-up, and nothing is written.

DEACTIVATE = ("deactivate", "cost", {})
ALLOCATE = ("allocate", "", {"agent_code": "AG-A"})
SUSPEND = ("suspend", "risk", {})

WRITE_CASES = [
    # deactivate (destructive: needs step-up): admin, the terminal's agent (or its parent), its merchant
    ("admin", SN_A, DEACTIVATE, 200, None),
    ("agent_a", SN_A, DEACTIVATE, 200, None),
    ("agent_a", SN_A1, DEACTIVATE, 200, None),
    ("agent_a1", SN_A1, DEACTIVATE, 200, None),
    ("merchant_a", SN_A, DEACTIVATE, 200, None),
    ("reviewer", SN_A, DEACTIVATE, 403, "permission_denied"),
    ("warehouse", SN_A, DEACTIVATE, 403, "permission_denied"),
    ("agent_a1", SN_A, DEACTIVATE, 404, "not_found"),
    ("agent_b", SN_A, DEACTIVATE, 404, "not_found"),
    ("merchant_b", SN_A, DEACTIVATE, 404, "not_found"),
    ("merchant_a", SN_A1, DEACTIVATE, 404, "not_found"),
    # allocate: stock keepers only
    ("admin", SN_STOCK, ALLOCATE, 200, None),
    ("warehouse", SN_STOCK, ALLOCATE, 200, None),
    ("reviewer", SN_STOCK, ALLOCATE, 403, "permission_denied"),
    ("agent_a", SN_STOCK, ALLOCATE, 404, "not_found"),
    ("merchant_a", SN_STOCK, ALLOCATE, 404, "not_found"),
    ("merchant_a", SN_A, ALLOCATE, 403, "permission_denied"),
    # suspend: admin only
    ("admin", SN_A, SUSPEND, 200, None),
    ("agent_a", SN_A, SUSPEND, 403, "permission_denied"),
    ("merchant_a", SN_A, SUSPEND, 403, "permission_denied"),
    ("agent_b", SN_A, SUSPEND, 404, "not_found"),
]

TARGET = {"deactivate": "deactivated", "allocate": "allocated", "suspend": "suspended"}


@pytest.mark.parametrize(
    ("persona", "sn", "command", "status", "code"),
    WRITE_CASES,
    ids=[f"{c[0]}-{c[2][0]}-{c[1]}" for c in WRITE_CASES],
)
def test_transition_matrix(fleet, api_as, clock, persona, sn, command, status, code):
    action, reason, params = command
    api = api_as(persona)
    before = trace(sn)
    body = {"action": action, "reason": reason, "params": params}
    totp = clock.code() if status == 200 and action == "deactivate" else None
    response = api.post(f"/terminals/{sn}/transitions", body, key=f"k-{persona}", totp=totp)
    if status == 200:
        assert response.status_code == 200, response.content
        assert response.json()["status"] == TARGET[action]
        assert Terminal.objects.get(sn=sn).status == TARGET[action]
        assert new_events(before.audit)[-1] == (f"terminal.{TARGET[action]}", "terminal", sn)
    else:
        assert_problem(response, status, code)
        assert trace(sn) == before


@pytest.mark.parametrize("persona", ["admin", "agent_a", "merchant_a"])
def test_read_only_tokens_may_not_write(fleet, api_as, clock, persona):
    api = api_as(persona, scope="read")
    assert api.get(f"/terminals/{SN_A}").json()["allowed_actions"] == []
    before = trace(SN_A)
    code = clock.code()
    refusals = [
        api.post(f"/terminals/{SN_A}/transitions", {"action": "deactivate", "reason": "cost"}, totp=code),
        api.post(
            "/terminals/bulk-transitions",
            {"sns": [SN_A], "action": "deactivate", "reason": "cost"},
            totp=code,
        ),
        api.post("/tokens", {"name": "more"}, totp=code),
        api.delete("/tokens/1"),
    ]
    for response in refusals:
        body = assert_problem(response, 403, "permission_denied")
        assert body["detail"] == "This API token is read-only."
    assert trace(SN_A) == before  # not even a step-up row: the TOTP code was never looked at


def test_refusal_with_a_valid_code_spends_it_but_changes_nothing_else(fleet, api_as, world, clock):
    api = api_as("agent_b")
    before = trace(SN_A)
    response = api.post(
        f"/terminals/{SN_A}/transitions", {"action": "deactivate", "reason": "cost"}, totp=clock.code()
    )
    assert_problem(response, 404, "not_found")
    after = trace(SN_A)
    assert (after.terminal, after.outbox) == (before.terminal, before.outbox)
    user_id = str(world.user("agent_b").pk)
    assert new_events(before.audit) == [(EventType.STEP_UP_SUCCEEDED, "user", user_id)]


def test_bulk_reports_others_terminals_as_not_found(fleet, api_as, clock):
    api = api_as("agent_a")
    before_b = trace(SN_B)
    response = api.post(
        "/terminals/bulk-transitions",
        {"sns": [SN_A, SN_B, SN_A1], "action": "deactivate", "reason": "cost"},
        totp=clock.code(),
    )
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"sn": SN_A, "ok": True, "status": "deactivated", "code": None, "detail": None},
            {"sn": SN_B, "ok": False, "status": None, "code": "not_found", "detail": "Not found."},
            {"sn": SN_A1, "ok": True, "status": "deactivated", "code": None, "detail": None},
        ],
        "succeeded": 2,
        "failed": 1,
    }
    assert trace(SN_B).terminal == before_b.terminal


@pytest.mark.parametrize("persona", ["reviewer", "warehouse", "merchant_b"])
def test_bulk_by_a_wrong_role_or_tenant_changes_nothing(fleet, api_as, persona):
    api = api_as(persona)
    before = trace(SN_A)
    response = api.post("/terminals/bulk-transitions", {"sns": [SN_A], "action": "suspend", "reason": "risk"})
    expected = "not_found" if persona == "merchant_b" else "permission_denied"
    assert [(r["ok"], r["code"]) for r in response.json()["results"]] == [(False, expected)]
    assert trace(SN_A) == before
