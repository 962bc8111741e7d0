"""The step runner of approved closure cases (ADR 0022): an in-house step table driven by django.tasks.

``advance(case_id)`` runs whatever the case can do now, one step at a time:

1. **claim** a step (its own short transaction): a pending step whose ``after`` steps are finished and
   whose retry time has come, a waiting step due for a new look, or a running step whose lease ran
   out (the worker that claimed it died). Compare-and-set on (state, attempts): of two workers one
   wins; the claim is committed, so a crash leaves a trace (``attempts``, ``started_at``).
2. **run** its handler outside any transaction (channels and devices are called over the network).
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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from posfleet.audit.vocabulary import EventType
from posfleet.billing.selectors import deposit_of_contract
from posfleet.billing.services.closure import (
    closure_charge,
    closure_credit,
    contract_end,
    deposit_settle,
    final_settlement,
)
from posfleet.closure.backup import backup_create
from posfleet.closure.common import (
    audit_case,
    job_actor,
    look_again,
    move,
    new_certificate_code,
    progressed,
)
from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.closure.states import (
    SPEC,
    CaseCommand,
    CaseStatus,
    Party,
    StepName,
    StepState,
    all_finished,
    runnable,
)
from posfleet.fleet import selectors as fleet
from posfleet.fleet.services import device_command_send, device_credential_revoke, terminal_deregister
from posfleet.fleet.states import Status as TerminalStatus
from posfleet.parties.selectors import channel_bindings_of
from posfleet.parties.services import UnbindOutcome, channel_unbind
from posfleet.platform.clock import now, today
from posfleet.platform.wake import after_commit

log = logging.getLogger(__name__)
CRASH_ENV = "POSFLEET_CLOSURE_CRASH"  # "<step>:<claimed|effect>": SIGKILL the process there (tests)
WIPE_EXPIRES = timedelta(days=7)
SETTLEMENT_RECHECK = timedelta(hours=1)
DEVICE_RECHECK = timedelta(minutes=1)


# -- outcomes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    evidence: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False


@dataclass(frozen=True)
class Wait:
    party: Party
    evidence: dict[str, Any] = field(default_factory=dict)
    recheck_at: datetime | None = None  # None: woken by the action it waits for
    message: str = ""


@dataclass(frozen=True)
class Retry:
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    after: timedelta | None = None


@dataclass(frozen=True)
class Fail:
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


Outcome = Done | Wait | Retry | Fail


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


# -- the steps -----------------------------------------------------------------------------------------


def _entries(step: CaseStep) -> list[CaseTerminal]:
    return list(
        CaseTerminal.objects.filter(case_id=step.case_id)
        .select_related("terminal", "terminal__model", "contract")
        .order_by("pk")
    )


def _contract(step: CaseStep) -> Outcome:
    """End each terminal's contract (fees due charged, later ones lapse, penalty), then deregister it."""
    case = step.case
    ended = []
    for entry in _entries(step):
        if entry.contract_id is not None:
            ended.append(
                contract_end(
                    actor=job_actor(), contract_id=entry.contract_id, ends_on=today(), why=case.number
                )
            )
        if entry.terminal.status == TerminalStatus.DEACTIVATED:
            terminal_deregister(actor=job_actor(), sn=entry.terminal.sn, reason="closure", note=case.number)
    return Done(
        {
            "contracts": ended,
            "penalty_fen": sum(e["penalty_fen"] for e in ended),
            "fees_charged_fen": sum(e["fees_charged_fen"] for e in ended),
            "fees_lapsed_fen": sum(e["fees_lapsed_fen"] for e in ended),
        }
    )


def _unbind(step: CaseStep) -> Outcome:
    """Unbind every payment channel of the case's terminals; a refusal needs a person, anything unsure
    is asked again later (never assumed)."""
    entries = _entries(step)
    results: dict[str, Any] = {}
    refused, retry_after = [], []
    for binding in channel_bindings_of([e.terminal_id for e in entries]):
        result = channel_unbind(
            actor=job_actor(), binding_id=binding.pk, idempotency_key=f"{step.key}:{binding.pk}"
        )
        results[f"{binding.terminal_id}:{binding.channel}"] = {"outcome": result.outcome, **result.evidence}
        if result.outcome == UnbindOutcome.REFUSED:
            refused.append(binding.channel)
        elif result.outcome == UnbindOutcome.RETRY:
            retry_after.append(result.retry_after or timedelta(seconds=30))
    evidence = {"channels": results}
    if refused:
        return Fail(
            _("The payment channel refused to unbind: %(channels)s.") % {"channels": ", ".join(refused)},
            evidence,
        )
    if retry_after:
        return Retry(_("A payment channel did not answer; asking again."), evidence, after=min(retry_after))
    return Done(evidence, skipped=not results)


def _settle(step: CaseStep) -> Outcome:
    """The final settlement: done once every sale of the case's terminals up to the day they stopped has
    been paid by its T+1 run (at once when none is waiting)."""
    case = step.case
    stopped_on = timezone.localdate(case.requested_at)
    terminal_ids = list(CaseTerminal.objects.filter(case=case).values_list("terminal_id", flat=True))
    result = final_settlement(merchant_id=case.merchant_id, terminal_ids=terminal_ids, stopped_on=stopped_on)
    if result is None:
        return Wait(
            Party.SETTLEMENT, {"stopped_on": stopped_on.isoformat()}, recheck_at=now() + SETTLEMENT_RECHECK
        )
    return Done(result)


def _backup(step: CaseStep) -> Outcome:
    """The merchant's data backup, once per case (before the device is wiped)."""
    backup = backup_create(actor=job_actor(), merchant_id=step.case.merchant_id, case_id=step.case_id)
    return Done(
        {"backup": backup.pk, "sha256": backup.sha256, "bytes": backup.size_bytes, "key_id": backup.key_id}
    )


def _wipe(step: CaseStep) -> Outcome:
    """Send each smart terminal's device a wipe (keyed by the step) and wait for its acknowledgement;
    then revoke its device credential. A device that never answers: its wipe expires, the credential is
    revoked all the same, and the warehouse wipes it on return."""
    devices: dict[str, Any] = dict((step.evidence or {}).get("devices", {}))
    waiting = False
    failed = []
    for entry in _entries(step):
        sn = entry.terminal.sn
        if entry.terminal.model.kind != "smart" or (
            fleet.device_credential_of(entry.terminal) is None and sn not in devices
        ):
            devices[sn] = {"wipe": "not_applicable"}
            continue
        record = devices.get(sn, {})
        if record.get("wipe") in ("acknowledged", "expired"):
            continue
        key = f"{step.key}:{sn}"
        command = fleet.device_command_by_key(key) or device_command_send(
            actor=job_actor(), sn=sn, kind="wipe", key=key, expires_in=WIPE_EXPIRES
        )
        record = {"wipe": command.status, "command": command.pk, "key": key}
        if command.status == "acknowledged":
            record["result"] = command.result
            record["acknowledged_at"] = (
                command.acknowledged_at.isoformat() if command.acknowledged_at else None
            )
        elif command.status == "failed":
            failed.append(sn)
            record["result"] = command.result
        elif command.status != "expired":
            waiting = True
        devices[sn] = record
    evidence = {"devices": devices}
    if failed:
        return Fail(
            _("The device reported that the wipe failed: %(sns)s.") % {"sns": ", ".join(failed)}, evidence
        )
    if waiting:
        return Wait(Party.DEVICE, evidence, recheck_at=now() + DEVICE_RECHECK)
    for entry in _entries(step):
        revoked = device_credential_revoke(
            actor=job_actor(), sn=entry.terminal.sn, reason="closure", note=step.case.number
        )
        if revoked is not None:
            devices.setdefault(entry.terminal.sn, {})["credential_revoked"] = revoked.key_id
    return Done(evidence)


def _return(step: CaseStep) -> Outcome:
    """Give the return instructions (address, deadline, the reference to write on the parcel) once, then
    wait for the warehouse to receive every device; past the deadline the recovery fee is charged for
    each device not back and the agent is told."""
    case = step.case
    if not case.return_reference:
        due = today() + timedelta(days=settings.POSFLEET_CLOSURE["RETURN_DAYS"])
        ClosureCase.objects.filter(pk=case.pk, return_reference="").update(
            return_address=settings.POSFLEET_CLOSURE["RETURN_ADDRESS"],
            return_due_on=due,
            return_reference=f"R-{case.number}",
        )
        case.refresh_from_db()
    entries = _entries(step)
    missing = [e for e in entries if e.received_at is None]
    evidence = {
        "address": case.return_address,
        "due_on": case.return_due_on.isoformat() if case.return_due_on else None,
        "reference": case.return_reference,
        "tracking_no": case.tracking_no,
        "received": {e.terminal.sn: e.received_at.isoformat() for e in entries if e.received_at},
    }
    if not missing:
        return Done(evidence)
    assert case.return_due_on is not None
    if today() <= case.return_due_on:
        deadline = timezone.make_aware(
            datetime.combine(case.return_due_on + timedelta(days=1), datetime.min.time())
        )
        return Wait(Party.MERCHANT, evidence, recheck_at=deadline)
    charged = {}
    for entry in missing:
        fee = entry.contract.recovery_fee_fen if entry.contract else 0
        charge = closure_charge(
            actor=job_actor(),
            merchant_id=case.merchant_id,
            organisation_id=case.merchant.organisation_id,
            kind="recovery",
            amount_fen=fee,
            reference=f"closure_recovery:{case.number}:{entry.terminal.sn}",
            memo=f"device {entry.terminal.sn} not returned, case {case.number}",
        )
        CaseTerminal.objects.filter(pk=entry.pk).update(recovery_fee_fen=fee)
        charged[entry.terminal.sn] = charge
    with transaction.atomic():
        audit_case(
            job_actor(), case, EventType.CLOSURE_ESCALATED, why="return_overdue", not_returned=sorted(charged)
        )
        progressed(case, "escalated", reason="return_overdue")
    return Done({**evidence, "not_returned": charged})


def _inspect(step: CaseStep) -> Outcome:
    """Done when every returned device is graded (a case whose devices all stayed away skips it)."""
    entries = _entries(step)
    returned = [e for e in entries if e.received_at is not None]
    if not returned:
        return Done({"inspected": {}}, skipped=True)
    evidence = {
        "inspected": {
            e.terminal.sn: {
                "grade": e.grade,
                "human_damage": e.human_damage,
                "damage_fen": e.damage_fen,
                "recovery_value_fen": e.recovery_value_fen,
                "disposal": e.disposal,
            }
            for e in returned
            if e.inspected_at is not None
        }
    }
    if any(e.inspected_at is None for e in returned):
        return Wait(Party.WAREHOUSE, evidence)
    return Done(evidence)


def _refund(step: CaseStep) -> Outcome:
    """Release each deposit of the case's contracts: what the merchant owes first, the rest refunded.
    Then credit the recovery value of each device returned as new (grade A, recorded at inspection):
    it pays what is still owed, the rest is paid out (one journal per device,
    ``closure_recovery_value:<case>:<sn>``)."""
    case = step.case
    entries = _entries(step)
    releases = []
    for entry in entries:
        if entry.contract_id is None:
            continue
        deposit_id = deposit_of_contract(entry.contract_id)
        if deposit_id is not None:
            releases.append(deposit_settle(actor=job_actor(), deposit_id=deposit_id, why=case.number))
    credits: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.grade != "A" or not entry.recovery_value_fen:
            continue
        sn = entry.terminal.sn
        credits[sn] = closure_credit(
            actor=job_actor(),
            merchant_id=case.merchant_id,
            organisation_id=case.merchant.organisation_id,
            amount_fen=entry.recovery_value_fen,
            reference=f"closure_recovery_value:{case.number}:{sn}",
            memo=f"recovery value, device {sn} returned as new, case {case.number}",
        )
    last = list(credits.values())[-1] if credits else releases[-1] if releases else None
    return Done(
        {
            "deposits": releases,
            "refund_fen": sum(r["refund_fen"] for r in releases),
            "paid_owed_fen": sum(r["paid_fees_fen"] + r["paid_penalties_fen"] for r in releases),
            "recovery_credits": credits,
            "recovery_credited_fen": sum(c["amount_fen"] for c in credits.values()),
            "recovery_paid_owed_fen": sum(
                c["paid_fees_fen"] + c["paid_penalties_fen"] for c in credits.values()
            ),
            "recovery_paid_out_fen": sum(c["paid_out_fen"] for c in credits.values()),
            "still_owed_fen": last["still_owed_fen"] if last is not None else 0,
        }
    )


def _certificate(step: CaseStep) -> Outcome:
    """Issue the certificate's verification code (once)."""
    case = step.case
    if not case.certificate_code:
        ClosureCase.objects.filter(pk=case.pk, certificate_code__isnull=True).update(
            certificate_code=new_certificate_code(), certificate_issued_at=now()
        )
        case.refresh_from_db()
    return Done(
        {
            "certificate_code": case.certificate_code,
            "issued_at": case.certificate_issued_at.isoformat() if case.certificate_issued_at else None,
        }
    )


HANDLERS = {
    StepName.CONTRACT: _contract,
    StepName.UNBIND: _unbind,
    StepName.SETTLE: _settle,
    StepName.BACKUP: _backup,
    StepName.WIPE: _wipe,
    StepName.RETURN: _return,
    StepName.INSPECT: _inspect,
    StepName.REFUND: _refund,
    StepName.CERTIFICATE: _certificate,
}
