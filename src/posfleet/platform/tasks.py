"""Background tasks of the shared kernel (``django.tasks``; the worker runs them, the scheduler
enqueues the sweeps: config/schedule.py)."""

from __future__ import annotations

from django.tasks import task

from posfleet.platform.outbox import dispatch_outbox


@task
def dispatch_outbox_task() -> dict[str, int]:
    """Hand the due outbox messages to their handlers (safe to run any number of times)."""
    result = dispatch_outbox()
    return {"sent": result.sent, "failed": result.failed, "dead": result.dead}
