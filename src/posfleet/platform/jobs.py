"""Long work a person started, run by the worker with its progress stored for the page to show.

A context registers a runner per kind (``register``); ``start`` saves the job and enqueues
``run_job_task`` after commit; the runner reports with ``Progress`` (throttled writes, one row) and
returns a JSON-able result. The console polls the job and draws a bar; the CLI has its own bar.
A runner that raises leaves the job ``failed`` with a safe message (``DomainError.detail`` or a
generic one: never an exception's text, which may hold personal data).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from posfleet.platform import wake
from posfleet.platform.clock import now
from posfleet.platform.errors import DomainError, NotFound
from posfleet.platform.models import Job

log = logging.getLogger(__name__)


class Progress:
    """``progress(done, total=None)``: stored at most every ``every`` seconds (and at the end)."""

    def __init__(self, job: Job, *, every: float = 0.5) -> None:
        self.job = job
        self.every = every
        self._last = 0.0

    def __call__(self, done: int, total: int | None = None, *, force: bool = False) -> None:
        self.job.done = done
        if total is not None:
            self.job.total = total
        moment = time.monotonic()
        if force or moment - self._last >= self.every:
            self._last = moment
            Job.objects.filter(pk=self.job.pk).update(done=done, total=self.job.total)


Runner = Callable[[Job, Progress], dict[str, Any]]
RUNNERS: dict[str, Runner] = {}


def register(kind: str) -> Callable[[Runner], Runner]:
    def decorate(runner: Runner) -> Runner:
        RUNNERS[kind] = runner
        return runner

    return decorate


def start(kind: str, *, user_id: int, params: dict[str, Any], total: int | None = None) -> Job:
    """Save the job and hand it to the worker once the caller's transaction commits."""
    if kind not in RUNNERS:
        raise ValueError(f"no runner for job kind {kind!r}")
    job = Job.objects.create(
        id=uuid.uuid4(), kind=kind, user_id=user_id, params=params, total=total, created_at=now()
    )
    wake.after_commit("job.run", str(job.pk))
    return job


def run(job_id: str) -> Job:
    """Run a queued job (the task's body; also called directly by tests and the CLI)."""
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=now()
    )
    job = Job.objects.get(pk=job_id)
    if not claimed:
        return job  # someone else runs (or ran) it
    progress = Progress(job)
    # Messages and results in the language of the person who started it.
    with translation.override(getattr(job.user, "language", "") or settings.LANGUAGE_CODE):
        try:
            result = RUNNERS[job.kind](job, progress)
        except DomainError as exc:
            _finish(job, Job.Status.FAILED, error=str(exc.detail)[:500])
        except Exception:
            log.exception("job %s (%s) failed", job.pk, job.kind)
            _finish(
                job, Job.Status.FAILED, error=_("The work stopped on an unexpected error; it was logged.")
            )
        else:
            progress(job.done, job.total, force=True)
            _finish(job, Job.Status.DONE, result=result)
    job.refresh_from_db()
    return job


def _finish(job: Job, status: str, *, result: dict[str, Any] | None = None, error: str = "") -> None:
    Job.objects.filter(pk=job.pk).update(status=status, result=result, error=error, finished_at=now())


def job_for(user_id: int, job_id: str) -> Job:
    """The user's own job; anyone else's (or a malformed id) is not found."""
    try:
        key = uuid.UUID(str(job_id))
    except ValueError as exc:
        raise NotFound() from exc
    job = Job.objects.filter(pk=key, user_id=user_id).first()
    if job is None:
        raise NotFound()
    return job


def job_folder() -> Path:
    """``var/jobs/``: jobs' files (exports written, uploads waiting to be imported)."""
    folder = Path(settings.VAR_DIR) / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def job_file(job: Job, extension: str) -> Path:
    """Where a job writes its file (an export): ``var/jobs/<id>.<ext>``."""
    return job_folder() / f"{job.pk}.{extension}"
