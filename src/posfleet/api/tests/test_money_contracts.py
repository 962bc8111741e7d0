"""/contracts: offered with every money term, accepted by the merchant (fees fall due, the deposit is
collected), the penalty if it ended today; refusals change nothing."""

from __future__ import annotations

import pytest

from posfleet.api.tests.helpers import SN_A, SN_STOCK, assert_problem, new_events
from posfleet.api.tests.money_world import MID_A, MID_A1, money, money_trace
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import Journal
from posfleet.billing.services.contracts import add_months
from posfleet.fleet.states import Status
from posfleet.platform.clock import today
from posfleet.testing.personas import make_terminal

__all__ = ["money"]

SN_NEW = "SN-A-0002"


@pytest.fixture
def new_terminal(money, world):
    return make_terminal(world, SN_NEW, Status.ACTIVE)


def _terms(**change):
    return {
        "terminal": SN_NEW,
        "starts_on": str(today()),
        "term_months": 24,
        "annual_fee_fen": 9900,
        "deposit_fen": 29900,
        "min_term_months": 12,
        "penalty_rule": "remaining_months",
        "penalty_monthly_fen": 5000,
        "penalty_cap_fen": 40000,
        "recovery_fee_fen": 15000,
        "recovery_value_fen": 3000,
        "damage_prices": {"A": 0, "B": 5000, "C": 30000},
        **change,
    }


def test_the_agent_offers_and_the_merchant_accepts(new_terminal, api_as):
    before = money_trace()
    offered = api_as("agent_a").post("/contracts", _terms(), key="offer-1")
    assert offered.status_code == 201, offered.content
    contract = offered.json()
    start = today()
    assert {k: v for k, v in contract.items() if k not in {"id", "created_at"}} == {
        "status": "offered",
        "status_label": "offered",
        "merchant": MID_A,
        "terminal": SN_NEW,
        "plan": "standard",
        "starts_on": str(start),
        "ends_on": str(add_months(start, 24)),
        "term_months": 24,
        "annual_fee_fen": 9900,
        "annual_fee_display": "¥99.00",
        "deposit_fen": 29900,
        "deposit_display": "¥299.00",
        "min_term_months": 12,
        "penalty_rule": "remaining_months",
        "penalty_rule_label": "remaining months × monthly fee",
        "penalty_fixed_fen": 0,
        "penalty_monthly_fen": 5000,
        "penalty_cap_fen": 40000,
        "recovery_fee_fen": 15000,
        "recovery_value_fen": 3000,
        "damage_prices": {"A": 0, "B": 5000, "C": 30000},
        "accepted_at": None,
        "ended_on": None,
        "fees_due": [],
        "fees_outstanding_fen": 0,
        "deposit": None,
        "penalty_if_ended_today_fen": None,
        "penalty_if_ended_today_display": None,
    }
    assert money_trace().journals == before.journals  # an offer moves no money

    merchant = api_as("merchant_a")
    assert merchant.get(f"/contracts/{contract['id']}").json() == contract  # read before signing
    accepted = merchant.post(f"/contracts/{contract['id']}/accept", {}, key="sign-1")
    assert accepted.status_code == 200, accepted.content
    signed = accepted.json()
    assert (signed["status"], signed["accepted_at"] is not None) == ("active", True)
    assert signed["status_label"] == "in force"  # a contract's own word, never a terminal's "active"
    assert signed["fees_due"] == [
        {"period": 1, "due_on": str(start), "amount_fen": 9900, "amount_display": "¥99.00", "charged": False},
        {
            "period": 2,
            "due_on": str(add_months(start, 12)),
            "amount_fen": 9900,
            "amount_display": "¥99.00",
            "charged": False,
        },
    ]
    assert signed["fees_outstanding_fen"] == 19800
    assert (signed["deposit"]["amount_fen"], signed["deposit"]["status"]) == (29900, "held")
    # 12 months short of the minimum term × ¥50.00, capped at ¥400.00.
    assert (signed["penalty_if_ended_today_fen"], signed["penalty_if_ended_today_display"]) == (
        40000,
        "¥400.00",
    )
    assert new_events(before.audit) == [
        (EventType.CONTRACT_OFFERED, "contract", str(contract["id"])),
        (EventType.CONTRACT_ACCEPTED, "contract", str(contract["id"])),
        (EventType.DEPOSIT_COLLECTED, "deposit", str(signed["deposit"]["id"])),
    ]
    assert Journal.objects.filter(reference=f"deposit_collect:{contract['id']}").count() == 1

    # The same key replays the acceptance byte for byte; another key is refused: signed already.
    after = money_trace()
    again = merchant.post(f"/contracts/{contract['id']}/accept", {}, key="sign-1")
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (200, accepted.content, "true")
    assert_problem(merchant.post(f"/contracts/{contract['id']}/accept", {}, key="sign-2"), 409, "conflict")
    assert money_trace() == after


def test_a_terminal_has_one_active_contract(money, api_as):
    offered = api_as("admin").post("/contracts", _terms(terminal=SN_A)).json()
    before = money_trace()
    response = api_as("merchant_a").post(f"/contracts/{offered['id']}/accept", {})
    assert (
        assert_problem(response, 409, "conflict")["detail"]
        == "This terminal already has a contract in force."
    )
    assert money_trace() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"term_months": 18}, "term_months"),
        ({"min_term_months": 36}, "min_term_months"),
        ({"plan": "nope"}, "plan"),
        ({"terminal": SN_STOCK}, "terminal"),  # not bound to a merchant
    ],
)
def test_terms_the_domain_refuses_change_nothing(new_terminal, api_as, change, field):
    before = money_trace()
    response = api_as("admin").post("/contracts", _terms(**change))
    assert assert_problem(response, 422, "validation_error")["field"] == field
    assert money_trace() == before


@pytest.mark.parametrize(
    "change",
    [
        {"deposit_fen": -1},
        {"deposit_fen": 10**19},
        {"recovery_value_fen": -1},
        {"recovery_value_fen": "30.00"},
        {"annual_fee_fen": "99.00"},
        {"term_months": 120},
        {"penalty_rule": "whatever"},
        {"damage_prices": {"D": 100}},
        {"starts_on": "9999-12-31"},
    ],
)
def test_malformed_terms_are_422(new_terminal, api_as, change):
    before = money_trace()
    assert_problem(api_as("admin").post("/contracts", _terms(**change)), 422, "validation_error")
    assert money_trace() == before


def test_a_negative_recovery_value_is_refused_by_name(new_terminal, api_as):
    before = money_trace()
    problem = assert_problem(
        api_as("admin").post("/contracts", _terms(recovery_value_fen=-3000)), 422, "validation_error"
    )
    assert problem["detail"] == "The request is not valid: check recovery_value_fen."
    errors = [(e["field"], e["type"]) for e in problem["errors"]]
    assert errors == [("recovery_value_fen", "greater_than_equal")]
    assert money_trace() == before


def test_a_competitors_plan_is_not_offered(new_terminal, api_as):
    from datetime import date
    from decimal import Decimal

    from posfleet.billing.services.plans import RuleSpec, plan_create
    from posfleet.testing.personas import SYSTEM

    plan_create(
        actor=SYSTEM,
        code="rival",
        name="Rival",
        is_competitor=True,
        effective_from=date(2020, 1, 1),
        rules={"credit": RuleSpec(Decimal("0.005"))},
    )
    before = money_trace()
    response = api_as("admin").post("/contracts", _terms(plan="rival"))
    assert assert_problem(response, 422, "validation_error")["field"] == "plan"
    assert money_trace() == before


def test_contract_filters(money, api_as):
    api = api_as("admin")

    def ids(**params):
        return [c["id"] for c in api.get("/contracts", params).json()["items"]]

    everything = [money.offered_a1.pk, money.contract_b.pk, money.contract_a.pk]  # newest first
    assert ids() == everything
    assert ids(merchant=MID_A1) == [money.offered_a1.pk]
    assert ids(terminal=SN_A.lower()) == [money.contract_a.pk]
    assert ids(status="active") == [money.contract_b.pk, money.contract_a.pk]
    assert ids(status=["offered", "ended"]) == [money.offered_a1.pk]
    assert ids(merchant=MID_A, status="offered") == []
    first = api.get("/contracts", {"limit": 2}).json()
    second = api.get("/contracts", {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [c["id"] for c in first["items"] + second["items"]] == everything
    assert second["next_cursor"] is None
    assert_problem(api.get("/contracts", {"status": "signed"}), 422, "validation_error")
