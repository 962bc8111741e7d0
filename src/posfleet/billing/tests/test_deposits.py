"""A deposit is refunded at most once, even with many concurrent attempts, on both databases."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.billing.errors import DepositAlreadyReleased
from posfleet.billing.models import AccountKind, Deposit, Journal
from posfleet.billing.services.deposits import deposit_release
from posfleet.billing.verify import verify_ledger
from posfleet.fleet.states import Status
from posfleet.platform.errors import DomainError, PermissionDenied, StepUpRequired, ValidationFailed
from posfleet.platform.models import OutboxMessage
from posfleet.testing.money import balance, signed_contract
from posfleet.testing.personas import build_world, make_terminal
from posfleet.testing.refusals import assert_nothing_recorded


@pytest.fixture
def deposit(world):
    terminal = make_terminal(world, "SN-DEPOSIT-1", Status.ACTIVE)
    return signed_contract(terminal, deposit_fen=30000).deposit


def test_a_partial_refund_forfeits_the_rest(world, deposit, actor_of):
    released = deposit_release(
        actor=actor_of(world.user("reviewer"), stepped_up=True),
        deposit_id=deposit.pk,
        refund_fen=25000,
        reason="contract_closed",
        note="scratches on the casing",
    )
    assert (released.status, released.refunded_fen, released.forfeited_fen) == ("refunded", 25000, 5000)
    org = world.merchant_a.organisation_id
    assert balance(org, AccountKind.DEPOSIT_HELD) == 0
    assert balance(world.provider.pk, AccountKind.PENALTY_REVENUE) == 5000
    assert balance(world.provider.pk, AccountKind.BANK_CLEARING) == 30000 - 25000
    assert verify_ledger().ok


def test_refusals_change_nothing(world, deposit, actor_of):
    cases = [
        (actor_of(world.user("reviewer")), 30000, "closed", StepUpRequired),
        (actor_of(world.user("merchant_a"), stepped_up=True), 30000, "closed", PermissionDenied),
        (actor_of(world.user("agent_a"), stepped_up=True), 30000, "closed", PermissionDenied),
        (actor_of(world.user("admin"), stepped_up=True), 30001, "closed", ValidationFailed),
        (actor_of(world.user("admin"), stepped_up=True), -1, "closed", ValidationFailed),
        (actor_of(world.user("admin"), stepped_up=True), 100, "  ", ValidationFailed),
    ]
    for actor, refund, reason, error in cases:
        with assert_nothing_recorded(deposit, deposit.contract), pytest.raises(error):
            deposit_release(actor=actor, deposit_id=deposit.pk, refund_fen=refund, reason=reason)
    assert Deposit.objects.get(pk=deposit.pk).status == "held"


def test_a_second_refund_is_refused(world, deposit, actor_of):
    admin = actor_of(world.user("admin"), stepped_up=True)
    deposit_release(actor=admin, deposit_id=deposit.pk, refund_fen=30000, reason="closed")
    with assert_nothing_recorded(deposit), pytest.raises(DepositAlreadyReleased) as again:
        deposit_release(actor=admin, deposit_id=deposit.pk, refund_fen=30000, reason="closed")
    assert again.value.code == "deposit_already_refunded"
    assert again.value.status == 409
    assert Journal.objects.filter(kind="deposit_refund").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_double_refund_race(actor_of):
    """24 concurrent refund attempts on each of 2 deposits: exactly one refund each, losers get 409."""
    world = build_world()
    deposits = [
        signed_contract(make_terminal(world, f"SN-RACE-D{i}", Status.ACTIVE), deposit_fen=50000).deposit
        for i in range(2)
    ]
    outcomes: list[tuple[int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(48)
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    outbox = OutboxMessage.objects.count()

    def attempt(deposit_id: int, persona: str) -> None:
        try:
            barrier.wait()
            deposit_release(
                actor=actor_of(world.user(persona), stepped_up=True),
                deposit_id=deposit_id,
                refund_fen=50000,
                reason="closed",
            )
            result = "refunded"
        except DomainError as exc:
            result = f"{exc.status}:{exc.code}"
        except Exception as exc:  # anything else is a failure of the guarantee (a 5xx)
            result = f"error:{type(exc).__name__}:{exc}"
        finally:
            connection.close()
        with lock:
            outcomes.append((deposit_id, result))

    threads = [
        threading.Thread(target=attempt, args=(d.pk, ("admin", "reviewer")[i % 2]))
        for d in deposits
        for i in range(24)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for d in deposits:
        results = sorted(r for pk, r in outcomes if pk == d.pk)
        assert results == ["409:deposit_already_refunded"] * 23 + ["refunded"], results
        assert Deposit.objects.get(pk=d.pk).refunded_fen == 50000
    assert Journal.objects.filter(kind="deposit_refund").count() == 2
    # The 46 losers left nothing: one release event per deposit, no outbox message.
    released = AuditEvent.objects.filter(seq__gt=last).values_list("event_type", "subject_id")
    assert sorted(released) == sorted((EventType.DEPOSIT_RELEASED, str(d.pk)) for d in deposits)
    assert OutboxMessage.objects.count() == outbox
    assert balance(world.provider.pk, AccountKind.BANK_CLEARING) == 0  # collected 2 × 500, refunded 2 × 500
    assert verify_ledger().ok
