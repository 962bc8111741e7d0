"""The background machinery end to end on the database task backend: a change commits, the dispatch is
enqueued, a real `posfleet worker --batch` runs it and the notices it makes; the scheduler's schedule
and its one-instance lock."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command, Status
from posfleet.notifications.models import Delivery, InboxItem
from posfleet.platform.context import Actor
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import make_terminal

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
    make_terminal(world, "SN-W-2", Status.IN_STOCK)
    with override_settings(TASKS=DB_TASKS):
        from posfleet.platform.errors import DomainError

        with pytest.raises(DomainError):
            terminal_transition(
                actor=Actor.system("test"), sn="SN-W-2", action=Command.SUSPEND, reason="risk"
            )
    assert not DBTaskResult.objects.exists()


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
        "expiry_sweep_task": "5 * * * *",
        "expiry_suspend_task": "10 * * * *",
        "review_remind_task": "15 * * * *",
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
