"""QUALITY.md "Who may do what" over the money endpoints: anonymous 401, someone else's object 404,
wrong role 403, right role 2xx, read-only token 403 on writes. Refusals leave no trace."""

from __future__ import annotations

from datetime import timedelta

import pytest

from posfleet.api.tests.helpers import PERSONAS, SN_A, assert_problem
from posfleet.api.tests.money_world import MID_A, MID_A1, MID_B, money, money_trace
from posfleet.platform.clock import now, today

__all__ = ["money"]  # the fixture

ALL_MIDS = {MID_A, MID_B, MID_A1}
SEES = {
    "admin": ALL_MIDS,
    "reviewer": ALL_MIDS,
    "warehouse": ALL_MIDS,
    "agent_a": {MID_A, MID_A1},
    "agent_a1": {MID_A1},
    "agent_b": {MID_B},
    "merchant_a": {MID_A},
    "merchant_b": {MID_B},
}
STAFF = {"admin", "reviewer", "warehouse"}


def read_paths(money) -> list[str]:
    return [
        "/rate-plans",
        "/rate-plans/standard",
        "/rate-plans/standard/assignments",
        "/contracts",
        f"/contracts/{money.contract_a.pk}",
        "/deposits",
        f"/deposits/{money.deposit_a.pk}",
        f"/ledger/accounts?merchant={MID_A}",
        "/ledger/accounts",
        f"/ledger/journals?merchant={MID_A}",
        "/ledger/journals",
        "/ledger/verify",
        "/transactions",
        "/settlements",
        "/settlements/runs",
    ]


def write_calls(money) -> list[tuple[str, dict]]:
    later = str(today() + timedelta(days=30))
    rule = [{"method": "credit", "rate": "0.0055"}]
    return [
        ("/rate-plans", {"code": "new", "name": "New", "effective_from": later, "rules": rule}),
        ("/rate-plans/standard/versions", {"effective_from": later, "rules": rule}),
        ("/rate-plans/standard/assignments", {"merchant": MID_A, "effective_from": later}),
        ("/contracts", {"terminal": SN_A, "starts_on": str(today())}),
        (f"/contracts/{money.offered_a1.pk}/accept", {}),
        (f"/deposits/{money.deposit_a.pk}/refund", {"refund_fen": 100, "reason": "closed"}),
        ("/transactions", {"items": [sale(money.contract_a.terminal)]}),
        ("/settlements/runs", {"business_date": str(today() - timedelta(days=1))}),
    ]


def sale(terminal) -> dict:
    return {
        "tid": terminal.tid,
        "batch_no": "000001",
        "trace_no": "000001",
        "txn_date": str(today()),
        "occurred_at": now().isoformat(),
        "method": "qr",
        "entry_mode": "scan",
        "amount_fen": 10_000,
    }


def test_anonymous_is_401_everywhere_and_changes_nothing(money, api_as):
    api = api_as(None)
    for path in read_paths(money):
        assert_problem(api.get(path), 401, "not_authenticated")
    before = money_trace()
    for path, body in write_calls(money):
        assert_problem(api.post(path, body, key="anon"), 401, "not_authenticated")
    assert money_trace() == before


@pytest.mark.parametrize("persona", PERSONAS)
def test_read_only_tokens_may_read_but_not_write(money, api_as, clock, persona):
    api = api_as(persona, scope="read")
    assert api.get("/rate-plans").status_code == 200
    before = money_trace()
    for path, body in write_calls(money):
        response = api.post(path, body, key="ro", totp=clock.code())
        assert assert_problem(response, 403, "permission_denied")["detail"] == "This API token is read-only."
    assert money_trace() == before  # not even a step-up row: the code was never looked at


@pytest.mark.parametrize("persona", PERSONAS)
def test_money_reads_are_scoped(money, api_as, persona):
    api = api_as(persona)
    seen = SEES[persona]
    contracts = {c["merchant"] for c in api.get("/contracts").json()["items"]}
    deposits = {d["merchant"] for d in api.get("/deposits").json()["items"]}
    assignments = {a["merchant"] for a in api.get("/rate-plans/standard/assignments").json()["items"]}
    assert (contracts, deposits, assignments) == (seen, seen - {MID_A1}, seen)
    for mid, contract, deposit in [
        (MID_A, money.contract_a, money.deposit_a),
        (MID_B, money.contract_b, money.deposit_b),
    ]:
        responses = [
            api.get(f"/contracts/{contract.pk}"),
            api.get(f"/deposits/{deposit.pk}"),
            api.get("/ledger/accounts", {"merchant": mid}),
            api.get("/ledger/journals", {"merchant": mid}),
        ]
        if mid in seen:
            assert [r.status_code for r in responses] == [200, 200, 200, 200]
            assert {r.json().get("merchant", mid) for r in responses[:2]} == {mid}
            assert responses[2].json()["owner"] == mid
            assert {j["merchant"] for j in responses[3].json()["items"]} == {mid}
        else:
            for response in responses:
                assert_problem(response, 404, "not_found")
    assert_problem(api.get("/contracts/999999"), 404, "not_found")
    assert_problem(api.get("/deposits/999999"), 404, "not_found")


@pytest.mark.parametrize("persona", PERSONAS)
def test_provider_books_are_for_staff_and_verify_for_the_admin(money, api_as, persona):
    api = api_as(persona)
    accounts, journals, verify = (
        api.get("/ledger/accounts"),
        api.get("/ledger/journals"),
        api.get("/ledger/verify"),
    )
    if persona in STAFF:
        assert accounts.json()["owner"] == "provider"
        assert len(journals.json()["items"]) == 2  # both deposits collected
    else:
        assert_problem(accounts, 403, "permission_denied")
        assert_problem(journals, 403, "permission_denied")
    if persona == "admin":
        assert verify.json()["ok"] is True
    else:
        assert_problem(verify, 403, "permission_denied")


# ---------------------------------------------------------------------------------------------
# Writes: (persona, call index, status, code). Refusals are sent without a TOTP code; the deposit
# refund's successes with one. Call indexes are those of write_calls().

PLAN, VERSION, ASSIGN, OFFER, ACCEPT, REFUND, INGEST, SETTLE = range(8)

WRITE_CASES = [
    *[("admin", call, None) for call in (PLAN, VERSION, ASSIGN, OFFER, ACCEPT, REFUND, INGEST, SETTLE)],
    *[
        (p, call, "permission_denied")
        for p in PERSONAS
        if p != "admin"
        for call in (PLAN, VERSION, INGEST, SETTLE)
    ],
    ("reviewer", ASSIGN, "permission_denied"),
    ("agent_a", ASSIGN, "permission_denied"),
    ("merchant_a", ASSIGN, "permission_denied"),
    ("agent_a1", ASSIGN, "not_found"),
    ("agent_b", ASSIGN, "not_found"),
    ("merchant_b", ASSIGN, "not_found"),
    ("agent_a", OFFER, None),
    ("reviewer", OFFER, "permission_denied"),
    ("warehouse", OFFER, "permission_denied"),
    ("merchant_a", OFFER, "permission_denied"),
    ("agent_a1", OFFER, "not_found"),
    ("agent_b", OFFER, "not_found"),
    ("merchant_b", OFFER, "not_found"),
    ("reviewer", ACCEPT, "permission_denied"),
    ("agent_a", ACCEPT, "permission_denied"),  # the agent offers, the merchant signs
    ("agent_a1", ACCEPT, "permission_denied"),
    ("merchant_a", ACCEPT, "not_found"),  # A1's contract
    ("agent_b", ACCEPT, "not_found"),
    ("merchant_b", ACCEPT, "not_found"),
    ("reviewer", REFUND, None),
    ("warehouse", REFUND, "permission_denied"),
    ("agent_a", REFUND, "permission_denied"),
    ("merchant_a", REFUND, "permission_denied"),
    ("agent_a1", REFUND, "not_found"),
    ("agent_b", REFUND, "not_found"),
    ("merchant_b", REFUND, "not_found"),
]
STATUS = {"permission_denied": 403, "not_found": 404}


@pytest.mark.parametrize(
    ("persona", "call", "code"), WRITE_CASES, ids=[f"{c[0]}-{c[1]}" for c in WRITE_CASES]
)
def test_write_matrix(money, api_as, clock, persona, call, code):
    path, body = write_calls(money)[call]
    before = money_trace()
    totp = clock.code() if code is None and call == REFUND else None
    response = api_as(persona).post(path, body, key=f"k-{persona}-{call}", totp=totp)
    if code is None:
        assert response.status_code in {200, 201}, response.content
        assert money_trace() != before
    else:
        assert_problem(response, STATUS[code], code)
        assert money_trace() == before
