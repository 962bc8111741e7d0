"""Background work of data backups: the console's "create backup" as a job with progress
(platform/jobs.py), and the scheduler's daily retention sweep. To be folded into closure/tasks.py;
imported by ``ClosureConfig.ready`` so the worker knows the job kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.tasks import task

from posfleet.closure.backup import BackupProgress, backup_create
from posfleet.closure.retention import retention_sweep
from posfleet.iam.models import User
from posfleet.platform.context import Actor
from posfleet.platform.jobs import Progress, register
from posfleet.platform.models import Job

BACKUP_JOB = "closure.backup"


def job_params(actor: Actor, merchant_id: int) -> dict[str, Any]:
    """What the job keeps to act later as the person who asked."""
    return {"merchant_id": merchant_id, "request_id": actor.request_id, "source_ip": actor.source_ip}


@register(BACKUP_JOB)
def run_backup(job: Job, progress: Progress) -> dict[str, Any]:
    user = User.objects.get(pk=job.user_id)
    actor = Actor.for_user(
        user, request_id=job.params.get("request_id", ""), source_ip=job.params.get("source_ip")
    )

    def report(event: BackupProgress) -> None:
        progress(event.done, event.total)

    backup = backup_create(actor=actor, merchant_id=int(job.params["merchant_id"]), progress=report)
    return {"backup": backup.pk, "bytes": backup.size_bytes, "sha256": backup.sha256}


def retention(at: datetime | None = None) -> int:
    return retention_sweep(actor=Actor.job("closure_retention_sweep"), at=at)


@task
def closure_retention_sweep_task() -> dict[str, int]:
    """Daily: destroy the personal data of merchants closed longer ago than the retention period."""
    return {"shredded": retention()}
