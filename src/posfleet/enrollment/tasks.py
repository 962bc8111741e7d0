"""Enrollment's jobs for the scheduler: the expiry sweeps (hourly: each finds nothing new after its
first run of the day) and the review reminders."""

from __future__ import annotations

from django.tasks import task

from posfleet.enrollment.services.applications import review_remind_sweep
from posfleet.enrollment.services.expiry import expiry_suspend_sweep, expiry_sweep
from posfleet.platform.context import Actor


@task
def expiry_sweep_task() -> dict[str, int]:
    return expiry_sweep(actor=Actor.job("expiry_sweep")).found


@task
def expiry_suspend_task() -> dict[str, int]:
    return {"suspended": expiry_suspend_sweep(actor=Actor.job("expiry_suspend"))}


@task
def review_remind_task() -> dict[str, int]:
    return {"reminded": review_remind_sweep(actor=Actor.job("review_remind"))}
