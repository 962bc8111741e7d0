"""/settlements: the daily run (admin; idempotent: again changes nothing), batches in scope with their
transactions page by page, runs for staff; the ledger balances."""

from __future__ import annotations

import pytest

from posfleet.api.tests.helpers import PERSONAS, assert_problem
from posfleet.api.tests.money_world import MID_A, MID_B, money_trace
from posfleet.api.tests.takings import item, takings, yesterday
from posfleet.billing.models import SettlementBatch
from posfleet.billing.verify import verify_ledger
from posfleet.platform.clock import today

__all__ = ["takings"]

STAFF = {"admin", "reviewer", "warehouse"}


@pytest.fixture(autouse=True)
def _conserved(db):
    yield
    report = verify_ledger()
    assert report.ok, report.problems


@pytest.fixture
def ingested(takings, api_as):
    items = [
        item(takings.terminal_a, 1, 100_000),  # fee 600
        item(takings.terminal_a, 2, 50_000, "qr"),  # fee 240
        item(takings.terminal_a, 3, 20_000, "qr"),  # fee 96
        item(takings.terminal_b, 4, 1_000_000, "debit"),  # fee 2,000 (capped)
    ]
    assert api_as("admin").post("/transactions", {"items": items}).json()["succeeded"] == 4
    return takings


def test_a_run_settles_each_merchant_once(ingested, api_as):
    api = api_as("admin")
    day = str(yesterday())
    before = money_trace()
    first = api.post("/settlements/runs", {"business_date": day}, key="run-1")
    assert first.status_code == 200, first.content
    run = first.json()
    assert {k: run[k] for k in ("business_date", "status", "merchants_done", "batches", "payout_fen")} == {
        "business_date": day,
        "status": "done",
        "merchants_done": 2,
        "batches": 2,
        "payout_fen": (170_000 - 936) + (1_000_000 - 2_000),
    }
    assert run["payout_display"] == "¥11,670.64"
    assert money_trace().journals == before.journals + 2  # one settlement journal per merchant

    after = money_trace()
    replay = api.post("/settlements/runs", {"business_date": day}, key="run-1")
    assert (replay.content, replay["Idempotent-Replayed"]) == (first.content, "true")
    again = api.post("/settlements/runs", {"business_date": day}, key="run-2")
    assert (again.status_code, again.json()["id"], again.json()["batches"]) == (200, run["id"], 2)
    assert money_trace() == after  # the day is settled: no batch, journal, audit event or message more
    assert SettlementBatch.objects.count() == 2

    runs = api.get("/settlements/runs").json()["items"]
    assert [(r["id"], r["status_label"]) for r in runs] == [(run["id"], "done")]


@pytest.mark.parametrize("persona", [p for p in PERSONAS if p != "admin"])
def test_only_the_admin_runs_settlement(ingested, api_as, persona):
    before = money_trace()
    response = api_as(persona).post("/settlements/runs", {"business_date": str(yesterday())})
    assert_problem(response, 403, "permission_denied")
    runs = api_as(persona).get("/settlements/runs")
    if persona in STAFF:
        assert runs.json()["items"] == []
    else:
        assert_problem(runs, 403, "permission_denied")
    assert money_trace() == before


def test_today_is_not_settled_yet(ingested, api_as):
    before = money_trace()
    response = api_as("admin").post("/settlements/runs", {"business_date": str(today())})
    assert assert_problem(response, 422, "validation_error")["field"] == "business_date"
    assert_problem(
        api_as("admin").post("/settlements/runs", {"business_date": "2026-13-01"}), 422, "validation_error"
    )
    assert money_trace() == before


def test_batches_are_scoped_with_their_transactions(ingested, api_as):
    api_as("admin").post("/settlements/runs", {"business_date": str(yesterday())})
    batch_a = SettlementBatch.objects.get(merchant__mid=MID_A)
    for persona in PERSONAS:
        api = api_as(persona)
        listed = {b["merchant"] for b in api.get("/settlements").json()["items"]}
        expected = {
            "admin": {MID_A, MID_B},
            "reviewer": {MID_A, MID_B},
            "warehouse": {MID_A, MID_B},
            "agent_a": {MID_A},
            "merchant_a": {MID_A},
            "agent_b": {MID_B},
            "merchant_b": {MID_B},
            "agent_a1": set(),
        }[persona]
        assert listed == expected, persona
        before = money_trace()
        detail = api.get(f"/settlements/{batch_a.pk}")
        if MID_A in expected:
            assert detail.status_code == 200
        else:
            assert_problem(detail, 404, "not_found")
            assert money_trace() == before

    api = api_as("merchant_a")
    first = api.get(f"/settlements/{batch_a.pk}", {"limit": 2}).json()
    assert {
        k: first[k] for k in ("merchant", "business_date", "txn_count", "gross_fen", "fees_fen", "payout_fen")
    } == {
        "merchant": MID_A,
        "business_date": str(yesterday()),
        "txn_count": 3,
        "gross_fen": 170_000,
        "fees_fen": 936,
        "payout_fen": 169_064,
    }
    assert (first["adds_up"], first["journal"]) == (True, f"settlement:{yesterday()}:{MID_A}")
    assert [(m["method"], m["sales_count"], m["sales_fen"], m["fees_fen"]) for m in first["methods"]] == [
        ("credit", 1, 100_000, 600),
        ("qr", 2, 70_000, 336),
    ]
    assert (first["totals"]["label"], first["totals"]["net_fen"]) == ("Total", 169_064)
    second = api.get(f"/settlements/{batch_a.pk}", {"limit": 2, "cursor": first["next_cursor"]}).json()
    amounts = [t["amount_fen"] for t in first["transactions"] + second["transactions"]]
    assert (amounts, second["next_cursor"]) == ([100_000, 50_000, 20_000], None)
    assert {t["settlement"] for t in first["transactions"]} == {batch_a.pk}

    admin = api_as("admin")
    assert [b["merchant"] for b in admin.get("/settlements", {"merchant": MID_B}).json()["items"]] == [MID_B]
    assert admin.get("/settlements", {"date_to": "2020-01-01"}).json()["items"] == []
    assert len(admin.get("/settlements", {"date_from": str(yesterday())}).json()["items"]) == 2
    before = money_trace()
    assert_problem(admin.get("/settlements/999999"), 404, "not_found")
    assert money_trace() == before


def test_a_batch_shows_every_deduction_as_the_console_does(world, api_as):
    """The API renders the console's read model (``SettlementRow``): the service fee a batch kept back,
    by terminal, so that payout = gross − refunds − fees − deductions."""
    from datetime import date

    from posfleet.billing.tests.test_statements import build_october

    build_october(world)
    batch = SettlementBatch.objects.get(merchant__mid=MID_A, business_date=date(2026, 10, 5))
    api = api_as("merchant_a")
    deduction = {
        "kind": "service_fee",
        "label": "Service fee of SN-STMT-0001, year 1",
        "terminal": "SN-STMT-0001",
        "period": 1,
        "charged_on": "2026-10-01",
        "charge": _charge_reference(),
        "amount_fen": 9900,
        "amount_display": "¥99.00",
    }
    detail = api.get(f"/settlements/{batch.pk}").json()
    assert {
        k: detail[k] for k in ("gross_fen", "refunds_fen", "fees_fen", "service_fees_fen", "payout_fen")
    } == {
        "gross_fen": 540000,
        "refunds_fen": 0,
        "fees_fen": 2228,
        "service_fees_fen": 9900,
        "payout_fen": 527872,
    }
    assert (detail["deductions"], detail["adds_up"]) == ([deduction], True)
    listed = {b["id"]: b for b in api.get("/settlements").json()["items"]}
    assert listed[batch.pk]["deductions"] == [deduction]
    later = SettlementBatch.objects.get(merchant__mid=MID_A, business_date=date(2026, 10, 6))
    assert (listed[later.pk]["refunds_fen"], listed[later.pk]["deductions"]) == (2500, [])


def _charge_reference() -> str:
    from posfleet.billing.models import ServiceFeeDue

    return ServiceFeeDue.objects.get(contract__terminal__sn="SN-STMT-0001").journal.reference
