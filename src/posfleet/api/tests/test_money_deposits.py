"""/deposits: read in scope; refunded once (step-up, Idempotency-Key), even under a storm of concurrent
requests with different keys; a second refund is 409 `deposit_already_refunded`, never a 5xx."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from posfleet.api.models import IdempotencyRecord
from posfleet.api.tests.helpers import SN_A, Api, assert_problem, new_events, new_token
from posfleet.api.tests.money_world import MID_A, MID_B, build_money, money, money_trace
from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import AccountKind, Deposit, Journal
from posfleet.billing.verify import verify_ledger
from posfleet.fleet.states import Status
from posfleet.testing.money import balance
from posfleet.testing.personas import build_world, make_terminal

__all__ = ["money"]

REFUND = {"refund_fen": 25000, "reason": "contract_closed", "note": "scratches on the casing"}


def test_a_refund_releases_the_deposit_once(money, api_as, world, clock):
    api = api_as("reviewer")
    path = f"/deposits/{money.deposit_a.pk}/refund"
    before = money_trace()
    response = api.post(path, REFUND, key="refund-1", totp=clock.code())
    assert response.status_code == 200, response.content
    body = response.json()
    assert {k: body[k] for k in ("status", "refunded_fen", "forfeited_fen", "release_journal")} == {
        "status": "refunded",
        "refunded_fen": 25000,
        "forfeited_fen": 4900,
        "release_journal": f"deposit_release:{money.deposit_a.pk}",
    }
    assert api.get(f"/deposits/{money.deposit_a.pk}").json() == body
    org = world.merchant_a.organisation_id
    assert balance(org, AccountKind.DEPOSIT_HELD) == 0
    assert balance(world.provider.pk, AccountKind.PENALTY_REVENUE) == 4900
    assert balance(world.provider.pk, AccountKind.BANK_CLEARING) == 29900 * 2 - 25000
    user = str(world.user("reviewer").pk)
    assert new_events(before.audit) == [
        (EventType.STEP_UP_SUCCEEDED, "user", user),
        (EventType.DEPOSIT_RELEASED, "deposit", str(money.deposit_a.pk)),
    ]
    assert money_trace().journals == before.journals + 1

    # The same key replays byte for byte, whatever code comes with it; nothing runs again.
    after = money_trace()
    clock.advance()
    for totp in (None, clock.code()):
        again = api.post(path, REFUND, key="refund-1", totp=totp)
        assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (
            200,
            response.content,
            "true",
        )
    assert money_trace() == after

    # A second refund with a fresh key and a fresh code: 409, and only the code was spent.
    clock.advance()
    second = api_as("admin").post(path, {**REFUND, "refund_fen": 29900}, key="refund-2", totp=clock.code())
    assert_problem(second, 409, "deposit_already_refunded")
    later = money_trace()
    assert (later.rows, later.journals, later.entries, later.outbox) == (
        after.rows,
        after.journals,
        after.entries,
        after.outbox,
    )
    assert new_events(after.audit) == [(EventType.STEP_UP_SUCCEEDED, "user", str(world.user("admin").pk))]


def test_a_full_forfeit(money, api_as, world, clock):
    response = api_as("admin").post(
        f"/deposits/{money.deposit_b.pk}/refund",
        {"refund_fen": 0, "reason": "device_lost"},
        totp=clock.code(),
    )
    assert (response.json()["status"], response.json()["forfeited_fen"]) == ("forfeited", 29900)
    assert balance(world.provider.pk, AccountKind.PENALTY_REVENUE) == 29900


def test_without_step_up_nothing_happens_and_the_key_may_be_retried(money, api_as, world, clock):
    api = api_as("reviewer")
    path = f"/deposits/{money.deposit_a.pk}/refund"
    before = money_trace()
    assert_problem(api.post(path, REFUND, key="refund-3"), 403, "step_up_required")
    assert money_trace() == before
    assert_problem(api.post(path, REFUND, key="refund-3", totp=clock.wrong_code()), 403, "step_up_failed")
    after = money_trace()
    assert (after.rows, after.journals, after.entries, after.outbox) == (
        before.rows,
        before.journals,
        before.entries,
        before.outbox,
    )
    assert new_events(before.audit) == [(EventType.STEP_UP_FAILED, "user", str(world.user("reviewer").pk))]
    assert not IdempotencyRecord.objects.filter(key="refund-3").exists()
    assert api.post(path, REFUND, key="refund-3", totp=clock.code()).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"refund_fen": 29901, "reason": "closed"}, "refund"),  # more than the deposit
        ({"refund_fen": 100, "reason": "   "}, "reason"),
    ],
)
def test_refunds_the_domain_refuses_change_nothing(money, api_as, world, clock, body, field):
    before = money_trace()
    response = api_as("admin").post(f"/deposits/{money.deposit_a.pk}/refund", body, totp=clock.code())
    assert assert_problem(response, 422, "validation_error")["field"] == field
    after = money_trace()
    assert (after.rows, after.journals, after.entries, after.outbox) == (
        before.rows,
        before.journals,
        before.entries,
        before.outbox,
    )
    assert new_events(before.audit) == [(EventType.STEP_UP_SUCCEEDED, "user", str(world.user("admin").pk))]


@pytest.mark.parametrize(
    "body",
    [
        {"refund_fen": -1, "reason": "closed"},
        {"refund_fen": "299.00", "reason": "closed"},
        {"refund_fen": 1.5, "reason": "closed"},
        {"refund_fen": 100, "reason": ""},
        {"refund_fen": 100, "reason": "x" * 49},
        {"reason": "closed"},
    ],
)
def test_malformed_refunds_are_422_before_the_code_is_looked_at(money, api_as, clock, body):
    before = money_trace()
    response = api_as("admin").post(f"/deposits/{money.deposit_a.pk}/refund", body, totp=clock.code())
    assert_problem(response, 422, "validation_error")
    assert money_trace() == before


def test_deposit_filters(money, api_as, clock):
    api = api_as("admin")
    api.post(f"/deposits/{money.deposit_b.pk}/refund", {"refund_fen": 0, "reason": "lost"}, totp=clock.code())

    def mids(**params):
        return [d["merchant"] for d in api.get("/deposits", params).json()["items"]]

    assert mids() == [MID_B, MID_A]
    assert mids(merchant=MID_A) == [MID_A]
    assert mids(status="held") == [MID_A]
    assert mids(status=["refunded", "forfeited"]) == [MID_B]
    assert api.get("/deposits", {"merchant": MID_A}).json()["items"][0]["terminal"] == SN_A


# ---------------------------------------------------------------------------------------------
# The double-refund race over HTTP: every request its own key and its own (backup) code, so each
# one reaches the service; the database lets exactly one release through.

RACERS = 24


def _backup_codes(user, count: int) -> list[str]:
    device = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    codes = [f"race-{user.pk}-{n:02d}" for n in range(count)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


@pytest.mark.django_db(transaction=True)
def test_the_double_refund_race_over_http():
    world = build_world()
    fleet = {
        sn: make_terminal(world, sn, Status.ACTIVE, merchant=m)
        for sn, m in [
            (SN_A, world.merchant_a),
            ("SN-A1-0001", world.merchant_a1),
            ("SN-B-0001", world.merchant_b),
        ]
    }
    deposit = build_money(world, fleet).deposit_a
    callers = []
    for persona in ("admin", "reviewer"):
        user = world.user(persona)
        raw = new_token(user)
        callers += [(raw, code) for code in _backup_codes(user, RACERS // 2)]
    journals, audit = Journal.objects.count(), AuditEvent.objects.count()
    barrier = threading.Barrier(RACERS)
    results: list[tuple[int, int, bytes]] = []
    lock = threading.Lock()

    def call(n: int, raw: str, code: str) -> None:
        try:
            barrier.wait()
            response = Api(raw).post(
                f"/deposits/{deposit.pk}/refund",
                {"refund_fen": 29900, "reason": "contract_closed"},
                key=f"race-{n}",
                totp=code,
            )
            with lock:
                results.append((n, response.status_code, response.content))
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(n, raw, code)) for n, (raw, code) in enumerate(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == RACERS
    statuses = sorted(status for _n, status, _body in results)
    assert statuses == [200] + [409] * (RACERS - 1), [(s, json.loads(b)["code"]) for _n, s, b in results]
    assert {json.loads(b)["code"] for _n, s, b in results if s == 409} == {"deposit_already_refunded"}
    assert Journal.objects.count() == journals + 1
    assert Journal.objects.filter(reference=f"deposit_release:{deposit.pk}").count() == 1
    refunded = Deposit.objects.get(pk=deposit.pk)
    assert (refunded.status, refunded.refunded_fen, refunded.forfeited_fen) == ("refunded", 29900, 0)
    events = [e.event_type for e in AuditEvent.objects.filter(seq__gt=audit)]
    assert events.count(EventType.DEPOSIT_RELEASED) == 1
    assert events.count(EventType.STEP_UP_SUCCEEDED) == RACERS  # every request showed its own proof
    assert balance(world.merchant_a.organisation_id, AccountKind.DEPOSIT_HELD) == 0
    assert verify_ledger().ok
    # Each answer is stored under its key: a loser's retry replays its 409, nothing runs again.
    n, _status, lost = next(r for r in results if r[1] == 409)
    raw, _code = callers[n]
    again = Api(raw).post(
        f"/deposits/{deposit.pk}/refund", {"refund_fen": 29900, "reason": "contract_closed"}, key=f"race-{n}"
    )
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (409, lost, "true")
    assert Journal.objects.count() == journals + 1
