"""/transactions: batch ingest (per-item results, item replays by natural key, Idempotency-Key replays
byte-identical, at most 10,000 items) and the search, scoped and filtered; the ledger balances."""

from __future__ import annotations

import json

import pytest

from posfleet.api.tests.helpers import PERSONAS, assert_problem
from posfleet.api.tests.money_world import MID_A, MID_B, money_trace
from posfleet.api.tests.takings import SN_TA, item, takings, yesterday
from posfleet.billing.models import Journal, Transaction
from posfleet.billing.verify import verify_ledger

__all__ = ["takings"]


@pytest.fixture(autouse=True)
def _conserved(db):
    yield
    report = verify_ledger()
    assert report.ok, report.problems


def _batch(t):
    return [
        item(t.terminal_a, 1, 100_000),  # ¥1,000.00 credit: 0.60 % = ¥6.00
        item(t.terminal_a, 2, 50_000, "qr"),  # ¥500.00 QR: 0.48 % = ¥2.40
        item(t.terminal_b, 3, 1_000_000, "debit"),  # ¥10,000.00 debit: 0.55 % capped at ¥20.00
        item(t.terminal_a, 4, 100, "bitcoin"),  # refused, alone
    ]


def test_ingest_answers_per_item_and_replays(takings, api_as):
    api = api_as("admin")
    before = money_trace()
    first = api.post("/transactions", {"items": _batch(takings)}, key="batch-1")
    assert first.status_code == 200, first.content
    body = first.json()
    assert [(r["index"], r["ok"], r["fee_fen"], r["code"], r["replayed"]) for r in body["results"]] == [
        (0, True, 600, None, False),
        (1, True, 240, None, False),
        (2, True, 2000, None, False),
        (3, False, None, "invalid_method", False),
    ]
    assert (body["succeeded"], body["failed"], body["replayed"]) == (3, 1, 0)
    assert Transaction.objects.count() == 3
    assert money_trace().journals == before.journals + 2  # one capture journal per merchant

    # The same key: the stored answer, byte for byte; nothing runs.
    after = money_trace()
    again = api.post("/transactions", {"items": _batch(takings)}, key="batch-1")
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (200, first.content, "true")
    assert money_trace() == after

    # Another key (or none): the items are replays by their natural key, nothing changes.
    fresh = api.post("/transactions", {"items": _batch(takings)[:3]}, key="batch-2").json()
    assert [(r["transaction_id"], r["replayed"]) for r in fresh["results"]] == [
        (r["transaction_id"], True) for r in body["results"][:3]
    ]
    assert fresh["replayed"] == 3
    changed = item(takings.terminal_a, 1, 100_001)  # same key, other amount
    conflict = api.post("/transactions", {"items": [changed]}).json()["results"][0]
    assert (conflict["ok"], conflict["code"]) == (False, "duplicate_key_conflict")
    assert money_trace() == after
    assert Transaction.objects.count() == 3


def test_a_refund_links_to_its_sale(takings, api_as):
    api = api_as("admin")
    sale = item(takings.terminal_a, 1, 100_000)
    api.post("/transactions", {"items": [sale]})
    original = {k: sale[k] for k in ("tid", "batch_no", "trace_no", "txn_date")}
    refund = item(takings.terminal_a, 2, 40_000, kind="refund", original=original)
    result = api.post("/transactions", {"items": [refund]}).json()["results"][0]
    assert (result["ok"], result["fee_fen"]) == (True, 240)  # 40 % of the sale's fee handed back
    listed = api.get("/transactions", {"kind": "refund"}).json()["items"]
    assert [(t["amount_fen"], t["fee_fen"], t["kind_label"]) for t in listed] == [(40_000, 240, "refund")]
    assert listed[0]["original"] == Transaction.objects.get(kind="sale").pk


@pytest.mark.parametrize("persona", [p for p in PERSONAS if p != "admin"])
def test_only_the_admin_ingests(takings, api_as, persona):
    read_only = api_as("admin", scope="read")  # (its token is made before the trace)
    before = money_trace()
    assert_problem(
        api_as(persona).post("/transactions", {"items": _batch(takings)}), 403, "permission_denied"
    )
    assert_problem(
        read_only.post("/transactions", {"items": _batch(takings)}),
        403,
        "permission_denied",
    )
    assert money_trace() == before
    assert Transaction.objects.count() == 0


GOOD = {
    "tid": "10000001",
    "batch_no": "000001",
    "trace_no": "000001",
    "txn_date": "2026-01-01",
    "occurred_at": "2026-01-01T10:00:00+08:00",
    "method": "qr",
    "entry_mode": "scan",
    "amount_fen": 100,
}


@pytest.mark.parametrize(
    "body",
    [
        {"items": []},
        {"items": [{"tid": "10000001"}]},
        {"items": [{**GOOD, "amount_fen": "100.00"}]},  # fen are integers, never strings or floats
        {"items": [{**GOOD, "amount_fen": 1.5}]},
        {"items": [{**GOOD, "occurred_at": "9999-12-31T23:59:59+14:00"}]},
        {"items": [{**GOOD, "txn_date": "1999-12-31"}]},
        {"items": [{**GOOD, "original": {"tid": "10000001"}}]},
        {"items": GOOD},
    ],
)
def test_malformed_batches_are_422(takings, api_as, body):
    before = money_trace()
    assert_problem(api_as("admin").post("/transactions", body), 422, "validation_error")
    assert money_trace() == before
    assert Transaction.objects.count() == 0


def test_ten_thousand_items_go_through_and_more_are_refused(takings, api_as):
    api = api_as("admin")
    items = [item(takings.terminal_a, n, 1_000 + n % 7) for n in range(1, 10_001)]
    items = [
        {**i, "trace_no": f"{n % 999_999 + 1:06d}", "batch_no": f"{n // 999_999 + 1:06d}"}
        for n, i in enumerate(items)
    ]
    assert len(json.dumps({"items": items})) < 2_500_000  # within Django's default request body limit
    response = api.post("/transactions", {"items": items})
    assert response.status_code == 200, response.content[:500]
    assert response.json()["succeeded"] == 10_000
    assert Transaction.objects.count() == 10_000
    before = money_trace()
    more = api.post("/transactions", {"items": [*items, item(takings.terminal_b, 1, 100)]})
    assert_problem(more, 422, "validation_error")
    assert money_trace() == before
    assert Transaction.objects.count() == 10_000


def test_search_is_scoped_and_filtered(takings, api_as):
    admin = api_as("admin")
    admin.post(
        "/transactions",
        {
            "items": [
                *_batch(takings)[:3],
                item(takings.terminal_b, 9, 500, "qr", status="declined", response_code="51"),
            ]
        },
    )
    ids = {t.amount_fen: t.pk for t in Transaction.objects.all()}

    def amounts(api, **params):
        return [t["amount_fen"] for t in api.get("/transactions", params).json()["items"]]

    assert amounts(admin) == [500, 1_000_000, 50_000, 100_000]  # newest first
    assert amounts(api_as("merchant_a")) == [50_000, 100_000]
    assert amounts(api_as("agent_b")) == [500, 1_000_000]
    assert amounts(api_as("agent_a1")) == []
    assert amounts(admin, merchant=MID_B) == [500, 1_000_000]
    assert amounts(admin, terminal=SN_TA.lower()) == [50_000, 100_000]
    assert amounts(admin, tid=takings.terminal_b.tid) == [500, 1_000_000]
    assert amounts(admin, method=["qr", "debit"]) == [500, 1_000_000, 50_000]
    assert amounts(admin, status="declined") == [500]
    assert amounts(admin, kind="sale", status="approved", merchant=MID_A) == [50_000, 100_000]
    assert amounts(admin, date_from=str(yesterday())) == [500, 1_000_000, 50_000, 100_000]
    assert amounts(admin, date_to="2020-01-01") == []
    page = admin.get("/transactions", {"limit": 3}).json()
    rest = admin.get("/transactions", {"limit": 3, "cursor": page["next_cursor"]}).json()
    assert ([t["amount_fen"] for t in rest["items"]], rest["next_cursor"]) == ([100_000], None)
    detail = api_as("merchant_a").get(f"/transactions/{ids[100_000]}").json()
    assert {
        k: detail[k] for k in ("merchant", "terminal", "method", "amount_display", "fee_display", "plan")
    } == {
        "merchant": MID_A,
        "terminal": SN_TA,
        "method": "credit",
        "amount_display": "¥1,000.00",
        "fee_display": "¥6.00",
        "plan": "standard",
    }
    for persona in ("merchant_b", "agent_b", "agent_a1"):
        assert_problem(api_as(persona).get(f"/transactions/{ids[100_000]}"), 404, "not_found")
    assert_problem(admin.get("/transactions", {"method": "cash"}), 422, "validation_error")
    assert Journal.objects.filter(kind="capture").count() == 2


def test_a_full_batch_with_external_ids_fits(takings, api_as):
    items = [
        item(takings.terminal_a, n % 999_999 + 1, 1_000, external_id=f"acquirer-2026-{n:08d}-{'x' * 40}")
        for n in range(10_000)
    ]
    response = api_as("admin").post("/transactions", {"items": items})
    assert response.status_code == 200, response.content[:200]
    assert len(response.json()["results"]) == 10_000
    assert Transaction.objects.filter(terminal=takings.terminal_a).count() == 10_000


def test_a_body_over_the_limit_is_a_413_problem_and_nothing_is_written(takings, api_as, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    items = [item(takings.terminal_a, n + 1, 1_000) for n in range(200)]
    before = money_trace()
    assert_problem(api_as("admin").post("/transactions", {"items": items}), 413, "payload_too_large")
    assert money_trace() == before
