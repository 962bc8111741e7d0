"""/merchants/{mid}/comparison's totals (each plan's lines add up to its total) and
/plan-change-requests: asked by the merchant, approved by the admin (the plan assigned from the day
asked for), refused for the wrong role (403) and not there for another tenant (404), changing nothing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from posfleet.api.tests.helpers import assert_problem
from posfleet.api.tests.money_world import MID_A, MID_B, money, money_trace  # noqa: F401  (fixture)
from posfleet.billing.models import PlanAssignment
from posfleet.billing.services.plans import RuleSpec, plan_create
from posfleet.platform.clock import today
from posfleet.testing.personas import SYSTEM

RULES = {m: RuleSpec(Decimal("0.0040")) for m in ("credit", "debit", "qr", "nfc", "foreign")}


def test_the_comparison_gives_every_plans_lines_and_total(money, api_as):  # noqa: F811
    plan_create(
        actor=SYSTEM,
        code="rival",
        name="Rival",
        is_competitor=True,
        provider_name="Rival Ltd",
        effective_from=date(2020, 1, 1),
        rules=RULES,
        annual_fee_fen=12_000,
        deposit_fen=50_000,
    )
    body = api_as("merchant_a").get(f"/merchants/{MID_A}/comparison").json()
    assert body["terminals"] == 1
    costs = {p["code"]: p for p in body["plans"]}
    for plan in body["plans"]:
        assert plan["total_fen"] == sum(line["amount_fen"] for line in plan["lines"] if line["counted"])
        assert plan["total_fen"] == sum(plan["monthly_fen"]) + plan["once_total_fen"]
    rival = costs["rival"]
    assert [(x["code"], x["amount_fen"]) for x in rival["lines"]] == [
        ("fees", 0),
        ("service", 6_000),  # ¥120.00 a year, six months
        ("new_deposit", 50_000),  # the contract (2024) is past its minimum term: no penalty
        ("deposit_held", 29_900),
    ]
    assert rival["lines"][3]["counted"] is False
    assert rival["lines"][2]["text"].startswith("Deposit this plan asks for: ¥500.00 for your 1 terminal")
    assert costs["standard"]["service_total_fen"] == 4_950  # the contract's ¥99.00 a year, six months
    assert body["best"] is None
    assert body["verdict"] == "There were no transactions in these months, so there is nothing to compare."


def test_a_plan_change_request_through_the_api(money, api_as):  # noqa: F811
    plan_create(actor=SYSTEM, code="lite", name="Lite", effective_from=date(2020, 1, 1), rules=RULES)
    day = today() + timedelta(days=5)
    asked = api_as("merchant_a").post(
        "/plan-change-requests", {"merchant": MID_A, "to_plan": "lite", "effective_from": str(day)}
    )
    assert asked.status_code == 201, asked.content
    body = asked.json()
    assert (body["status"], body["from_plan"], body["to_plan"], body["requested_by"]) == (
        "requested",
        "standard",
        "lite",
        "merchant_a",
    )
    pk = body["id"]
    assert [r["id"] for r in api_as("agent_a").get("/plan-change-requests").json()["items"]] == [pk]
    assert api_as("merchant_b").get("/plan-change-requests").json()["items"] == []
    before = money_trace()
    assert_problem(api_as("agent_b").get(f"/plan-change-requests/{pk}"), 404, "not_found")
    assert_problem(api_as("merchant_b").post(f"/plan-change-requests/{pk}/withdraw", {}), 404, "not_found")
    assert_problem(
        api_as("merchant_a").post(f"/plan-change-requests/{pk}/approve", {}), 403, "permission_denied"
    )
    assert_problem(api_as("admin").post(f"/plan-change-requests/{pk}/reject", {}), 422, "validation_error")
    assert_problem(
        api_as("merchant_b").post(
            "/plan-change-requests", {"merchant": MID_A, "to_plan": "lite", "effective_from": str(day)}
        ),
        404,
        "not_found",
    )
    assert_problem(
        api_as("merchant_a").post(
            "/plan-change-requests", {"merchant": MID_A, "to_plan": "lite", "effective_from": str(day)}
        ),
        409,
        "plan_change_waiting",
    )
    assert money_trace() == before
    approved = api_as("admin").post(f"/plan-change-requests/{pk}/approve", {}).json()
    assert (approved["status"], approved["applies_from"], approved["decided_by"]) == (
        "approved",
        str(day),
        "admin",
    )
    assert PlanAssignment.objects.get(plan__code="lite").effective_from == day
    assert_problem(
        api_as("admin").post(f"/plan-change-requests/{pk}/reject", {"reason": "late"}),
        409,
        "transition_not_allowed",
    )
    assert api_as("merchant_a").get("/plan-change-requests", {"merchant": MID_B}).json()["items"] == []
