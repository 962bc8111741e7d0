"""POST /terminals/{sn}/replacement (换机): step-up, idempotency, and the refusals as problems that
change nothing."""

from __future__ import annotations

import pytest

from posfleet.api.tests.helpers import SN_A, SN_B, SN_STOCK, assert_problem, new_events, trace
from posfleet.audit.models import AuditEvent
from posfleet.billing.models import ServiceContract
from posfleet.fleet.models import Replacement, Terminal
from posfleet.fleet.states import Status
from posfleet.testing.money import signed_contract
from posfleet.testing.personas import make_terminal

NEW = "SN-API-NEW-001"
PATH = f"/terminals/{SN_A}/replacement"


@pytest.fixture
def stock(fleet, world):
    make_terminal(world, NEW, Status.ALLOCATED, agent=world.agent_a)
    return signed_contract(fleet[SN_A], deposit_fen=0)


def test_the_agent_replaces_with_a_fresh_code_and_a_retry_replays(stock, api_as, clock):
    api = api_as("agent_a")
    body = {"new_sn": NEW, "reason": "device_fault", "note": "no signal"}
    got = api.post(PATH, body, key="swap-1", totp=clock.code())
    assert got.status_code == 200, got.content
    out = got.json()
    new = Terminal.objects.get(sn=NEW)
    assert (out["old"]["sn"], out["old"]["status"], out["old"]["status_reason"]) == (
        SN_A,
        "deregistered",
        "replacement",
    )
    assert (out["new"]["sn"], out["new"]["status"], out["new"]["tid"], out["new"]["merchant"]) == (
        NEW,
        "active",
        new.tid,
        "100000000000001",
    )
    assert out["contract_id"] == stock.pk
    assert ServiceContract.objects.get(pk=stock.pk).terminal_id == new.pk
    clock.advance()
    again = api.post(PATH, body, key="swap-1", totp=clock.code())
    assert again.content == got.content
    assert again["Idempotent-Replayed"] == "true"
    assert Replacement.objects.count() == 1


def test_refusals_are_problems_and_change_nothing(stock, api_as, clock, world):
    body = {"new_sn": NEW, "reason": "device_fault"}
    read_only = api_as("agent_a", "read")  # made before the count starts
    before = trace(SN_A)
    since = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    verified = [world.user(name).pk for name in ("merchant_b", "merchant_a", "admin", "admin", "admin")]
    assert_problem(api_as("agent_a").post(PATH, body), 403, "step_up_required")
    assert_problem(api_as("merchant_b").post(PATH, body, totp=clock.code()), 404, "not_found")
    clock.advance()
    assert_problem(api_as("merchant_a").post(PATH, body, totp=clock.code()), 403, "permission_denied")
    clock.advance()
    assert_problem(read_only.post(PATH, body), 403, "permission_denied")
    problem = assert_problem(
        api_as("admin").post(PATH, {**body, "new_sn": SN_STOCK}, totp=clock.code()), 409, "guard_failed"
    )
    assert problem["guard"] == "new_in_agent_stock"
    clock.advance()
    problem = assert_problem(
        api_as("admin").post(PATH, {**body, "reason": "boredom"}, totp=clock.code()), 422, "validation_error"
    )
    assert (problem["field"], problem["allowed"]) == (
        "reason",
        ["device_fault", "damage", "technology_update", "other"],
    )
    clock.advance()
    problem = assert_problem(
        api_as("admin").post(f"/terminals/{SN_B}/replacement", body, totp=clock.code()), 409, "guard_failed"
    )
    assert problem["guard"] == "new_in_agent_stock"  # agent B's terminal, agent A's stock
    after = trace(SN_A)
    assert after.terminal == before.terminal
    assert after.outbox == before.outbox
    # Only the step-up verifications are in the audit chain.
    assert new_events(since) == [("mfa.step_up_succeeded", "user", str(pk)) for pk in verified]
    assert Terminal.objects.get(sn=NEW).status == Status.ALLOCATED
    assert Replacement.objects.count() == 0
