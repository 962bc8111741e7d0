"""Step-up over the API: destructive calls need a fresh TOTP code in X-Step-Up-TOTP, used once."""

from __future__ import annotations

import time

from posfleet.api.tests.helpers import SN_A, SN_A1, Api, assert_problem, new_events, trace
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Terminal
from posfleet.testing.sessions import sign_in
from posfleet.testing.totp import code_at

DEACTIVATE = {"action": "deactivate", "reason": "cost"}


def _deactivate(api: Api, sn: str, totp: str | None):
    return api.post(f"/terminals/{sn}/transitions", DEACTIVATE, totp=totp)


def test_missing_code_is_step_up_required_and_changes_nothing(fleet, api_as, clock):
    api = api_as("agent_a")
    before = trace(SN_A)
    assert_problem(_deactivate(api, SN_A, None), 403, "step_up_required")
    assert_problem(_deactivate(api, SN_A, ""), 403, "step_up_required")
    assert trace(SN_A) == before


def test_wrong_code_is_refused_and_counted(fleet, api_as, world, clock):
    api = api_as("agent_a")
    before = trace(SN_A)
    assert_problem(_deactivate(api, SN_A, clock.wrong_code()), 403, "step_up_failed")
    after = trace(SN_A)
    assert (after.terminal, after.outbox) == (before.terminal, before.outbox)
    assert new_events(before.audit) == [(EventType.STEP_UP_FAILED, "user", str(world.user("agent_a").pk))]


def test_a_stale_code_is_refused(fleet, api_as, clock):
    api = api_as("agent_a")
    before = trace(SN_A)
    two_minutes_ago = code_at(time.time() - 120)
    assert two_minutes_ago != clock.code()
    assert_problem(_deactivate(api, SN_A, two_minutes_ago), 403, "step_up_failed")
    assert trace(SN_A).terminal == before.terminal


def test_a_code_works_once(fleet, api_as, clock):
    api = api_as("agent_a")
    code = clock.code()
    assert _deactivate(api, SN_A, code).status_code == 200
    before = trace(SN_A1)
    assert_problem(_deactivate(api, SN_A1, code), 403, "step_up_failed")
    assert trace(SN_A1).terminal == before.terminal
    clock.advance(31)
    assert _deactivate(api, SN_A1, clock.code()).json()["status"] == "deactivated"


def test_ten_wrong_codes_lock_verification_even_for_the_right_code(fleet, api_as, clock):
    api = api_as("merchant_a")
    before = trace(SN_A)
    codes = [_deactivate(api, SN_A, clock.wrong_code()) for _attempt in range(10)]
    assert [r.json()["code"] for r in codes] == ["step_up_failed"] * 9 + ["step_up_locked"]
    assert_problem(codes[-1], 403, "step_up_locked")
    assert_problem(_deactivate(api, SN_A, clock.code()), 403, "step_up_locked")
    assert Terminal.objects.get(sn=SN_A).status == "active"
    assert trace(SN_A).terminal == before.terminal
    clock.advance(31 * 60)  # the lock lasts 30 minutes
    assert _deactivate(api, SN_A, clock.code()).json()["status"] == "deactivated"


def test_bulk_verifies_the_code_once_for_the_whole_batch(fleet, api_as, world, clock):
    api = api_as("agent_a")
    before = trace(SN_A)
    response = api.post(
        "/terminals/bulk-transitions", {"sns": [SN_A, SN_A1], **DEACTIVATE}, totp=clock.code()
    )
    assert [(r["sn"], r["ok"], r["status"]) for r in response.json()["results"]] == [
        (SN_A, True, "deactivated"),
        (SN_A1, True, "deactivated"),
    ]
    user_id = str(world.user("agent_a").pk)
    assert new_events(before.audit) == [
        (EventType.STEP_UP_SUCCEEDED, "user", user_id),
        (EventType.TERMINAL_DEACTIVATED, "terminal", SN_A),
        (EventType.TERMINAL_DEACTIVATED, "terminal", SN_A1),
    ]


def test_bulk_without_code_refuses_every_item(fleet, api_as, clock):
    api = api_as("agent_a")
    before = trace(SN_A)
    response = api.post("/terminals/bulk-transitions", {"sns": [SN_A, SN_A1], **DEACTIVATE})
    assert response.status_code == 200
    assert [(r["sn"], r["ok"], r["code"]) for r in response.json()["results"]] == [
        (SN_A, False, "step_up_required"),
        (SN_A1, False, "step_up_required"),
    ]
    assert trace(SN_A) == before


def test_actions_without_step_up_never_look_at_the_code(fleet, api_as, clock):
    api = api_as("admin")
    before = trace(SN_A)
    response = api.post(
        f"/terminals/{SN_A}/transitions", {"action": "suspend", "reason": "risk"}, totp=clock.wrong_code()
    )
    assert response.json()["status"] == "suspended"
    assert new_events(before.audit) == [(EventType.TERMINAL_SUSPENDED, "terminal", SN_A)]


def test_token_creation_needs_step_up(world, client, clock):
    sign_in(client, world.user("agent_a"))
    api = Api(client=client)
    before = trace_tokens()
    assert_problem(api.post("/tokens", {"name": "ci"}), 403, "step_up_required")
    assert_problem(api.post("/tokens", {"name": "ci"}, totp=clock.wrong_code()), 403, "step_up_failed")
    assert trace_tokens() == before
    created = api.post("/tokens", {"name": "ci", "scope": "write"}, totp=clock.code())
    assert created.status_code == 201
    assert created.json()["secret"].startswith("pf_")
    assert Api(created.json()["secret"]).get("/me").json()["username"] == "agent_a"


def trace_tokens() -> list[str]:
    from posfleet.iam.models import ApiToken

    return list(ApiToken.objects.order_by("pk").values_list("name", flat=True))
