"""The daily integrity checks' report: `posfleet audit verify` (audit/tasks.py) and `posfleet ledger
verify` (billing/tasks.py) each run by the scheduler (config/schedule.py). Every run leaves an audit
row with its outcome; a failed check also publishes ``integrity.check_failed``, which tells the
provider's admins (notifications/notices.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.platform.clock import today
from posfleet.platform.context import Actor
from posfleet.platform.events import DomainEvent, publish

MAX_PROBLEM = 300  # characters of the first problem carried by the event and the audit row


@dataclass(frozen=True, kw_only=True)
class IntegrityCheckFailed(DomainEvent):
    """A daily check found the ledger or the audit chain broken: ``problems`` of them, the first
    ``first_problem``; ``command`` lists them all."""

    name = "integrity.check_failed"
    aggregate_type = "integrity_check"

    check: str
    problems: int
    first_problem: str
    command: str


@dataclass(frozen=True)
class Outcome:
    check: str  # "ledger" or "audit"
    command: str  # what lists every problem
    checked: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def report_check(actor: Actor, outcome: Outcome) -> None:
    """Record the outcome (an audit row) and, when it failed, announce it, in one transaction."""
    first = outcome.problems[0][:MAX_PROBLEM] if outcome.problems else ""
    with transaction.atomic():
        record(
            actor,
            Entry(
                event_type=EventType.INTEGRITY_VERIFIED,
                subject_type="integrity_check",
                subject_id=outcome.check,
                outcome="success" if outcome.ok else "failure",
                after={"checked": outcome.checked, "problems": len(outcome.problems), "first": first},
            ),
        )
        if not outcome.ok:
            publish(
                [
                    IntegrityCheckFailed(
                        aggregate_id=f"{outcome.check}:{today().isoformat()}",
                        check=outcome.check,
                        problems=len(outcome.problems),
                        first_problem=first,
                        command=outcome.command,
                    )
                ]
            )
