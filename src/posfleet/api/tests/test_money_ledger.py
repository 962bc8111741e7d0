"""/ledger: balances as people read them, journals with their entries (each summing to zero), and the
conservation check that names what is wrong."""

from __future__ import annotations

import pytest
from django.db.models import F

from posfleet.api.tests.helpers import assert_problem
from posfleet.api.tests.money_world import MID_A, MID_B, money
from posfleet.billing.models import Account, AccountKind

__all__ = ["money"]


def test_a_merchants_accounts_and_the_providers(money, api_as, clock):
    api = api_as("admin")
    api.post(
        f"/deposits/{money.deposit_a.pk}/refund", {"refund_fen": 20000, "reason": "closed"}, totp=clock.code()
    )
    merchant = api_as("merchant_a").get("/ledger/accounts", {"merchant": MID_A}).json()
    assert merchant == {
        "owner": MID_A,
        "items": [
            {
                "kind": kind,
                "kind_label": label,
                "balance_fen": 0,
                "balance_display": "¥0.00",
                "posted": kind == "deposit_held",
            }
            for kind, label in [
                ("settlement_payable", "settlement payable"),
                ("deposit_held", "deposit held"),
                ("fees_receivable", "fees receivable"),
                ("penalties_receivable", "penalties receivable"),
                ("refunds_payable", "refunds payable"),
            ]
        ],
    }
    provider = {
        a["kind"]: (a["balance_fen"], a["balance_display"])
        for a in api.get("/ledger/accounts").json()["items"]
    }
    assert provider == {
        "bank_clearing": (29900 * 2 - 20000, "¥398.00"),
        "fee_revenue": (0, "¥0.00"),
        "penalty_revenue": (9900, "¥99.00"),
        "device_recovery": (0, "¥0.00"),
    }
    held_b = api.get("/ledger/accounts", {"merchant": MID_B}).json()["items"][1]
    assert (held_b["kind"], held_b["balance_fen"]) == ("deposit_held", 29900)
    assert_problem(api.get("/ledger/accounts", {"merchant": "999999999999999"}), 404, "not_found")


def test_journals_with_entries_newest_first(money, api_as, clock):
    api = api_as("admin")
    api.post(
        f"/deposits/{money.deposit_a.pk}/refund", {"refund_fen": 20000, "reason": "closed"}, totp=clock.code()
    )
    first = api_as("agent_a").get("/ledger/journals", {"merchant": MID_A, "limit": 1}).json()
    [release] = first["items"]
    assert {k: release[k] for k in ("reference", "kind", "kind_label", "merchant", "reverses")} == {
        "reference": f"deposit_release:{money.deposit_a.pk}",
        "kind": "deposit_refund",
        "kind_label": "deposit refunded",
        "merchant": MID_A,
        "reverses": None,
    }
    assert [(e["account"], e["owner"], e["amount_fen"], e["amount_display"]) for e in release["entries"]] == [
        ("deposit_held", MID_A, 29900, "¥299.00"),
        ("bank_clearing", "provider", -20000, "-¥200.00"),
        ("penalty_revenue", "provider", -9900, "-¥99.00"),
    ]
    second = (
        api_as("agent_a")
        .get("/ledger/journals", {"merchant": MID_A, "limit": 1, "cursor": first["next_cursor"]})
        .json()
    )
    assert [j["reference"] for j in second["items"]] == [f"deposit_collect:{money.contract_a.pk}"]
    assert second["next_cursor"] is None
    for journal in first["items"] + second["items"]:
        assert sum(e["amount_fen"] for e in journal["entries"]) == 0
    everything = api.get("/ledger/journals").json()["items"]
    assert [j["kind"] for j in everything] == ["deposit_refund", "deposit_collect", "deposit_collect"]
    collected = api.get("/ledger/journals", {"kind": "deposit_collect", "merchant": MID_B}).json()["items"]
    assert [j["merchant"] for j in collected] == [MID_B]
    assert api.get("/ledger/journals", {"date_to": "2000-01-01"}).json()["items"] == []
    # A cursor belongs to its list.
    assert_problem(api.get("/ledger/journals", {"cursor": first["next_cursor"]}), 422, "validation_error")


def test_verify_reports_conservation_and_names_tampering(money, api_as):
    api = api_as("admin")
    assert api.get("/ledger/verify").json() == {
        "ok": True,
        "journals": 2,
        "entries": 4,
        "accounts": 3,
        "total_fen": 0,
        "problems": [],
    }
    held = Account.objects.get(
        organisation=money.deposit_a.merchant.organisation_id, kind=AccountKind.DEPOSIT_HELD
    )
    Account.objects.filter(pk=held.pk).update(balance_fen=F("balance_fen") - 1)
    report = api.get("/ledger/verify").json()
    assert report["ok"] is False
    assert report["problems"] == [
        f"account {held.pk} ({held.organisation_id}:deposit_held) says -29901 fen "
        "but its entries sum to -29900 fen"
    ]
    Account.objects.filter(pk=held.pk).update(balance_fen=F("balance_fen") + 1)  # the fixture checks again


@pytest.mark.parametrize("value", ["1.3627679908969257e-58", "0", "20261123", "2026-1-5", "yesterday"])
def test_a_date_filter_is_written_yyyy_mm_dd(money, api_as, value):
    """A number would otherwise be read as a Unix time (1970-01-01) and silently filter."""
    api = api_as("admin")
    for path in ("/ledger/journals", "/settlements", "/transactions"):
        answer = api.get(f"{path}?date_to={value}")
        assert answer.status_code == 422, (path, value, answer.status_code)
    assert api.get("/ledger/journals?date_to=2026-11-23").status_code == 200
