"""The closure case's work for the worker: run a case's steps (woken after each change commits), and
the scheduler's sweeps (resume cases with a step due; remind and escalate late reviews)."""

from __future__ import annotations

from django.tasks import task

from posfleet.closure.runner import advance, on_device_answer, resume_sweep
from posfleet.closure.services import complaint_sla_sweep, review_remind_sweep
from posfleet.platform.context import Actor
from posfleet.platform.outbox import register_handler
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
register_handler("closure", on_device_answer)


@task
def complaint_sla_sweep_task() -> dict[str, int]:
    """Escalate complaints the agent let run past their clock, and agent terminations it did not decide
    in time (ADR 0023). Cron: ``("25 * * * *", complaint_sla_sweep_task, ...)`` in config/schedule.py."""
    return complaint_sla_sweep(actor=Actor.job("complaint_sla_sweep"))
