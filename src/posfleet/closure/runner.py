"""The step runner of approved closure cases (ADR 0022): an in-house step table driven by django.tasks.

``advance(case_id)`` runs whatever the case can do now, one step at a time:

1. **claim** a step (its own short transaction): a pending step whose ``after`` steps are finished and
   whose retry time has come, a waiting step due for a new look, or a running step whose lease ran
   out (the worker that claimed it died). Compare-and-set on (state, attempts): of two workers one
   wins; the claim is committed, so a crash leaves a trace (``attempts``, ``started_at``).
2. **run** its handler (closure/steps.py) outside any transaction (channels and devices are called
   over the network).
   Each effect is keyed: a journal's unique reference, the deposit's compare-and-set, the channel's
   and the device's idempotency keys ``<case>:<step>:…``. A handler that runs again after a crash
   finds what it did and reads it back: nothing takes effect twice.
3. **finish** (one transaction): compare-and-set from the claim, the outcome (done, waiting for whom,
   retry later with back-off, needs attention), the evidence, the audit row and the outbox event.

When the last step is done the case completes. A scheduled sweep (``resume_sweep``, every minute)
wakes every case with a step due, so a case resumes wherever it stopped, after any crash.
"""

from __future__ import annotations

import logging
import os
import signal
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Coalesce

from posfleet.audit.vocabulary import EventType
from posfleet.billing.selectors import amounts_owed
from posfleet.closure.common import (
    audit_case,
    job_actor,
    look_again,
    move,
    progressed,
)
from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.closure.states import (
    SPEC,
    CaseCommand,
    CaseStatus,
    StepName,
    StepState,
    all_finished,
    runnable,
)
from posfleet.closure.steps import HANDLERS, Done, Outcome, Retry, Wait
from posfleet.platform.clock import now
from posfleet.platform.wake import after_commit

log = logging.getLogger(__name__)
CRASH_ENV = "POSFLEET_CLOSURE_CRASH"  # "<step>:<claimed|effect>": SIGKILL the process there (tests)


def _crash_point(step: str, phase: str) -> None:
    """A real ``kill -9`` of this process at ``phase`` of ``step`` when the environment asks for it."""
    if os.environ.get(CRASH_ENV) == f"{step}:{phase}":
        os.kill(os.getpid(), signal.SIGKILL)


# -- the loop ------------------------------------------------------------------------------------------


def advance(case_id: int, *, limit: int = 50) -> str:
    """Run the steps of case ``case_id`` that can run now; returns the case's status afterwards."""
    finished = True
    for _round in range(limit):
        claimed, finished = _claim(case_id)
        if claimed is None:
            break
        step, attempts = claimed
        _crash_point(step.name, "claimed")
        try:
            outcome = HANDLERS[StepName(step.name)](step)
        except Exception as exc:
            outcome = Retry(f"{type(exc).__name__}: {exc}"[:480])
        _crash_point(step.name, "effect")
        _finish(step, attempts, outcome)
    else:  # still steps to run after ``limit`` rounds: hand the rest to another task
        with transaction.atomic():
            after_commit("closure.advance", case_id, once=True)
    if not finished:  # the last look saw a step still to do: the case cannot complete yet
        return CaseStatus.RUNNING
    return _maybe_complete(case_id)


def _due(at: datetime) -> Q:
    """Steps to claim now (their ``after`` steps are checked from the case's states)."""
    return (
        (Q(state=StepState.PENDING) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=at)))
        | (Q(state=StepState.WAITING) & Q(next_attempt_at__lte=at))
        | (Q(state=StepState.RUNNING) & Q(lease_until__lt=at))
    )


def _claim(case_id: int) -> tuple[tuple[CaseStep, int] | None, bool]:
    """(the step claimed and its attempt, or None; whether every step of the running case was
    finished at this look — also True when the case is not running)."""
    at = now()
    with transaction.atomic():
        # One read: the running case's steps, each with whether it is due now, and the case itself.
        steps = list(
            CaseStep.objects.filter(case_id=case_id, case__status=CaseStatus.RUNNING)
            .select_related("case__merchant__organisation")
            .annotate(due=ExpressionWrapper(_due(at), output_field=BooleanField()))
        )
        states = {s.name: s.state for s in steps}
        order = {name: i for i, name in enumerate(SPEC)}
        for step in sorted((s for s in steps if s.due), key=lambda s: order[StepName(s.name)]):
            if step.state == StepState.PENDING and step.name not in runnable(states):
                continue
            lease = at + timedelta(seconds=settings.POSFLEET_CLOSURE["STEP_LEASE_SECONDS"])
            won = CaseStep.objects.filter(pk=step.pk, state=step.state, attempts=step.attempts).update(
                state=StepState.RUNNING,
                attempts=step.attempts + 1,
                lease_until=lease,
                started_at=step.started_at or at,
                next_attempt_at=None,  # a ``look_again`` while it runs sets it (see _finish)
            )
            if won:
                step.attempts += 1
                return (step, step.attempts), False
    return None, not steps or all_finished(states)


def _finish(step: CaseStep, attempts: int, outcome: Outcome) -> None:
    at = now()
    case = step.case  # read with the claim (its status only changes once every step is finished)
    with transaction.atomic():
        current = CaseStep.objects.filter(pk=step.pk, state=StepState.RUNNING, attempts=attempts)
        evidence = {**(step.evidence or {}), **outcome.evidence}
        if isinstance(outcome, Done):
            state = StepState.SKIPPED if outcome.skipped else StepState.DONE
            if not current.update(
                state=state, evidence=evidence, finished_at=at, lease_until=None, waiting_for="", message=""
            ):
                return  # someone re-claimed the step after our lease ran out: theirs counts
            audit_case(
                job_actor(), case, EventType.CLOSURE_STEP_DONE, step=step.name, state=state, evidence=evidence
            )
            progressed(case, step.name, state=state, **_event_extra(case, step.name, evidence))
            # No wake here: ``advance`` goes on claiming the steps this one unblocked.
        elif isinstance(outcome, Wait):
            first = step.state != StepState.WAITING or step.waiting_for != outcome.party
            # A look asked for while the handler ran (``look_again``) comes first: what it waits for
            # may have happened after the handler read, so the step is looked at again at once.
            recheck: F | Coalesce = F("next_attempt_at")
            if outcome.recheck_at is not None:
                recheck = Coalesce(F("next_attempt_at"), Value(outcome.recheck_at, DateTimeField()))
            if not current.update(
                state=StepState.WAITING,
                waiting_for=outcome.party,
                waiting_since=step.waiting_since if not first and step.waiting_since else at,
                next_attempt_at=recheck,
                lease_until=None,
                evidence=evidence,
                message=outcome.message[:500],
            ):
                return
            if first:
                audit_case(
                    job_actor(),
                    case,
                    EventType.CLOSURE_STEP_WAITING,
                    step=step.name,
                    waiting_for=outcome.party,
                )
                progressed(
                    case,
                    step.name,
                    state="waiting",
                    waiting_for=outcome.party,
                    **_event_extra(case, step.name, evidence),
                )
        elif isinstance(outcome, Retry):
            base = settings.POSFLEET_CLOSURE["RETRY_BASE_SECONDS"]
            delay = outcome.after or timedelta(
                seconds=min(settings.POSFLEET_CLOSURE["RETRY_MAX_SECONDS"], base * 2 ** min(attempts - 1, 16))
            )
            current.update(
                state=StepState.PENDING,
                next_attempt_at=at + delay,
                lease_until=None,
                evidence=evidence,
                message=outcome.message[:500],
            )
        else:
            if not current.update(
                state=StepState.FAILED, lease_until=None, evidence=evidence, message=outcome.message[:500]
            ):
                return
            audit_case(
                job_actor(),
                case,
                EventType.CLOSURE_STEP_FAILED,
                step=step.name,
                message=outcome.message[:200],
            )
            progressed(case, step.name, state="failed")


def _event_extra(case: ClosureCase, step: str, evidence: dict[str, Any]) -> dict[str, Any]:
    """The facts a step's notice states (its event's payload): dates and amounts from its evidence."""
    if step == StepName.CONTRACT:
        ended = [c.get("ended_on") or "" for c in evidence.get("contracts", [])]
        return {
            "ended_on": max(ended, default=""),
            "penalty_fen": int(evidence.get("penalty_fen", 0)),
            "still_owed_fen": sum(amounts_owed(case.merchant.organisation_id)),
        }
    if step == StepName.SETTLE:
        return {
            "paid_fen": int(evidence.get("paid_fen", 0)),
            "paid_on": max((b.get("paid_on") or "" for b in evidence.get("batches", [])), default=""),
        }
    if step == StepName.INSPECT:
        inspected = evidence.get("inspected", {})
        return {
            "damage_fen": sum(int(i.get("damage_fen") or 0) for i in inspected.values()),
            "grades": ", ".join(f"{sn}: {i.get('grade') or '—'}" for sn, i in sorted(inspected.items())),
        }
    if step == StepName.RETURN:
        return {
            "return_address": case.return_address,
            "return_due_on": case.return_due_on.isoformat() if case.return_due_on else "",
            "return_reference": case.return_reference,
        }
    if step == StepName.REFUND:
        return {
            "refund_fen": int(evidence.get("refund_fen", 0)),
            "still_owed_fen": int(evidence.get("still_owed_fen", 0)),
        }
    if step == StepName.CERTIFICATE:
        return {"certificate_code": case.certificate_code or ""}
    return {}


def _maybe_complete(case_id: int) -> str:
    with transaction.atomic():
        case = (
            ClosureCase.objects.select_for_update()
            .select_related("merchant__organisation")
            .filter(pk=case_id)
            .first()
        )
        if case is None:
            return ""
        if case.status != CaseStatus.RUNNING:
            return case.status
        states = dict(CaseStep.objects.filter(case=case).values_list("name", "state"))
        if not all_finished(states):
            return case.status
        move(case, CaseCommand.COMPLETE, ended_at=now())
        CaseTerminal.objects.filter(case=case, open=True).update(open=False)
        audit_case(job_actor(), case, EventType.CLOSURE_COMPLETED, certificate_code=case.certificate_code)
        progressed(case, "completed", certificate_code=case.certificate_code or "")
    return case.status


def due_case_ids() -> list[int]:
    """The running cases with a step due now (after a crash, a retry time, a recheck)."""
    return list(
        CaseStep.objects.filter(case__status=CaseStatus.RUNNING)
        .filter(_due(now()))
        .values_list("case_id", flat=True)
        .order_by("case_id")
        .distinct()
    )


def on_device_answer(message: Any) -> None:
    """Outbox handler: a device answered (or gave up on) a wipe this runner sent — look at the case's
    wipe step now rather than at its next minute. Idempotent: it only moves the next look forward."""
    if message.event_type != "device.command_changed":
        return
    payload = message.payload or {}
    key = str(payload.get("key", ""))
    if payload.get("status") not in ("acknowledged", "failed", "expired") or f":{StepName.WIPE}:" not in key:
        return
    step_key = key.rsplit(":", 1)[0]  # "<case>:wipe:<sn>" → "<case>:wipe"
    case_id = CaseStep.objects.filter(key=step_key).values_list("case_id", flat=True).first()
    if case_id is not None:
        with transaction.atomic():
            look_again(case_id, StepName.WIPE)


def resume_sweep() -> int:
    """Wake every running case with a step due now: the scheduler runs it every minute. Returns how
    many cases were woken."""
    ids = due_case_ids()
    for case_id in ids:
        with transaction.atomic():
            after_commit("closure.advance", case_id, once=True)
    return len(ids)
