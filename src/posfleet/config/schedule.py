"""What the scheduler enqueues, and when (Asia/Shanghai, settings.TIME_ZONE). Every job is a sweep that
is safe to run twice: a missed or doubled minute changes nothing but latency.

Imported only by `posfleet scheduler` (ops/management/commands/scheduler.py): importing it registers
the jobs with crontask's APScheduler instance.
"""

from __future__ import annotations

from typing import Any

from crontask import cron
from django.tasks import Task

from posfleet.audit.tasks import audit_verify_task
from posfleet.billing.tasks import ledger_verify_task, settle_yesterday_task
from posfleet.closure.backup_tasks import closure_retention_sweep_task
from posfleet.closure.tasks import closure_resume_task, closure_review_remind_task, complaint_sla_sweep_task
from posfleet.enrollment.tasks import expiry_suspend_task, expiry_sweep_task, review_remind_task
from posfleet.fleet.tasks import device_commands_expire_task, tally_compact_task
from posfleet.notifications.tasks import deliver_due_task
from posfleet.platform.tasks import dispatch_outbox_task
from posfleet.reports.tasks import day_end_close_task, month_end_close_task

JOBS: list[tuple[str, Task[Any, Any], str]] = [
    # (crontab, task, what it is for)
    ("* * * * *", dispatch_outbox_task, "hand committed events to notifications (safety net)"),
    ("* * * * *", deliver_due_task, "send due and retried notices"),
    ("30 2 * * *", settle_yesterday_task, "T+1 settlement of yesterday"),
    ("45 3 * * *", ledger_verify_task, "prove the ledger; a failure tells the provider's admins"),
    ("50 3 * * *", audit_verify_task, "prove the audit chain; a failure tells the provider's admins"),
    ("5 * * * *", expiry_sweep_task, "expiry notices (T-30, T-7, T-1, expired) not yet sent"),
    ("10 * * * *", expiry_suspend_task, "suspend terminals whose grace period ended"),
    ("15 * * * *", review_remind_task, "remind reviewers of applications due within hours"),
    ("* * * * *", closure_resume_task, "resume closure cases with a step due (retries, rechecks, crashes)"),
    ("20 * * * *", closure_review_remind_task, "remind and escalate closure reviews (7-day SLA)"),
    ("25 * * * *", complaint_sla_sweep_task, "escalate complaints and agent terminations left late"),
    ("40 4 * * *", closure_retention_sweep_task, "shred personal data of merchants closed past retention"),
    ("*/5 * * * *", device_commands_expire_task, "expire device commands not answered in time"),
    ("*/10 * * * *", tally_compact_task, "fold the fleet's counters into one row per agent, model, status"),
    ("35 0 * * *", month_end_close_task, "store the reports' figures of the months that ended"),
    ("5 0 * * *", day_end_close_task, "store the dashboards' terminal events of the days that ended"),
]

for schedule, job, _why in JOBS:
    cron(schedule, sentry_monitor_config=None)(job)
