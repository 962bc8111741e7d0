"""The audit chain's job for the scheduler (config/schedule.py): safe to run twice."""

from __future__ import annotations

from django.tasks import task

from posfleet.audit.integrity import Outcome, report_check
from posfleet.audit.verify import verify_chain
from posfleet.platform.context import Actor


def audit_verify(*, actor: Actor) -> Outcome:
    """Prove the chain intact (`posfleet audit verify`), record the outcome, tell the admins if not."""
    result = verify_chain()
    outcome = Outcome("audit", "posfleet audit verify", result.checked, [] if result.ok else [result.problem])
    report_check(actor, outcome)
    return outcome


@task
def audit_verify_task() -> dict[str, object]:
    """The daily proof that the audit chain is intact."""
    outcome = audit_verify(actor=Actor.job("audit_verify"))
    return {"ok": outcome.ok, "checked": outcome.checked, "problems": len(outcome.problems)}
