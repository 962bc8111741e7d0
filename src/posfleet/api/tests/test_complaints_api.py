"""/api/v1/complaints and agent terminations over HTTP (ADR 0023): the merchant ends with its agent,
complains, escalates; the provider takes over and decides — with the permission/tenant matrix and every
refusal changing nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from posfleet.closure.models import ClosureCase, Complaint
from posfleet.closure.tests.conftest import closable
from posfleet.platform.models import OutboxMessage
from posfleet.testing.refusals import assert_nothing_recorded

AT = "agent_termination"
COMPLAINT = {
    "category": "agent",
    "subject": "My agent does not answer",
    "text": "I asked to end with my agent and nobody answers.",
}


@pytest.fixture
def setup(world):
    return closable(world)


def nothing_changes():
    return assert_nothing_recorded(
        Complaint.objects.all(), ClosureCase.objects.all(), OutboxMessage.objects.all()
    )


def test_agent_termination_complaint_escalation_take_over(setup, api_as, clock) -> None:
    sn = setup.terminal.sn
    merchant, agent, reviewer = api_as("merchant_a"), api_as("agent_a"), api_as("reviewer")
    quote = merchant.post("/closures/quote", {"terminals": [sn], "kind": AT})
    assert quote.status_code == 200, quote.content
    codes = [line["code"] for line in quote.json()["lines"]]
    assert codes[0] == "agent_review"
    assert {"agent_clauses", "agent_deposit", "deposit", "penalty"} <= set(codes)
    request = {"terminals": [sn], "reason": "unsatisfied", "quote_digest": quote.json()["digest"], "kind": AT}
    created = merchant.post("/closures", request, totp=clock.code())
    assert created.status_code == 201, created.content
    case = created.json()
    assert (case["kind"], case["status"], case["actions"]) == (AT, "requested", ["withdraw"])
    number = case["number"]
    assert agent.get(f"/closures/{number}").json()["actions"] == ["approve", "reject"]
    assert reviewer.get(f"/closures/{number}").json()["actions"] == []

    raised = merchant.post("/complaints", {**COMPLAINT, "case": number})
    assert raised.status_code == 201, raised.content
    complaint = raised.json()
    assert (complaint["status"], complaint["handler"], complaint["addressed_to"]) == (
        "open",
        "agent",
        "agent",
    )
    assert complaint["case"] == number
    assert complaint["agent"] == "Agent A"
    assert complaint["actions"] == ["escalate", "close"]
    assert complaint["hours_left"] == 72
    ref = complaint["number"]
    assert [c["number"] for c in agent.get("/complaints", {"view": "mine"}).json()["items"]] == [ref]
    assert agent.get(f"/complaints/{ref}").json()["actions"] == ["acknowledge", "resolve", "reject"]

    clock.advance(int(timedelta(days=5, minutes=1).total_seconds()))  # the agent let its clock run out
    assert merchant.get(f"/closures/{number}").json()["review_overdue"] is True
    escalated = merchant.post(f"/complaints/{ref}/escalate", {"note": "five days, nothing"})
    assert escalated.status_code == 200, escalated.content
    assert (escalated.json()["status"], escalated.json()["handler"]) == ("escalated", "provider")
    assert escalated.json()["escalation"] == "merchant"
    with nothing_changes():
        refused = agent.post(f"/complaints/{ref}/acknowledge", {})
        assert refused.status_code == 403
        assert refused.json()["code"] == "permission_denied"
    assert [c["number"] for c in reviewer.get("/complaints", {"view": "escalated"}).json()["items"]] == [ref]

    taken = reviewer.post(f"/complaints/{ref}/take-over", {"note": "agent silent"})
    assert taken.status_code == 200, taken.content
    assert taken.json()["status"] == "acknowledged"
    detail = reviewer.get(f"/closures/{number}").json()
    assert detail["taken_over_at"] is not None
    assert detail["actions"] == ["approve", "reject"]
    assert agent.get(f"/closures/{number}").json()["actions"] == []
    clock.advance()
    approved = reviewer.post(f"/closures/{number}/decision", {"decision": "approve"}, totp=clock.code())
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "running"

    answered = reviewer.post(f"/complaints/{ref}/resolve", {"resolution": "Taken over and approved."})
    assert answered.status_code == 200, answered.content
    assert answered.json()["status"] == "resolved"
    assert [c["number"] for c in merchant.get("/complaints", {"view": "mine"}).json()["items"]] == [ref]
    closed = merchant.post(f"/complaints/{ref}/close", {})
    assert closed.status_code == 200, closed.content
    body = closed.json()
    assert body["status"] == "closed"
    assert [row["event"] for row in body["history"]] == [
        "complaint.raised",
        "complaint.escalated",
        "complaint.acknowledged",
        "complaint.resolved",
        "complaint.closed",
    ]


def test_tenants_roles_and_refusals(setup, api_as) -> None:
    merchant = api_as("merchant_a")
    to_provider = merchant.post("/complaints", {**COMPLAINT, "to": "provider"})
    assert to_provider.status_code == 201, to_provider.content
    ref = to_provider.json()["number"]
    read_only = api_as("merchant_a", "read")
    with nothing_changes():
        for outsider in ("merchant_b", "agent_b", "agent_a1", "agent_a"):  # the agent: not addressed to it
            response = api_as(outsider).get(f"/complaints/{ref}")
            assert response.status_code == 404, outsider
            assert response.json()["code"] == "not_found"
            assert api_as(outsider).post(f"/complaints/{ref}/close", {}).status_code == 404
            assert api_as(outsider).get("/complaints").json()["items"] == []
        assert api_as(None).get("/complaints").status_code == 401
        for staff in ("admin", "reviewer", "warehouse"):
            assert [c["number"] for c in api_as(staff).get("/complaints").json()["items"]] == [ref]
        # Wrong role, read-only token, invalid body, a transition the table does not have.
        assert api_as("warehouse").post(f"/complaints/{ref}/acknowledge", {}).status_code == 403
        assert read_only.post(f"/complaints/{ref}/close", {}).status_code == 403
        bad = merchant.post("/complaints", {**COMPLAINT, "category": "weather"})
        assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")
        assert merchant.post("/complaints", {**COMPLAINT, "to": "police"}).status_code == 422
        assert merchant.get("/complaints", {"view": "everything"}).status_code == 422
        assert api_as("agent_a").post("/complaints", COMPLAINT).status_code == 422  # names no merchant
        reopen = merchant.post(f"/complaints/{ref}/reopen", {"note": "again"})
        assert (reopen.status_code, reopen.json()["code"]) == (409, "transition_not_allowed")
        escalate = merchant.post(f"/complaints/{ref}/escalate", {})
        assert (escalate.status_code, escalate.json()["code"]) == (409, "guard_failed")
        take = api_as("reviewer").post(f"/complaints/{ref}/take-over", {})
        assert (take.status_code, take.json()["code"]) == (409, "guard_failed")
    # The admin records a complaint for a merchant it names.
    recorded = api_as("admin").post("/complaints", {**COMPLAINT, "merchant": setup.world.merchant_a1.mid})
    assert recorded.status_code == 201, recorded.content
    assert recorded.json()["merchant"] == setup.world.merchant_a1.mid
    assert api_as("agent_a").get(f"/complaints/{recorded.json()['number']}").status_code == 200
