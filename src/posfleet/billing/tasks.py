"""Money jobs for the scheduler (config/schedule.py): safe to run twice."""

from __future__ import annotations

from datetime import timedelta

from django.tasks import task

from posfleet.audit.integrity import Outcome, report_check
from posfleet.billing.models import SettlementRun
from posfleet.billing.services.settlement import settlement_run
from posfleet.billing.verify import verify_ledger
from posfleet.platform.clock import today
from posfleet.platform.context import Actor


def settle_yesterday() -> SettlementRun:
    """T+1: settle yesterday (Asia/Shanghai). A finished day is left as it is; an interrupted one
    resumes where it stopped."""
    return settlement_run(actor=Actor.job("settle_yesterday"), business_date=today() - timedelta(days=1))


@task
def settle_yesterday_task() -> dict[str, object]:
    """The scheduler's daily job: ``settle_yesterday`` and a summary of the run."""
    run = settle_yesterday()
    return {
        "business_date": run.business_date.isoformat(),
        "status": run.status,
        "merchants": run.merchants_done,
    }


def ledger_verify(*, actor: Actor) -> Outcome:
    """Prove the ledger (`posfleet ledger verify`), record the outcome, tell the admins if it fails."""
    report = verify_ledger()
    outcome = Outcome("ledger", "posfleet ledger verify", report.journals, report.problems)
    report_check(actor, outcome)
    return outcome


@task
def ledger_verify_task() -> dict[str, object]:
    """The daily proof that every journal balances and every balance equals its entries."""
    outcome = ledger_verify(actor=Actor.job("ledger_verify"))
    return {"ok": outcome.ok, "checked": outcome.checked, "problems": len(outcome.problems)}
