"""Background tasks of the shared kernel (``django.tasks``; the worker runs them, the scheduler
enqueues the sweeps: config/schedule.py)."""

from __future__ import annotations

from django.tasks import task

from posfleet.platform import wake
from posfleet.platform.jobs import run
from posfleet.platform.outbox import dispatch_outbox
from posfleet.platform.wake import OUTBOX_PRIORITY

DISPATCH_BATCH = 1000


@task(priority=OUTBOX_PRIORITY)
def dispatch_outbox_task() -> dict[str, int]:
    """Hand the due outbox messages to their handlers (safe to run any number of times). A full batch
    asks for another dispatch at once: publishers that found this task queued did not ask for one."""
    result = dispatch_outbox(limit=DISPATCH_BATCH)
    if result.sent + result.failed + result.dead >= DISPATCH_BATCH:
        wake.wake("outbox.dispatch")
    return {"sent": result.sent, "failed": result.failed, "dead": result.dead}


@task
def run_job_task(job_id: str) -> dict[str, str]:
    """Run one job a person started (a bulk action, an import, an export); see platform/jobs.py."""
    job = run(job_id)
    return {"status": job.status}


wake.register("outbox.dispatch", dispatch_outbox_task.enqueue)
wake.register("job.run", run_job_task.enqueue)
