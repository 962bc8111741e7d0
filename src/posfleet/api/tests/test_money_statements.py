"""/merchants/{mid}/statements (JSON and PDF) and /merchants/{mid}/comparison: in scope, the figures of
the settled takings, and the plan that would have cost less."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from posfleet.api.tests.helpers import PERSONAS, assert_problem
from posfleet.api.tests.money_world import MID_A, MID_B, money_trace
from posfleet.api.tests.takings import item, takings, yesterday
from posfleet.billing.services.plans import RuleSpec, plan_create
from posfleet.billing.statements import Month
from posfleet.billing.verify import verify_ledger
from posfleet.platform.clock import today
from posfleet.testing.personas import SYSTEM

__all__ = ["takings"]

SEES_A = {"admin", "reviewer", "warehouse", "agent_a", "merchant_a"}


@pytest.fixture(autouse=True)
def _conserved(db):
    yield
    report = verify_ledger()
    assert report.ok, report.problems


@pytest.fixture
def settled(takings, api_as):
    items = [
        item(takings.terminal_a, 1, 100_000),  # credit: fee 600
        item(takings.terminal_a, 2, 50_000, "qr"),  # QR: fee 240
    ]
    admin = api_as("admin")
    assert admin.post("/transactions", {"items": items}).json()["succeeded"] == 2
    assert admin.post("/settlements/runs", {"business_date": str(yesterday())}).json()["batches"] == 1
    return str(Month.of(yesterday()))


def paths(month: str) -> list[str]:
    return [
        f"/merchants/{MID_A}/statements",
        f"/merchants/{MID_A}/statements/{month}",
        f"/merchants/{MID_A}/statements/{month}.pdf",
        f"/merchants/{MID_A}/comparison",
    ]


@pytest.mark.parametrize("persona", [None, *PERSONAS])
def test_statements_are_scoped(settled, api_as, persona):
    api = api_as(persona)
    for path in paths(settled):
        before = money_trace()
        response = api.get(path)
        if persona is None:
            assert_problem(response, 401, "not_authenticated")
        elif persona in SEES_A:
            assert response.status_code == 200, (path, response.content[:300])
        else:
            assert_problem(response, 404, "not_found")
        if persona not in SEES_A:  # refused: nothing recorded
            assert money_trace() == before, path


def test_the_statement_of_the_month(settled, api_as):
    api = api_as("merchant_a")
    months = api.get(f"/merchants/{MID_A}/statements").json()
    this_month = str(Month.of(today()))
    assert months["merchant"] == MID_A
    assert [m["month"] for m in months["items"]] == sorted({this_month, settled}, reverse=True)
    assert next(m for m in months["items"] if m["month"] == settled) == {
        "month": settled,
        "label": Month.parse(settled).label,
        "partial": settled == this_month,
        "sales_count": 2,
        "sales_fen": 150_000,
        "refunds_fen": 0,
        "fees_fen": 840,
        "net_fen": 149_160,
        "net_display": "¥1,491.60",
    }
    statement = api.get(f"/merchants/{MID_A}/statements/{settled}").json()
    assert statement["merchant"] == {"mid": MID_A, "name": "Shop A", "legal_name": "Shop A Ltd"}
    assert [(m["method"], m["sales_fen"], m["fees_fen"]) for m in statement["methods"]] == [
        ("credit", 100_000, 600),
        ("qr", 50_000, 240),
    ]
    assert (statement["totals"]["net_fen"], statement["settlement_totals"]["payout_fen"]) == (
        149_160,
        149_160,
    )
    assert [s["business_date"] for s in statement["settlements"]] == [str(yesterday())]
    # the settlement payable's movements are the statement's own figures (one refund total, one fee
    # total), not the ledger's journals netted each in its own way
    assert statement["payable_movements"] == [
        {"kind": "sales", "label": "Sales", "amount_fen": 150_000},
        {"kind": "refunds", "label": "Refunds and reversals", "amount_fen": 0},
        {"kind": "fees", "label": "Fees", "amount_fen": -840},
        {"kind": "paid_out", "label": "Paid out", "amount_fen": -149_160},
        {"kind": "deducted", "label": "Deducted from settlements", "amount_fen": 0},
    ]
    assert statement["closing_payable_display"] == "¥0.00"
    before = money_trace()
    for month in ("2026-13", "1999-12", "november", str(Month.of(today()).plus(1))):
        assert_problem(api.get(f"/merchants/{MID_A}/statements/{month}"), 404, "not_found")
        assert_problem(api.get(f"/merchants/{MID_A}/statements/{month}.pdf"), 404, "not_found")
    assert money_trace() == before


@pytest.mark.pdf
def test_the_statement_as_pdf(settled, api_as):
    response = api_as("merchant_a").get(f"/merchants/{MID_A}/statements/{settled}.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="statement-{MID_A}-{settled}.pdf"'
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    for figure in (MID_A, "1,500.00", "8.40", "1,491.60"):
        assert figure in text, figure


def test_the_comparison_names_the_plan_that_would_have_saved(settled, api_as):
    plan_create(
        actor=SYSTEM,
        code="rival",
        name="Rival Pay",
        is_competitor=True,
        provider_name="Rival Co.",
        effective_from=date(2020, 1, 1),
        rules={"credit": RuleSpec(Decimal("0.0038")), "qr": RuleSpec(Decimal("0.0038"))},
    )
    plan_create(
        actor=SYSTEM,
        code="cards-only",
        name="Cards only",
        is_competitor=True,
        effective_from=date(2020, 1, 1),
        rules={"credit": RuleSpec(Decimal("0.001"))},
    )
    api = api_as("merchant_a")
    result = api.get(f"/merchants/{MID_A}/comparison", {"from": settled, "to": settled}).json()
    assert (result["months"], result["sales_fen"], result["actual_fees_fen"]) == ([settled], [150_000], [840])
    assert (result["current"], result["best"], result["cheapest"]) == ("standard", "rival", "rival")
    assert result["mix_fen"] == {"credit": 100_000, "qr": 50_000}
    costs = {p["code"]: p for p in result["plans"]}
    assert [p["code"] for p in result["plans"]] == ["standard", "cards-only", "rival"]
    assert (costs["rival"]["total_fen"], costs["rival"]["saving_fen"], costs["rival"]["saving_display"]) == (
        570,  # 0.38 % of ¥1,000.00 + 0.38 % of ¥500.00
        270,
        "+¥2.70",
    )
    assert (costs["cards-only"]["complete"], costs["cards-only"]["unpriced_fen"]) == (False, {"qr": 50_000})
    only = api.get(
        f"/merchants/{MID_A}/comparison", {"from": settled, "to": settled, "plans": "rival"}
    ).json()
    assert [p["code"] for p in only["plans"]] == ["standard", "rival"]  # the current plan is always in


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"plans": "rival,nope"}, "plans"),
        ({"from": "2020-01", "to": "2026-01"}, "from"),  # more than 24 months
        ({"from": "2026-05", "to": "2026-04"}, "from"),
        ({"to": "2999-01"}, "to"),
        ({"from": "1999-12"}, "from"),
    ],
)
def test_comparisons_the_api_refuses(settled, api_as, params, field):
    before = money_trace()
    response = api_as("admin").get(f"/merchants/{MID_A}/comparison", params)
    assert assert_problem(response, 422, "validation_error")["field"] == field
    assert money_trace() == before


def test_malformed_months_are_422(settled, api_as):
    before = money_trace()
    for params in ({"from": "2026-5"}, {"to": "May"}):
        assert_problem(api_as("admin").get(f"/merchants/{MID_B}/comparison", params), 422, "validation_error")
    assert money_trace() == before
