"""The steps of a closure case (closure/states.py), one handler each, run by the step runner
(closure/runner.py, ADR 0022) outside any transaction. A handler answers an outcome: done (with its
evidence), waiting for whom, retry later, or needs attention. Each effect is keyed (a journal's unique
reference, the deposit's compare-and-set, the channel's and the device's idempotency keys
``<case>:<step>:…``), so a handler that runs again after a crash finds what it did and reads it back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
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
from posfleet.closure.common import audit_case, job_actor, new_certificate_code, progressed
from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.closure.states import Party, StepName
from posfleet.fleet import selectors as fleet
from posfleet.fleet.services import (
    device_command_send,
    device_credential_revoke,
    terminal_deregister,
    terminal_keys_revoke,
)
from posfleet.fleet.states import Status as TerminalStatus
from posfleet.parties.selectors import channel_bindings_of
from posfleet.parties.services import UnbindOutcome, channel_unbind
from posfleet.platform.clock import now, today

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


# -- the steps -----------------------------------------------------------------------------------------


def _entries(step: CaseStep) -> list[CaseTerminal]:
    return list(
        CaseTerminal.objects.filter(case_id=step.case_id)
        .select_related("terminal", "terminal__model", "contract")
        .order_by("pk")
    )


def _contract(step: CaseStep) -> Outcome:
    """End each terminal's contract (fees due charged, later ones lapse, penalty), then deregister it;
    its gateway key is revoked (at deactivation already, or here), so it can never sign on again."""
    case = step.case
    ended = []
    keys: dict[str, Any] = {}
    for entry in _entries(step):
        if entry.contract_id is not None:
            ended.append(
                contract_end(
                    actor=job_actor(), contract_id=entry.contract_id, ends_on=today(), why=case.number
                )
            )
        if entry.terminal.status == TerminalStatus.DEACTIVATED:
            terminal_deregister(actor=job_actor(), sn=entry.terminal.sn, reason="closure", note=case.number)
        key = terminal_keys_revoke(actor=job_actor(), sn=entry.terminal.sn, reason="closed")
        if key is not None and key.revoked_at is not None:
            keys[entry.terminal.sn] = {
                "kcv": key.master_kcv,
                "revoked_at": key.revoked_at.isoformat(),
                "reason": key.revoked_reason,
            }
    return Done(
        {
            "contracts": ended,
            "keys_revoked": keys,
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
        progressed(
            case,
            "escalated",
            reason="return_overdue",
            return_due_on=case.return_due_on.isoformat(),
            recovery_fee_fen=sum(c["amount_fen"] for c in charged.values()),
        )
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
