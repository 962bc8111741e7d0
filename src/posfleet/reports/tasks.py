"""The reports' jobs for the scheduler: store the figures of the months (reports/month_end.py) and the
days (reports/days.py) that ended."""

from __future__ import annotations

from django.tasks import task

from posfleet.reports.days import day_end_close
from posfleet.reports.month_end import month_end_close


@task
def month_end_close_task() -> dict[str, list[str]]:
    return {"months": [f"{first:%Y-%m}" for first in month_end_close()]}


@task
def day_end_close_task() -> dict[str, list[str]]:
    return {"days": [day.isoformat() for day in day_end_close()]}
