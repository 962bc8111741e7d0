"""Waking the worker once a change is committed.

A service that leaves work for the worker (an outbox message to dispatch, a delivery to send, a job a
person started) names that work; the module of the task that does it registers how it is enqueued
(``register``, at import; each app imports its tasks in ``AppConfig.ready``). So a service never
imports its task back — the task imports the service — and the worker never sees the work before the
change it needs has committed:

- on the database queue (django-tasks-db, the default tier) the task is a row of this database: it is
  written in the change's own transaction, so it appears with the change, or not at all on rollback,
  without a second commit (bench/transitions.py: one durable commit per transition, not two);
- on any other queue (Celery over Redis or RabbitMQ) it is sent after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

_ENQUEUE: dict[str, Callable[..., Any]] = {}
# The priority of the tasks that hand the outbox on (dispatch, deliveries): above the bulk work that
# waits for what they hand on — thousands of queued closure runs must not starve the dispatch that
# wakes them (bench/closure.py at 10,000 cases: the wipe acknowledgements sat undispatched behind the
# runs). django-tasks-db takes the highest priority first.
OUTBOX_PRIORITY = 10
# Queues whose enqueue writes a row of the default database (and so joins the caller's transaction).
TRANSACTIONAL_BACKENDS = frozenset({"django_tasks_db.DatabaseBackend"})


def register(work: str, enqueue: Callable[..., Any]) -> None:
    """``enqueue(*args)`` asks the worker for ``work`` (a task's ``enqueue``)."""
    _ENQUEUE[work] = enqueue


def wake(work: str, *args: Any) -> None:
    """Ask the worker for ``work`` now."""
    _ENQUEUE[work](*args)


def _in_transaction_queue() -> bool:
    return settings.TASKS["default"]["BACKEND"] in TRANSACTIONAL_BACKENDS


def _still_queued(work: str) -> bool:
    """On the database queue: a task of ``work`` is queued and not started yet, and it is now locked by
    this transaction until it commits — so the worker takes it only after this commit, and it sees
    what this transaction wrote. A task the worker is taking right now is locked by the worker and
    skipped here (SKIP LOCKED): then we queue our own. (SQLite has no row locks; there the worker's
    exclusive transaction waits for this one's write lock, to the same effect.)"""
    from django_tasks_db.models import DBTaskResult

    task = getattr(_ENQUEUE[work], "__self__", None)
    path = getattr(task, "module_path", None)
    if task is None or path is None:
        return False
    queued = (
        DBTaskResult.objects.ready()
        # The priority too: the queue's index is (status, priority, …), so this reads the few tasks of
        # this priority, not every queued task (10,000 queued closure runs: every outbox write read them
        # all, bench/closure.py).
        .filter(priority=task.priority, task_path=path)
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)[:1]
    )
    return bool(list(queued))


def after_commit(work: str, *args: Any, once: bool = False, coalesce: bool = False) -> None:
    """Ask the worker for ``work`` so that it sees the request only once the current transaction
    commits (and never if it rolls back). With ``once``, a transaction asks for it at most once. With
    ``coalesce`` (for work without arguments that handles everything due when it runs, like the outbox
    dispatch), a task of it still waiting in the database queue answers for this transaction too."""
    connection = transaction.get_connection()
    key = (work, args)
    if once and any(getattr(entry[1], "wake_key", None) == key for entry in connection.run_on_commit):
        return
    if connection.in_atomic_block and _in_transaction_queue():
        if not (coalesce and not args and _still_queued(work)):
            wake(work, *args)  # a row in this transaction: invisible to the worker until it commits

        def asked() -> None:  # marks the transaction as having asked (for ``once``)
            return None

        callback = asked
    else:

        def callback() -> None:
            wake(work, *args)

    callback.wake_key = key  # type: ignore[attr-defined]
    transaction.on_commit(callback, robust=True)
