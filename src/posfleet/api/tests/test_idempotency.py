"""Idempotency-Key: one effect per (principal, key); replays byte-identical; a different body is 422;
an in-flight duplicate is 409; a crash leaves either nothing or the effect with its stored answer."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection

from posfleet.api.models import IdempotencyRecord
from posfleet.api.tests.helpers import SN_A, SN_A1, Api, assert_problem, new_events, new_token, trace
from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Terminal
from posfleet.platform.clock import now
from posfleet.testing.personas import make_terminal
from posfleet.testing.sessions import sign_in
from posfleet.testing.totp import code_at

DEACTIVATE = {"action": "deactivate", "reason": "cost", "note": "too expensive"}
SUSPEND = {"action": "suspend", "reason": "risk"}


def test_a_replay_is_byte_identical_and_runs_nothing(fleet, api_as, clock):
    api = api_as("agent_a")
    first = api.post(f"/terminals/{SN_A}/transitions", DEACTIVATE, key="key-1", totp=clock.code())
    assert first.status_code == 200
    after_first = trace(SN_A)
    clock.advance(31)
    for totp in (None, clock.code(), clock.wrong_code()):  # the code is not part of the request
        again = api.post(f"/terminals/{SN_A}/transitions", DEACTIVATE, key="key-1", totp=totp)
        assert (again.status_code, again.content) == (200, first.content)
        assert again["Content-Type"] == first["Content-Type"]
        assert again["Idempotent-Replayed"] == "true"
    assert trace(SN_A) == after_first  # no second audit row, no step-up row, no outbox message
    assert "Idempotent-Replayed" not in first


def test_same_key_with_another_body_or_path_is_422(fleet, api_as, clock):
    api = api_as("agent_a")
    api.post(f"/terminals/{SN_A}/transitions", DEACTIVATE, key="key-2", totp=clock.code())
    before_a, before_a1 = trace(SN_A), trace(SN_A1)
    clock.advance(31)
    other_body = {**DEACTIVATE, "note": "something else"}
    assert_problem(
        api.post(f"/terminals/{SN_A}/transitions", other_body, key="key-2", totp=clock.code()),
        422,
        "idempotency_key_reused",
    )
    assert_problem(
        api.post(f"/terminals/{SN_A1}/transitions", DEACTIVATE, key="key-2", totp=clock.code()),
        422,
        "idempotency_key_reused",
    )
    assert (trace(SN_A), trace(SN_A1)) == (before_a, before_a1)


def test_refusals_are_stored_and_replayed(fleet, api_as):
    api = api_as("admin")
    refused = api.post(f"/terminals/{SN_A}/transitions", {"action": "resume"}, key="key-3")
    body = assert_problem(refused, 409, "transition_not_allowed")
    assert (body["current_status"], body["allowed"]) == ("active", ["suspend", "deactivate", "report_lost"])
    assert api.post(f"/terminals/{SN_A}/transitions", SUSPEND, key="key-4").status_code == 200
    # Resuming would work now, but key-3 answered once and for all.
    before = trace(SN_A)
    again = api.post(f"/terminals/{SN_A}/transitions", {"action": "resume"}, key="key-3")
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (409, refused.content, "true")
    assert trace(SN_A) == before
    assert api.post(f"/terminals/{SN_A}/transitions", {"action": "resume"}, key="key-5").status_code == 200


def test_step_up_refusals_are_not_stored(fleet, api_as, clock):
    """A missing or wrong code is about the caller's proof, not the operation: retry the same key."""
    api = api_as("merchant_a")
    path = f"/terminals/{SN_A}/transitions"
    assert_problem(api.post(path, DEACTIVATE, key="key-6"), 403, "step_up_required")
    assert_problem(api.post(path, DEACTIVATE, key="key-6", totp=clock.wrong_code()), 403, "step_up_failed")
    assert not IdempotencyRecord.objects.filter(key="key-6").exists()
    done = api.post(path, DEACTIVATE, key="key-6", totp=clock.code())
    assert done.json()["status"] == "deactivated"
    assert api.post(path, DEACTIVATE, key="key-6").content == done.content


def test_keys_are_scoped_per_principal(fleet, api_as, world, clock):
    agent, merchant = api_as("agent_a"), api_as("merchant_a")
    before = trace(SN_A)
    code = clock.code()
    by_agent = agent.post(f"/terminals/{SN_A1}/transitions", DEACTIVATE, key="shared", totp=code)
    by_merchant = merchant.post(f"/terminals/{SN_A}/transitions", DEACTIVATE, key="shared", totp=code)
    assert (by_agent.status_code, by_merchant.status_code) == (200, 200)
    deactivations = [e for e in new_events(before.audit) if e[0] == EventType.TERMINAL_DEACTIVATED]
    assert deactivations == [
        (EventType.TERMINAL_DEACTIVATED, "terminal", SN_A1),
        (EventType.TERMINAL_DEACTIVATED, "terminal", SN_A),
    ]
    # Two tokens of one user are one principal: the second token replays the first one's result.
    other_token = Api(new_token(world.user("agent_a"), name="second"))
    replay = other_token.post(f"/terminals/{SN_A1}/transitions", DEACTIVATE, key="shared")
    assert (replay.content, replay["Idempotent-Replayed"]) == (by_agent.content, "true")


def test_invalid_keys_are_refused_before_anything_runs(fleet, api_as):
    api = api_as("admin")
    before = trace(SN_A)
    for key in ("x" * 256, "has space", "ünïcode"):
        body = assert_problem(
            api.post(f"/terminals/{SN_A}/transitions", SUSPEND, key=key), 422, "validation_error"
        )
        assert body["field"] == "Idempotency-Key"
    assert trace(SN_A) == before
    assert IdempotencyRecord.objects.count() == 0


def _fingerprint(path: str, body: dict) -> str:
    return hashlib.sha256(b"POST\n" + path.encode() + b"\n" + json.dumps(body).encode()).hexdigest()


def _claim(world, key: str, path: str, body: dict, *, age: timedelta) -> IdempotencyRecord:
    """An in-progress claim as a request leaves it when its process dies mid-way."""
    at = now() - age
    return IdempotencyRecord.objects.create(
        user=world.user("admin"),
        key=key,
        method="POST",
        path=path,
        fingerprint=_fingerprint(path, body),
        claim_token="dead-process",
        claimed_at=at,
        created_at=at,
    )


def test_an_in_flight_duplicate_is_409(fleet, api_as, world):
    path = f"/api/v1/terminals/{SN_A}/transitions"
    _claim(world, "key-7", path, SUSPEND, age=timedelta(seconds=10))
    before = trace(SN_A)
    response = api_as("admin").post(f"/terminals/{SN_A}/transitions", SUSPEND, key="key-7")
    assert_problem(response, 409, "idempotency_in_progress")
    assert trace(SN_A) == before


def test_a_claim_older_than_the_lease_is_taken_over(fleet, api_as, world, settings):
    path = f"/api/v1/terminals/{SN_A}/transitions"
    _claim(world, "key-8", path, SUSPEND, age=settings.POSFLEET["IDEMPOTENCY_LEASE"] + timedelta(seconds=1))
    before = trace(SN_A)
    response = api_as("admin").post(f"/terminals/{SN_A}/transitions", SUSPEND, key="key-8")
    assert response.json()["status"] == "suspended"
    assert new_events(before.audit) == [(EventType.TERMINAL_SUSPENDED, "terminal", SN_A)]
    record = IdempotencyRecord.objects.get(key="key-8")
    assert (record.state, record.status_code, bytes(record.body)) == ("completed", 200, response.content)


def test_a_crash_after_the_effect_rolls_it_back_and_frees_the_key(fleet, api_as, monkeypatch):
    from posfleet.api.routers import terminals as endpoint

    real = endpoint.terminal_transition

    def crash_after_the_effect(**kwargs):
        real(**kwargs)
        raise RuntimeError("process died before storing the answer")

    api = api_as("admin")
    before = trace(SN_A)
    monkeypatch.setattr(endpoint, "terminal_transition", crash_after_the_effect)
    crashed = api.post(f"/terminals/{SN_A}/transitions", SUSPEND, key="key-9")
    assert_problem(crashed, 500, "internal_error")
    assert "process died" not in crashed.content.decode()
    assert trace(SN_A) == before  # the effect did not survive without its stored answer
    assert not IdempotencyRecord.objects.filter(key="key-9").exists()
    monkeypatch.setattr(endpoint, "terminal_transition", real)
    retried = api.post(f"/terminals/{SN_A}/transitions", SUSPEND, key="key-9")
    assert retried.json()["status"] == "suspended"
    assert new_events(before.audit) == [(EventType.TERMINAL_SUSPENDED, "terminal", SN_A)]


def test_keys_are_forgotten_after_retention(fleet, api_as, clock, settings):
    api = api_as("admin")
    assert api.post(f"/terminals/{SN_A}/transitions", SUSPEND, key="key-10").status_code == 200
    clock.advance(settings.POSFLEET["IDEMPOTENCY_RETENTION"].total_seconds() + 1)
    fresh = api.post(f"/terminals/{SN_A}/transitions", {"action": "resume"}, key="key-10")
    assert (fresh.json()["status"], fresh.get("Idempotent-Replayed")) == ("active", None)


def test_purge_forgets_only_records_past_retention(fleet, api_as, clock, settings):
    from posfleet.api.idempotency import purge_expired

    api = api_as("admin")
    api.post(f"/terminals/{SN_A}/transitions", SUSPEND, key="old")
    clock.advance(settings.POSFLEET["IDEMPOTENCY_RETENTION"].total_seconds() - 60)
    api.post(f"/terminals/{SN_A}/transitions", {"action": "resume"}, key="young")
    clock.advance(120)
    assert purge_expired() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["young"]


def test_token_secrets_are_never_stored_or_replayed(world, client, clock):
    sign_in(client, world.user("merchant_a"))
    api = Api(client=client)
    first = api.post("/tokens", {"name": "pos-app", "scope": "read"}, key="key-11", totp=clock.code())
    secret = first.json()["secret"]
    assert secret.startswith("pf_")
    replay = api.post("/tokens", {"name": "pos-app", "scope": "read"}, key="key-11")
    assert (replay.status_code, replay["Idempotent-Replayed"]) == (201, "true")
    assert replay.json() == {**first.json(), "secret": None}
    assert secret.encode() not in bytes(IdempotencyRecord.objects.get(key="key-11").body)


# ---------------------------------------------------------------------------------------------
# Racing duplicates need committed data and one connection per thread.


@pytest.mark.parametrize("slow", [False, True], ids=["fast", "slow-service"])
def test_concurrent_duplicates_have_exactly_one_effect(transactional_db, world, monkeypatch, slow):
    threads = 8
    if slow:  # the winner stays in flight while the others arrive
        from posfleet.api.routers import terminals as endpoint

        real = endpoint.terminal_transition

        def slow_transition(**kwargs):
            time.sleep(0.3)
            return real(**kwargs)

        monkeypatch.setattr(endpoint, "terminal_transition", slow_transition)
    make_terminal(world, SN_A, "active")
    raw = new_token(world.user("agent_a"))
    code = code_at()
    audit_before = AuditEvent.objects.count()
    barrier = threading.Barrier(threads)
    results: list[tuple[int, bytes, str | None]] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            barrier.wait()
            response = Api(raw).post(f"/terminals/{SN_A}/transitions", DEACTIVATE, key="storm", totp=code)
            with lock:
                results.append((response.status_code, response.content, response.get("Idempotent-Replayed")))
        finally:
            connection.close()

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    statuses = sorted(status for status, _body, _replayed in results)
    assert len(results) == threads
    assert all(status in {200, 409} for status in statuses), statuses
    fresh = [body for status, body, replayed in results if status == 200 and replayed is None]
    replays = [body for status, body, replayed in results if status == 200 and replayed == "true"]
    assert len(fresh) == 1
    assert all(body == fresh[0] for body in replays)
    for status, body, _replayed in results:
        if status == 409:
            assert json.loads(body)["code"] == "idempotency_in_progress"
    assert Terminal.objects.get(sn=SN_A).status == "deactivated"
    events = [e.event_type for e in AuditEvent.objects.filter(seq__gt=audit_before)]
    assert events.count(EventType.TERMINAL_DEACTIVATED) == 1
    assert events.count(EventType.STEP_UP_SUCCEEDED) == 1  # only the winner looked at the code
    assert EventType.STEP_UP_FAILED not in events
    # Afterwards every retry is a replay of the one result.
    again = Api(raw).post(f"/terminals/{SN_A}/transitions", DEACTIVATE, key="storm")
    assert (again.status_code, again.content) == (200, fresh[0])
