"""What every closure service and the step runner share: the job actor that acts for a case, finding a
case the actor may see, moving its status through the table (closure/states.py) with compare-and-set,
its audit row and its outbox event."""

from __future__ import annotations

import secrets
from typing import Any

from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.closure.events import ClosureProgressed
from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.closure.states import (
    CaseCommand,
    CaseStatus,
    StepState,
    commands_from,
    next_state,
)
from posfleet.iam.selectors import organisations_told
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    Conflict,
    NotFound,
    TransitionNotAllowed,
)
from posfleet.platform.events import publish
from posfleet.platform.wake import after_commit

JOB = "closure"  # the job actor that moves the fleet and the money on a case's behalf


def job_actor() -> Actor:
    return Actor.job(JOB)


def case_for(actor: Actor, number: str, *, lock: bool = False) -> ClosureCase:
    """The case ``number`` if ``actor`` may see it (404 otherwise), optionally row-locked."""
    qs = ClosureCase.objects.select_related(
        "merchant", "merchant__organisation", "merchant__agent__organisation"
    )
    if lock:
        qs = qs.select_for_update(of=("self",))
    case = qs.filter(number=(number or "").strip().upper()[:20]).first()
    if case is None:
        raise NotFound()
    actor.must_see("closure.view_closure", case.merchant)
    return case


def move(case: ClosureCase, command: CaseCommand, **fields: Any) -> None:
    """Compare-and-set the case's status to where the table leads; a lost race is a Conflict (409)."""
    source = case.status
    target = next_state(source, command)
    if target is None:
        raise TransitionNotAllowed(
            _("This is not possible while the closure is “%(status)s”.")
            % {"status": CaseStatus(source).label},
            current_status=source,
            allowed=[c.value for c in commands_from(source)],
        )
    if not ClosureCase.objects.filter(pk=case.pk, status=source).update(status=target, **fields):
        raise Conflict()
    case.status = target
    for name, value in fields.items():
        setattr(case, name, value)


# -- shared ---------------------------------------------------------------------------------------------


def new_certificate_code() -> str:
    """A certificate's public verification code: 12 characters anyone can type, no 0/O or 1/I."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def look_again(case_id: int, step: str) -> None:
    """Something a step waits for happened (a device answered, the warehouse received or graded): ask
    the runner to look at the step now rather than at its next scheduled look. A step being run right
    now counts too: its handler may have read before this change, so its runner keeps this earlier
    look when it records the wait (``runner._finish``) and looks again at once. Call inside the
    change's transaction; the case's runner is woken after it commits."""
    CaseStep.objects.filter(
        case_id=case_id, name=step, state__in=(StepState.WAITING, StepState.RUNNING)
    ).update(next_attempt_at=now())
    after_commit("closure.advance", case_id, once=True)


def organisations_of(case: ClosureCase) -> tuple[int, ...]:
    """Who hears of the case: the provider, the agents above the merchant, the merchant."""
    return organisations_told(case.merchant.organisation.path)


def progressed(case: ClosureCase, step: str, **extra: Any) -> None:
    terminals = ",".join(
        CaseTerminal.objects.filter(case=case).order_by("pk").values_list("terminal__sn", flat=True)
    )
    publish(
        [
            ClosureProgressed(
                aggregate_id=case.number,
                organisation_ids=organisations_of(case),
                step=step,
                status=case.status,
                merchant=case.merchant.mid,
                terminals=terminals,
                review_due_at=case.review_due_at.isoformat(),
                **extra,
            )
        ]
    )


def audit_case(actor: Actor, case: ClosureCase, event: EventType, **after: Any) -> None:
    note = str(after.pop("note", "") or "")
    record(
        actor,
        Entry(
            event_type=event,
            subject_type="closure",
            subject_id=case.number,
            reason=str(after.pop("why", "") or ""),
            note=note,
            after={"status": case.status, **after},
        ),
    )
