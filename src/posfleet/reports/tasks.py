"""The reports' job for the scheduler: store the figures of the months that ended (reports/month_end.py)."""

from __future__ import annotations

from django.tasks import task

from posfleet.reports.month_end import month_end_close


@task
def month_end_close_task() -> dict[str, list[str]]:
    return {"months": [f"{first:%Y-%m}" for first in month_end_close()]}
