"""The closure case's work for the worker: run a case's steps (woken after each change commits), and
the scheduler's sweeps (resume cases with a step due; remind and escalate late reviews)."""

from __future__ import annotations

from django.tasks import task

from posfleet.closure.runner import advance, resume_sweep
from posfleet.closure.services import review_remind_sweep
from posfleet.platform.context import Actor
from posfleet.platform.wake import register


@task
def closure_advance_task(case_id: int) -> dict[str, str]:
    return {"status": advance(case_id)}


@task
def closure_resume_task() -> dict[str, int]:
    return {"woken": resume_sweep()}


@task
def closure_review_remind_task() -> dict[str, int]:
    return review_remind_sweep(actor=Actor.job("closure_review_remind"))


register("closure.advance", closure_advance_task.enqueue)
