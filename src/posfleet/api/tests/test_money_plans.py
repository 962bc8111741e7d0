"""/rate-plans: the catalogue, new plans and versions from a date, assignments; refusals change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from posfleet.api.tests.helpers import SN_A, SN_B, assert_problem, new_events
from posfleet.api.tests.money_world import MID_A, money, money_trace
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import PlanAssignment
from posfleet.platform.clock import today

__all__ = ["money"]

CREDIT_055 = {"method": "credit", "rate": "0.0055"}
QR_038_CAP = {"method": "qr", "rate": "0.0038", "cap_fen": 2000, "min_fen": 1}


def _later(days: int) -> str:
    return str(today() + timedelta(days=days))


def test_the_standard_plan_reads_as_the_articles_say(money, api_as):
    plan = api_as("merchant_a").get("/rate-plans/standard").json()
    assert (plan["code"], plan["is_competitor"], len(plan["versions"])) == ("standard", False, 1)
    version = plan["versions"][0]
    assert (version["number"], version["effective_from"], version["in_force"]) == (1, "2020-01-01", True)
    assert (version["settlement_cycle"], version["d0_surcharge_rate"]) == ("t1", "0.000500")
    assert version["rules"] == [
        {
            "method": "credit",
            "method_label": "credit card",
            "rate": "0.006000",
            "rate_percent": "0.60%",
            "cap_fen": None,
            "min_fen": None,
        },
        {
            "method": "debit",
            "method_label": "debit card",
            "rate": "0.005500",
            "rate_percent": "0.55%",
            "cap_fen": 2000,
            "min_fen": None,
        },
        {
            "method": "foreign",
            "method_label": "foreign card",
            "rate": "0.012500",
            "rate_percent": "1.25%",
            "cap_fen": None,
            "min_fen": None,
        },
        {
            "method": "nfc",
            "method_label": "contactless / NFC",
            "rate": "0.006000",
            "rate_percent": "0.60%",
            "cap_fen": None,
            "min_fen": None,
        },
        {
            "method": "qr",
            "method_label": "QR / scan (WeChat Pay, Alipay, Huabei, JD Baitiao)",
            "rate": "0.004800",
            "rate_percent": "0.48%",
            "cap_fen": None,
            "min_fen": None,
        },
    ]
    assert_problem(api_as("merchant_a").get("/rate-plans/nope"), 404, "not_found")


def test_the_admin_creates_ours_and_a_competitors_plan(money, api_as, world):
    api = api_as("admin")
    before = money_trace()
    body = {
        "code": "rival-2026",
        "name": "Rival Pay",
        "is_competitor": True,
        "provider_name": "Rival Co.",
        "effective_from": "2026-01-01",
        "rules": [CREDIT_055, QR_038_CAP],
    }
    created = api.post("/rate-plans", body, key="plan-1")
    assert created.status_code == 201, created.content
    plan = created.json()
    assert (plan["code"], plan["is_competitor"], plan["provider_name"]) == ("rival-2026", True, "Rival Co.")
    rules = plan["versions"][0]["rules"]
    assert [(r["method"], r["rate"], r["rate_percent"], r["cap_fen"], r["min_fen"]) for r in rules] == [
        ("credit", "0.005500", "0.55%", None, None),
        ("qr", "0.003800", "0.38%", 2000, 1),
    ]
    assert api.get("/rate-plans/rival-2026").json() == plan
    assert new_events(before.audit) == [(EventType.PLAN_CREATED, "rate_plan", "rival-2026")]
    ours = api.get("/rate-plans", {"competitor": "false"}).json()["items"]
    theirs = api.get("/rate-plans", {"competitor": "true"}).json()["items"]
    assert ([p["code"] for p in ours], [p["code"] for p in theirs]) == (["standard"], ["rival-2026"])
    # Nobody is put on a competitor's plan.
    after = money_trace()
    refused = api.post("/rate-plans/rival-2026/assignments", {"merchant": MID_A, "effective_from": _later(1)})
    assert assert_problem(refused, 422, "validation_error")["field"] == "plan"
    assert money_trace() == after


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"code": "standard"}, "code"),  # exists already
        ({"rules": [{"method": "credit", "rate": "0.5"}]}, "rules"),  # above 10 %
        ({"rules": [{"method": "credit", "rate": "0.006", "cap_fen": 10, "min_fen": 20}]}, "rules"),
    ],
)
def test_plans_the_service_refuses_change_nothing(money, api_as, change, field):
    before = money_trace()
    body = {"code": "new", "name": "New", "effective_from": _later(1), "rules": [CREDIT_055], **change}
    assert (
        assert_problem(api_as("admin").post("/rate-plans", body), 422, "validation_error")["field"] == field
    )
    assert money_trace() == before


@pytest.mark.parametrize(
    "change",
    [
        {"rules": []},
        {"rules": [CREDIT_055, CREDIT_055]},
        {"rules": [{"method": "credit", "rate": "6%"}]},
        {"rules": [{"method": "credit", "rate": 0.006}]},  # a float: never
        {"rules": [{"method": "bitcoin", "rate": "0.006"}]},
        {"rules": [{"method": "credit", "rate": "0.006", "cap_fen": -1}]},
        {"code": "Has Spaces"},
        {"effective_from": "1999-12-31"},
    ],
)
def test_malformed_plans_are_422(money, api_as, change):
    before = money_trace()
    body = {"code": "new", "name": "New", "effective_from": _later(1), "rules": [CREDIT_055], **change}
    assert_problem(api_as("admin").post("/rate-plans", body), 422, "validation_error")
    assert money_trace() == before


def test_a_new_version_applies_from_its_date_and_history_stays(money, api_as):
    api = api_as("admin")
    body = {"effective_from": _later(10), "rules": [CREDIT_055, QR_038_CAP], "note": "cheaper QR"}
    response = api.post("/rate-plans/standard/versions", body, key="v2")
    assert response.status_code == 201, response.content
    versions = response.json()["versions"]
    assert [(v["number"], v["in_force"], v["note"]) for v in versions] == [
        (2, False, "cheaper QR"),
        (1, True, "Source articles' figures"),
    ]
    before = money_trace()
    for effective_from in (_later(10), str(today() - timedelta(days=1))):  # not after v2; back-dated
        refused = api.post("/rate-plans/standard/versions", {**body, "effective_from": effective_from})
        assert assert_problem(refused, 422, "validation_error")["field"] == "effective_from"
    assert_problem(api.post("/rate-plans/nope/versions", body), 404, "not_found")
    assert money_trace() == before


def test_assignments_to_a_merchant_or_one_of_its_terminals(money, api_as):
    api = api_as("admin")
    merchant_wide = api.post(
        "/rate-plans/standard/assignments", {"merchant": MID_A, "effective_from": _later(5)}
    )
    assert merchant_wide.status_code == 201, merchant_wide.content
    assert {k: v for k, v in merchant_wide.json().items() if k not in {"id", "created_at"}} == {
        "plan": "standard",
        "merchant": MID_A,
        "terminal": None,
        "effective_from": _later(5),
        "d0_settlement": False,
    }
    one = api.post(
        "/rate-plans/standard/assignments",
        {"merchant": MID_A, "terminal": SN_A.lower(), "effective_from": _later(5), "d0_settlement": True},
    )
    assert (one.status_code, one.json()["terminal"], one.json()["d0_settlement"]) == (201, SN_A, True)
    before = money_trace()
    cases = [
        ({"merchant": MID_A, "terminal": SN_B, "effective_from": _later(6)}, "terminal"),  # not A's
        ({"merchant": MID_A, "effective_from": _later(5)}, "effective_from"),  # a change that day already
        ({"merchant": MID_A, "effective_from": str(today() - timedelta(days=1))}, "effective_from"),
    ]
    for body, field in cases:
        refused = api.post("/rate-plans/standard/assignments", body)
        assert assert_problem(refused, 422, "validation_error")["field"] == field
    assert_problem(
        api.post(
            "/rate-plans/standard/assignments", {"merchant": "999999999999999", "effective_from": _later(7)}
        ),
        404,
        "not_found",
    )
    assert money_trace() == before
    listed = api.get("/rate-plans/standard/assignments", {"limit": 2}).json()
    assert [a["id"] for a in listed["items"]] == [one.json()["id"], merchant_wide.json()["id"]]
    rest = api.get("/rate-plans/standard/assignments", {"limit": 10, "cursor": listed["next_cursor"]}).json()
    assert (len(rest["items"]), rest["next_cursor"]) == (3, None)  # the three set up by the fixture
    assert PlanAssignment.objects.count() == 5


def test_a_plan_post_replays_byte_identical(money, api_as):
    api = api_as("admin")
    body = {"code": "replayed", "name": "Replayed", "effective_from": _later(1), "rules": [CREDIT_055]}
    first = api.post("/rate-plans", body, key="plan-replay")
    after = money_trace()
    again = api.post("/rate-plans", body, key="plan-replay")
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (201, first.content, "true")
    assert money_trace() == after
    changed = api.post("/rate-plans", {**body, "name": "Other"}, key="plan-replay")
    assert_problem(changed, 422, "idempotency_key_reused")
