"""The outbox dispatcher: every committed event is handed over, a failing handler is retried with
backoff and rolled back alone, and a message that keeps failing is dead, not lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction

from posfleet.platform import outbox
from posfleet.platform.clock import now
from posfleet.platform.events import DomainEvent, publish
from posfleet.platform.models import Counter, OutboxMessage

pytestmark = pytest.mark.django_db


class ThingHappened(DomainEvent):
    name = "test.thing_happened"
    aggregate_type = "thing"


@pytest.fixture
def handlers():
    saved = dict(outbox.HANDLERS)
    outbox.HANDLERS.clear()
    yield outbox.HANDLERS
    outbox.HANDLERS.clear()
    outbox.HANDLERS.update(saved)


def emit(n: int = 1) -> None:
    with transaction.atomic():
        publish([ThingHappened(aggregate_id=str(i)) for i in range(n)])


def test_every_message_is_handed_to_every_handler_once(handlers):
    seen: list[tuple[str, str]] = []
    handlers["a"] = lambda m: seen.append(("a", m.aggregate_id))
    handlers["b"] = lambda m: seen.append(("b", m.aggregate_id))
    emit(3)
    result = outbox.dispatch_outbox()
    assert (result.sent, result.failed, result.dead) == (3, 0, 0)
    assert seen == [("a", "0"), ("b", "0"), ("a", "1"), ("b", "1"), ("a", "2"), ("b", "2")]
    assert outbox.dispatch_outbox().handled == 0
    assert set(OutboxMessage.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_a_failing_handler_rolls_back_its_message_only_and_is_retried(handlers):
    def handler(message: OutboxMessage) -> None:
        Counter.objects.create(name=f"effect-{message.aggregate_id}")
        if message.aggregate_id == "1":
            raise RuntimeError("receiver down")

    handlers["h"] = handler
    emit(3)
    start = now()
    with time_machine.travel(start, tick=False) as clock:
        result = outbox.dispatch_outbox()
        assert (result.sent, result.failed) == (2, 1)
        assert set(Counter.objects.values_list("name", flat=True)) == {"effect-0", "effect-2"}
        failed = OutboxMessage.objects.get(aggregate_id="1")
        assert (failed.status, failed.attempts, failed.next_attempt_at) == (
            "failed",
            1,
            start + timedelta(seconds=30),
        )
        assert outbox.dispatch_outbox().handled == 0  # not due yet
        clock.shift(timedelta(seconds=31))
        handlers["h"] = lambda m: Counter.objects.create(name=f"effect-{m.aggregate_id}")
        assert outbox.dispatch_outbox().sent == 1
    assert Counter.objects.filter(name="effect-1").count() == 1


def test_a_message_that_keeps_failing_is_dead_and_can_be_sent_again(handlers, settings):
    settings.POSFLEET_NOTIFY = {**settings.POSFLEET_NOTIFY, "OUTBOX_MAX_ATTEMPTS": 3}

    def boom(message: OutboxMessage) -> None:
        raise ValueError("bug")

    handlers["h"] = boom
    emit()
    start = now()
    with time_machine.travel(start, tick=False) as clock:
        outcomes = []
        for _ in range(4):
            outcomes.append(outbox.dispatch_outbox())
            clock.shift(timedelta(hours=7))
    assert [(r.failed, r.dead) for r in outcomes] == [(1, 0), (1, 0), (0, 1), (0, 0)]
    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts, message.next_attempt_at) == ("dead", 3, None)
    assert outbox.resend(message.pk) is True
    assert outbox.resend(message.pk) is False  # pending now: nothing to resend
    handlers["h"] = lambda m: None
    assert outbox.dispatch_outbox().sent == 1


def test_backoff_doubles_up_to_its_cap():
    waits = [outbox.backoff(n) for n in range(1, 12)]
    assert waits[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert max(waits) == timedelta(hours=6)
    assert waits == sorted(waits)


def test_publishing_asks_for_one_dispatch_per_transaction(handlers, django_capture_on_commit_callbacks):
    from django.tasks import default_task_backend

    before = len(default_task_backend.results)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        publish([ThingHappened(aggregate_id="x")])
        publish([ThingHappened(aggregate_id="y")])
    assert len(callbacks) == 1
    enqueued = default_task_backend.results[before:]
    assert [r.task.name for r in enqueued] == ["dispatch_outbox_task"]


@pytest.mark.django_db(transaction=True)
def test_publish_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        publish([ThingHappened(aggregate_id="z")])
    assert not OutboxMessage.objects.exists()
