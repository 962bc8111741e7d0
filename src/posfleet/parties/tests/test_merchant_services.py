"""The merchant's life through its services (merchant_suspend, merchant_resume, merchant_close): what
each success writes (the status, one exact audit event, one exact outbox message), who may run them, and
that every refusal changes nothing (the row, the audit chain, the outbox). Concurrent closes: one wins."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.audit.vocabulary import EventType
from posfleet.parties import services
from posfleet.parties.models import Merchant
from posfleet.parties.services import merchant_close, merchant_resume, merchant_suspend
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import DomainError
from posfleet.platform.events import REGISTRY
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import SYSTEM
from posfleet.testing.refusals import assert_nothing_recorded

MID_A = "100000000000001"


def status_of(mid: str = MID_A) -> str:
    return Merchant.objects.get(mid=mid).status


def suspended(world) -> Merchant:
    """Merchant A suspended by the system (through the service, so its history is real)."""
    return merchant_suspend(actor=SYSTEM, mid=world.merchant_a.mid, reason="risk")


def only_new(kind: type, before: int):
    """The one row of ``kind`` (audit events, outbox messages: append-only) written since ``before``."""
    rows = list(kind.objects.order_by("pk")[before:])
    assert len(rows) == 1, rows
    return rows[0]


def audit_fields(event: AuditEvent) -> dict[str, object]:
    return {
        "event_type": event.event_type,
        "actor_kind": event.actor_kind,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "organisation_id": event.organisation_id,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "reason": event.reason,
        "note": event.note,
        "outcome": event.outcome,
        "request_id": event.request_id,
        "source_ip": event.source_ip,
        "before": event.before,
        "after": event.after,
    }


def outbox_fields(message: OutboxMessage) -> dict[str, object]:
    return {
        "event_type": message.event_type,
        "aggregate_type": message.aggregate_type,
        "aggregate_id": message.aggregate_id,
        "organisation_ids": message.organisation_ids,
        "payload": message.payload,
        "status": message.status,
    }


# ---------------------------------------------------------------------------------------------
# Successes: the status, the audit event and the outbox message, exactly.

SUCCESSES = [
    # (status merchant A starts in, command, reason, note, step-up, status after, audit event type)
    (
        "active",
        "suspend",
        "risk",
        "chargebacks on three cards",
        False,
        "suspended",
        EventType.MERCHANT_SUSPENDED,
    ),
    ("suspended", "resume", "", "cleared by the risk team", False, "active", EventType.MERCHANT_RESUMED),
    ("active", "close", "shop_closed", "", True, "closed", EventType.MERCHANT_CLOSED),
    (
        "suspended",
        "close",
        "provider_initiated",
        "fraud confirmed",
        True,
        "closed",
        EventType.MERCHANT_CLOSED,
    ),
]


@pytest.mark.parametrize(("start", "command", "reason", "note", "step_up", "after", "event_type"), SUCCESSES)
def test_an_admin_runs_each_command(
    world, actor_of, start, command, reason, note, step_up, after, event_type
):
    if start == "suspended":
        suspended(world)
    admin = world.user("admin")
    actor = actor_of(admin, stepped_up=step_up)
    audit, outbox = AuditEvent.objects.count(), OutboxMessage.objects.count()
    params = {"reason": reason} if command != "resume" else {}
    run = {"suspend": merchant_suspend, "resume": merchant_resume, "close": merchant_close}[command]

    merchant = run(actor=actor, mid=MID_A, note=note, **params)

    assert (merchant.status, status_of()) == (after, after)
    event = only_new(AuditEvent, audit)
    assert audit_fields(event) == {
        "event_type": event_type,
        "actor_kind": "user",
        "actor_id": admin.pk,
        "actor_label": "admin",
        "organisation_id": world.provider.pk,
        "subject_type": "merchant",
        "subject_id": MID_A,
        "reason": reason,
        "note": note,
        "outcome": "success",
        "request_id": "test",
        "source_ip": "127.0.0.1",
        "before": {"status": start},
        "after": {"status": after},
    }
    message = only_new(OutboxMessage, outbox)
    assert outbox_fields(message) == {
        "event_type": "merchant.status_changed",
        "aggregate_type": "merchant",
        "aggregate_id": MID_A,
        # Who may see it: the provider, agent A, merchant A.
        "organisation_ids": sorted(
            [world.provider.pk, world.agent_a.organisation_id, world.merchant_a.organisation_id]
        ),
        "payload": {
            "aggregate_id": MID_A,
            "command": command,
            "from_status": start,
            "to_status": after,
            "reason": reason,
            "agent": "AG-A",
        },
        "status": "pending",
    }
    assert message.occurred_at == event.occurred_at
    assert verify_chain().ok


def test_a_job_closes_without_a_step_up_and_is_named_in_the_audit(world):
    """The closure case (a job) ends the merchant as its last step; jobs have no second factor."""
    merchant = merchant_close(actor=Actor.job("closure-case"), mid=MID_A, reason="dissolved")
    assert merchant.status == "closed"
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.event_type, event.actor_kind, event.actor_id, event.actor_label) == (
        EventType.MERCHANT_CLOSED,
        "job",
        None,
        "closure-case",
    )


def test_the_mid_is_read_as_typed_by_people(world, actor_of):
    merchant = merchant_suspend(actor=actor_of(world.user("admin")), mid=f" {MID_A} ", reason="unpaid_fee")
    assert merchant.status == status_of() == "suspended"


def test_the_event_type_is_registered_for_webhook_subscriptions():
    assert REGISTRY["merchant.status_changed"].aggregate_type == "merchant"


# ---------------------------------------------------------------------------------------------
# Who may: written out by hand (not derived from parties/rules.py). Merchant A is signed by agent A.
# ok = allowed; 404 = not visible to this persona; 403 = visible but not this role's decision.

MATRIX = {
    "admin": "ok",
    "reviewer": "403",
    "warehouse": "403",
    "agent_a": "403",  # its own merchant: it asks through a closure case, it does not decide
    "agent_a1": "404",  # a sub-agent does not see its parent's merchants
    "agent_b": "404",
    "merchant_a": "403",  # itself
    "merchant_b": "404",
}
COMMANDS = [
    # (command, status merchant A is put in first, arguments)
    ("suspend", "active", {"reason": "risk"}),
    ("resume", "suspended", {}),
    ("close", "active", {"reason": "cost"}),
]


@pytest.mark.parametrize("persona", list(MATRIX))
@pytest.mark.parametrize(("command", "start", "params"), COMMANDS)
def test_who_may_run_each_command(world, actor_of, persona, command, start, params):
    if start == "suspended":
        suspended(world)
    run = {"suspend": merchant_suspend, "resume": merchant_resume, "close": merchant_close}[command]
    actor = actor_of(world.user(persona), stepped_up=True)
    expected = MATRIX[persona]
    if expected == "ok":
        assert run(actor=actor, mid=MID_A, **params).status != start
        return
    merchant = Merchant.objects.get(mid=MID_A)
    with assert_nothing_recorded(merchant), pytest.raises(DomainError) as refused:
        run(actor=actor, mid=MID_A, **params)
    code = {"403": "permission_denied", "404": "not_found"}[expected]
    assert (refused.value.code, refused.value.status) == (code, int(expected))
    assert status_of() == start


def test_an_unknown_mid_is_not_found(world, actor_of):
    with assert_nothing_recorded(Merchant.objects.all()), pytest.raises(DomainError) as refused:
        merchant_suspend(actor=actor_of(world.user("admin")), mid="999999999999999", reason="risk")
    assert refused.value.code == "not_found"


def test_a_read_only_token_never_writes(world):
    token = Actor(kind="token", user=world.user("admin"), read_only=True, stepped_up_at=now())
    with assert_nothing_recorded(world.merchant_a), pytest.raises(DomainError) as refused:
        merchant_close(actor=token, mid=MID_A, reason="cost")
    assert refused.value.code == "permission_denied"


def test_a_person_actor_without_a_user_sees_nothing(world):
    with assert_nothing_recorded(world.merchant_a), pytest.raises(DomainError) as refused:
        merchant_suspend(actor=Actor(kind="user"), mid=MID_A, reason="risk")
    assert refused.value.code == "not_found"


# ---------------------------------------------------------------------------------------------
# The table: a command not allowed in the merchant's status is refused, naming the allowed ones.

ILLEGAL = [
    # (status merchant A is put in, command, arguments, the commands allowed there)
    ("active", "resume", {}, ["suspend", "close"]),
    ("suspended", "suspend", {"reason": "risk"}, ["resume", "close"]),
    ("closed", "suspend", {"reason": "risk"}, []),
    ("closed", "resume", {}, []),
    ("closed", "close", {"reason": "cost"}, []),  # never twice, never reopened
]


@pytest.mark.parametrize(("start", "command", "params", "allowed"), ILLEGAL)
def test_a_command_not_in_the_table_is_refused(world, actor_of, start, command, params, allowed):
    if start == "suspended":
        suspended(world)
    elif start == "closed":
        merchant_close(actor=SYSTEM, mid=MID_A, reason="cost")
    run = {"suspend": merchant_suspend, "resume": merchant_resume, "close": merchant_close}[command]
    merchant = Merchant.objects.get(mid=MID_A)
    with assert_nothing_recorded(merchant), pytest.raises(DomainError) as refused:
        run(actor=actor_of(world.user("admin"), stepped_up=True), mid=MID_A, **params)
    assert (refused.value.code, refused.value.status) == ("transition_not_allowed", 409)
    assert refused.value.params == {"current_status": start, "allowed": allowed}
    assert status_of() == start


# ---------------------------------------------------------------------------------------------
# Reasons (422): checked after the table, before the step-up.

REASONS = [
    # (command, reason, note, the field named)
    ("suspend", "", "", "reason"),
    ("suspend", "bored", "", "reason"),
    ("suspend", "shop_closed", "", "reason"),  # a closure reason is not a suspension reason
    ("suspend", "other", "   ", "note"),  # "other" says what in the note
    ("close", "", "", "reason"),
    ("close", "risk", "", "reason"),  # a suspension reason is not a closure reason
    ("close", "other", "", "note"),
]


@pytest.mark.parametrize(("command", "reason", "note", "field"), REASONS)
def test_reasons_are_required_and_checked(world, actor_of, command, reason, note, field):
    run = {"suspend": merchant_suspend, "close": merchant_close}[command]
    with assert_nothing_recorded(world.merchant_a), pytest.raises(DomainError) as refused:
        run(actor=actor_of(world.user("admin"), stepped_up=True), mid=MID_A, reason=reason, note=note)
    assert (refused.value.code, refused.value.status) == ("validation_error", 422)
    assert refused.value.params["field"] == field
    assert status_of() == "active"


def test_other_with_a_note_is_recorded_with_both(world, actor_of):
    merchant_suspend(actor=actor_of(world.user("admin")), mid=MID_A, reason="other", note="court order 17")
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.reason, event.note) == ("other", "court order 17")


# ---------------------------------------------------------------------------------------------
# Step-up (403): closing is destructive; suspending and resuming are not.


def test_closing_needs_a_fresh_step_up(world, actor_of, settings):
    admin = world.user("admin")
    stale = Actor.for_user(
        admin, stepped_up_at=now() - settings.POSFLEET["STEP_UP_WINDOW"] - timedelta(seconds=1)
    )
    for actor in (actor_of(admin), stale):
        with assert_nothing_recorded(world.merchant_a), pytest.raises(DomainError) as refused:
            merchant_close(actor=actor, mid=MID_A, reason="cost")
        assert (refused.value.code, refused.value.status) == ("step_up_required", 403)
    assert status_of() == "active"


def test_suspending_and_resuming_need_no_step_up(world, actor_of):
    admin = actor_of(world.user("admin"))
    assert merchant_suspend(actor=admin, mid=MID_A, reason="risk").status == "suspended"
    assert merchant_resume(actor=admin, mid=MID_A).status == "active"


def test_the_permission_is_refused_before_the_step_up_is_asked(world, actor_of):
    with assert_nothing_recorded(world.merchant_a), pytest.raises(DomainError) as refused:
        merchant_close(actor=actor_of(world.user("agent_a")), mid=MID_A, reason="cost")
    assert refused.value.code == "permission_denied"


# ---------------------------------------------------------------------------------------------
# Compare-and-set and concurrency.


def test_a_status_moved_under_the_lock_is_a_conflict(world, actor_of, monkeypatch):
    """The UPDATE names the status it read: a row that moved meanwhile is not overwritten."""
    stale = Merchant.objects.select_related("organisation", "agent").get(mid=MID_A)
    merchant_close(actor=SYSTEM, mid=MID_A, reason="cost")
    monkeypatch.setattr(services, "_lock", lambda actor, mid: stale)  # as if read before the close
    closed = Merchant.objects.get(mid=MID_A)
    with assert_nothing_recorded(closed), pytest.raises(DomainError) as refused:
        merchant_suspend(actor=actor_of(world.user("admin")), mid=MID_A, reason="risk")
    assert (refused.value.code, refused.value.status) == ("conflict", 409)
    assert status_of() == "closed"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("closers", [2, 8])
def test_concurrent_closes_succeed_exactly_once(actor_of, closers):
    from posfleet.testing.personas import build_world

    world = build_world()
    admin = actor_of(world.user("admin"), stepped_up=True)
    audit, outbox = AuditEvent.objects.count(), OutboxMessage.objects.count()
    outcomes: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(closers)

    def attempt(i: int) -> None:
        try:
            barrier.wait()
            reason = "cost" if i % 2 else "shop_closed"
            merchant_close(actor=admin, mid=MID_A, reason=reason)
            outcome = ("ok", 200)
        except DomainError as exc:
            outcome = (exc.code, exc.status)
        except Exception as exc:  # anything else (a deadlock, a database error) fails the guarantee
            outcome = (f"error:{type(exc).__name__}:{exc}", 500)
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(closers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(("ok", 200)) == 1, outcomes
    # Each loser waited for the winner's row lock, then read "closed": 409, nothing written. (Without
    # the lock a loser would reach the compare-and-set and get "conflict", also 409: tested above.)
    assert sorted(outcomes) == [("ok", 200)] + [("transition_not_allowed", 409)] * (closers - 1), outcomes
    assert status_of() == "closed"
    assert AuditEvent.objects.count() == audit + 1
    assert AuditEvent.objects.filter(event_type=EventType.MERCHANT_CLOSED).count() == 1
    assert OutboxMessage.objects.count() == outbox + 1
    assert verify_chain().ok
