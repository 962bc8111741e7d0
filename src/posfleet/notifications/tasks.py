"""Background tasks of notifications (``django.tasks``; the scheduler also sweeps them each minute)."""

from __future__ import annotations

from django.tasks import task

from posfleet.notifications.services import deliver_due
from posfleet.platform import wake
from posfleet.platform.wake import OUTBOX_PRIORITY

DELIVERY_BATCH = 500


@task(priority=OUTBOX_PRIORITY)
def deliver_due_task() -> dict[str, int]:
    """Send the due deliveries (safe to run any number of times, in any number of workers)."""
    run = deliver_due(limit=DELIVERY_BATCH)
    if run.sent + run.failed + run.dead >= DELIVERY_BATCH:
        wake.wake("notifications.deliver")  # more may be due; see ``after_commit(coalesce=True)``
    return {"sent": run.sent, "failed": run.failed, "dead": run.dead, "skipped": run.skipped}


wake.register("notifications.deliver", deliver_due_task.enqueue)
