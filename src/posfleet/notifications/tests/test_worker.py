"""The background machinery end to end on the database task backend: a change commits, the dispatch is
enqueued, a real `posfleet worker --batch` runs it and the notices it makes; the scheduler's schedule
and its one-instance lock."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command, Status
from posfleet.notifications.models import Delivery, InboxItem
from posfleet.platform.context import Actor
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import make_terminal
from posfleet.testing.refusals import assert_nothing_recorded

DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_reaches_the_inbox_through_the_worker(world):
    make_terminal(world, "SN-W-1", Status.ACTIVE)
    OutboxMessage.objects.all().delete()
    with override_settings(TASKS=DB_TASKS):
        terminal_transition(actor=Actor.system("test"), sn="SN-W-1", action=Command.SUSPEND, reason="risk")
        # After commit: one dispatch asked for, nothing delivered yet.
        assert list(DBTaskResult.objects.values_list("task_path", "status")) == [
            ("posfleet.platform.tasks.dispatch_outbox_task", "READY")
        ]
        assert not Delivery.objects.exists()
        out = io.StringIO()
        call_command("worker", batch=True, stdout=out, verbosity=0)
    results = dict(DBTaskResult.objects.values_list("task_path", "status"))
    assert results == {
        "posfleet.platform.tasks.dispatch_outbox_task": "SUCCESSFUL",
        "posfleet.notifications.tasks.deliver_due_task": "SUCCESSFUL",
    }
    assert OutboxMessage.objects.get().status == "sent"
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    item = InboxItem.objects.get(user=world.user("merchant_a"))
    assert item.title.startswith("Terminal ")
    assert item.title.endswith(" is suspended")


@pytest.mark.django_db(transaction=True)
def test_a_refused_change_asks_for_nothing(world):
    terminal = make_terminal(world, "SN-W-2", Status.IN_STOCK)
    with override_settings(TASKS=DB_TASKS):
        from posfleet.platform.errors import DomainError

        with assert_nothing_recorded(terminal), pytest.raises(DomainError) as refused:
            terminal_transition(
                actor=Actor.system("test"), sn="SN-W-2", action=Command.SUSPEND, reason="risk"
            )
    assert refused.value.code == "transition_not_allowed"
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_on_the_database_queue_the_dispatch_is_asked_for_in_the_changes_own_transaction(world):
    """One task per transaction however many events it publishes, written with the change (no second
    commit), and gone with it when it rolls back: the worker never sees work for a change that is not
    committed."""
    from django.db import transaction

    from posfleet.fleet.events import TerminalsImported
    from posfleet.platform.events import publish
    from posfleet.platform.models import OutboxMessage as Message

    def publish_twice_then_roll_back() -> None:
        with transaction.atomic():
            publish([TerminalsImported(aggregate_id="B-1", count=1)])
            publish([TerminalsImported(aggregate_id="B-2", count=1)])
            assert DBTaskResult.objects.count() == 1  # already there, inside the transaction
            raise LookupError("roll back")

    with override_settings(TASKS=DB_TASKS):
        with pytest.raises(LookupError):
            publish_twice_then_roll_back()
        assert not DBTaskResult.objects.exists()
        assert not Message.objects.filter(aggregate_id__in=["B-1", "B-2"]).exists()
        with transaction.atomic():
            publish([TerminalsImported(aggregate_id="B-3", count=1)])
            publish([TerminalsImported(aggregate_id="B-4", count=1)])
    assert list(DBTaskResult.objects.values_list("task_path", flat=True)) == [
        "posfleet.platform.tasks.dispatch_outbox_task"
    ]


@pytest.mark.django_db(transaction=True)
def test_a_dispatch_not_started_yet_answers_for_the_changes_after_it(world):
    """While a dispatch waits in the queue, later changes do not queue another: it will see them. Once
    the worker has started it, the next change asks for a new one. Every message is handed over."""
    from posfleet.fleet.events import TerminalsImported
    from posfleet.platform.events import publish

    def change(batch: str) -> None:
        with transaction.atomic():
            publish([TerminalsImported(aggregate_id=batch, count=1)])

    dispatch = "posfleet.platform.tasks.dispatch_outbox_task"
    OutboxMessage.objects.all().delete()
    with override_settings(TASKS=DB_TASKS):
        change("C-1")
        change("C-2")
        change("C-3")
        assert list(DBTaskResult.objects.values_list("task_path", "status")) == [(dispatch, "READY")]
        DBTaskResult.objects.update(status="RUNNING")  # the worker took it (and may have read already)
        change("C-4")
        assert sorted(DBTaskResult.objects.values_list("status", flat=True)) == ["READY", "RUNNING"]
        DBTaskResult.objects.filter(status="RUNNING").delete()
        call_command("worker", batch=True, stdout=io.StringIO(), verbosity=0)
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}
    assert OutboxMessage.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_the_queued_dispatch_a_change_counts_on_waits_for_that_change_to_commit(world):
    """The change that relied on a queued dispatch holds it until it commits, so the worker cannot run
    it before the change's message is there: PostgreSQL's worker skips the locked row; on SQLite the
    worker's exclusive transaction cannot begin while the change writes."""
    import sqlite3
    import threading

    from posfleet.fleet.events import TerminalsImported
    from posfleet.platform.events import publish

    claimed: list[object] = []

    def worker_claims() -> None:
        try:
            with transaction.atomic():
                claimed.append(DBTaskResult.objects.ready().select_for_update(skip_locked=True).first())
        finally:
            connections.close_all()

    with override_settings(TASKS=DB_TASKS):
        with transaction.atomic():
            publish([TerminalsImported(aggregate_id="L-1", count=1)])
        queued = DBTaskResult.objects.get()
        with transaction.atomic():
            publish([TerminalsImported(aggregate_id="L-2", count=1)])
            assert DBTaskResult.objects.count() == 1  # it counts on the queued one
            if connection.vendor == "postgresql":
                thread = threading.Thread(target=worker_claims)
                thread.start()
                thread.join(timeout=30)
                assert claimed == [None]  # locked by this change: skipped
            else:
                other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0.2)
                try:
                    with pytest.raises(sqlite3.OperationalError, match="locked"):
                        other.execute("BEGIN IMMEDIATE")
                finally:
                    other.close()
        if connection.vendor == "postgresql":
            claimed.clear()
            thread = threading.Thread(target=worker_claims)
            thread.start()
            thread.join(timeout=30)
            assert [getattr(c, "pk", None) for c in claimed] == [queued.pk]  # free once committed


def test_the_worker_refuses_a_backend_it_cannot_run():
    dummy = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    with override_settings(TASKS=dummy), pytest.raises(CommandError, match="run that backend's own worker"):
        call_command("worker", batch=True)


def test_the_scheduler_lists_its_jobs():
    out = io.StringIO()
    call_command("scheduler", list_only=True, stdout=out)
    lines = out.getvalue().splitlines()
    jobs = {line.split()[5]: " ".join(line.split()[:5]) for line in lines}
    assert jobs == {
        "dispatch_outbox_task": "* * * * *",
        "deliver_due_task": "* * * * *",
        "settle_yesterday_task": "30 2 * * *",
        "ledger_verify_task": "45 3 * * *",
        "audit_verify_task": "50 3 * * *",
        "expiry_sweep_task": "5 * * * *",
        "expiry_suspend_task": "10 * * * *",
        "review_remind_task": "15 * * * *",
        "device_commands_expire_task": "*/5 * * * *",
        "tally_compact_task": "*/10 * * * *",
        "closure_resume_task": "* * * * *",
        "closure_review_remind_task": "20 * * * *",
        "closure_retention_sweep_task": "40 4 * * *",
        "complaint_sla_sweep_task": "25 * * * *",
        "month_end_close_task": "35 0 * * *",
        "day_end_close_task": "5 0 * * *",
    }


@pytest.mark.django_db(transaction=True)
def test_only_one_scheduler_runs():
    from posfleet.ops.management.commands.scheduler import LOCK_KEY, single_scheduler

    with single_scheduler():
        if connection.vendor == "postgresql":
            # The advisory lock belongs to a session: another connection (another process) is refused.
            other = connections.create_connection("default")
            try:
                with other.cursor() as cursor:
                    cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                    assert cursor.fetchone()[0] is False
            finally:
                other.close()
        else:
            with (
                pytest.raises(CommandError, match="Another scheduler is already running"),
                single_scheduler(),
            ):
                pass
    with single_scheduler():  # released: the next one starts
        pass


@pytest.mark.django_db(transaction=True)
def test_the_dispatch_runs_before_the_bulk_work_queued_before_it():
    """Thousands of queued runs must not starve the dispatch that wakes them: the worker takes the
    outbox's tasks (``wake.OUTBOX_PRIORITY``) first, whenever they were queued."""
    from posfleet.closure.tasks import closure_advance_task
    from posfleet.platform.tasks import dispatch_outbox_task

    with override_settings(TASKS=DB_TASKS):
        for case_id in range(5):
            closure_advance_task.enqueue(case_id)
        dispatch_outbox_task.enqueue()
        call_command("worker", batch=True, max_tasks=1, stdout=io.StringIO(), verbosity=0)
    done = dict(DBTaskResult.objects.values_list("task_path", "status").filter(status="SUCCESSFUL"))
    assert done == {"posfleet.platform.tasks.dispatch_outbox_task": "SUCCESSFUL"}
    assert DBTaskResult.objects.filter(status="READY").count() == 5
