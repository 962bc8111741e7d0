"""The returned device at the warehouse (DOMAIN.md workflow 4 step 8): received by scanning its SN,
then graded A/B/C — damage a person caused is charged per the contract's price list, other damage is
repaired free; a device as new (A) records the contract's recovery value, which the refund step
credits — and refurbished to stock or scrapped. Each wakes the case's runner."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from posfleet.audit.services import clean_text
from posfleet.audit.vocabulary import EventType
from posfleet.billing.services.closure import closure_charge
from posfleet.closure.common import audit_case, job_actor, look_again
from posfleet.closure.models import CaseStep, CaseTerminal
from posfleet.closure.states import (
    StepName,
    StepState,
)
from posfleet.fleet.services import (
    terminal_receive_return,
    terminal_refurbish,
    terminal_scrap,
)
from posfleet.fleet.states import Status as TerminalStatus
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    Conflict,
    NotFound,
    TransitionNotAllowed,
    ValidationFailed,
)

GRADES = ("A", "B", "C")
DISPOSALS = ("refurbish", "scrap")


# -- the warehouse --------------------------------------------------------------------------------------


def _open_entry(actor: Actor, sn: str) -> CaseTerminal:
    entry = (
        CaseTerminal.objects.select_for_update(of=("self",))
        .select_related("case", "terminal", "case__merchant", "case__merchant__organisation", "contract")
        .filter(terminal__sn=(sn or "").strip().upper()[:32], open=True)
        .first()
    )
    if entry is None:
        raise NotFound(_("No open closure case expects this device."))
    actor.require("closure.handle_return", entry.case.merchant)
    return entry


def closure_receive(*, actor: Actor, sn: str, note: str = "") -> CaseTerminal:
    """The warehouse scans a returned device's SN: the terminal is received (fleet), and the case's
    return step is done once every device of it is back or past its deadline."""
    note = clean_text(note or "", 500)
    with transaction.atomic():
        entry = _open_entry(actor, sn)
        step = CaseStep.objects.filter(case=entry.case, name=StepName.RETURN).first()
        if step is None or step.state not in (StepState.WAITING, StepState.RUNNING, StepState.PENDING):
            raise TransitionNotAllowed(
                _("This case is not waiting for the device."), current_status=entry.case.status
            )
        if entry.received_at is not None:
            raise Conflict(_("This device was received already."))
        if entry.terminal.status != TerminalStatus.DEREGISTERED:
            raise TransitionNotAllowed(
                _("The terminal is “%(status)s”: it is received once it is deregistered.")
                % {"status": TerminalStatus(entry.terminal.status).label},
                current_status=entry.terminal.status,
            )
        terminal_receive_return(actor=job_actor(), sn=entry.terminal.sn, note=entry.case.number)
        entry.received_at = now()
        CaseTerminal.objects.filter(pk=entry.pk, received_at__isnull=True).update(
            received_at=entry.received_at
        )
        audit_case(actor, entry.case, EventType.CLOSURE_DEVICE_RECEIVED, sn=entry.terminal.sn, note=note)
        look_again(entry.case_id, StepName.RETURN)
    return entry


def closure_inspect(
    *, actor: Actor, sn: str, grade: str, human_damage: bool = False, note: str = "", disposal: str = ""
) -> CaseTerminal:
    """Grade a received device A/B/C. Damage a person caused is charged per the contract's price list
    for the grade (other damage is repaired free); a device as new (A) records the contract's recovery
    value, credited to the merchant by the refund step; then the device is refurbished to stock or
    scrapped."""
    grade = (grade or "").strip().upper()
    if grade not in GRADES:
        raise ValidationFailed(_("Grade the device A, B or C."), field="grade", allowed=list(GRADES))
    if disposal not in DISPOSALS:
        raise ValidationFailed(_("Refurbish or scrap the device."), field="disposal", allowed=list(DISPOSALS))
    if not isinstance(human_damage, bool):
        raise ValidationFailed(_("Say whether a person caused the damage."), field="human_damage")
    note = clean_text(note or "", 500)
    if grade == "C" and not note.strip():
        raise ValidationFailed(_("Describe the damage in the notes."), field="note")
    if grade == "A" and human_damage:
        raise ValidationFailed(_("A device as new has no damage."), field="human_damage")
    with transaction.atomic():
        entry = _open_entry(actor, sn)
        if entry.received_at is None:
            raise TransitionNotAllowed(
                _("The device has not been received yet."), current_status=entry.terminal.status
            )
        if entry.inspected_at is not None:
            raise Conflict(_("This device was inspected already."))
        prices = (entry.contract.damage_prices if entry.contract else {}) or {}
        damage = int(prices.get(grade, 0)) if human_damage else 0
        recovery_value = entry.contract.recovery_value_fen if entry.contract and grade == "A" else 0
        at = now()
        if not CaseTerminal.objects.filter(pk=entry.pk, inspected_at__isnull=True).update(
            grade=grade,
            human_damage=human_damage,
            inspection_note=note,
            inspected_at=at,
            damage_fen=damage,
            recovery_value_fen=recovery_value,
            disposal=disposal,
        ):
            raise Conflict()
        charge = closure_charge(
            actor=job_actor(),
            merchant_id=entry.case.merchant_id,
            organisation_id=entry.case.merchant.organisation_id,
            kind="damage",
            amount_fen=damage,
            reference=f"closure_damage:{entry.case.number}:{entry.terminal.sn}",
            memo=f"damage, grade {grade}, {entry.terminal.sn}, case {entry.case.number}",
        )
        if disposal == "refurbish":
            terminal_refurbish(actor=job_actor(), sn=entry.terminal.sn, note=entry.case.number)
        else:
            terminal_scrap(
                actor=job_actor(), sn=entry.terminal.sn, reason="beyond_repair", note=entry.case.number
            )
        audit_case(
            actor,
            entry.case,
            EventType.CLOSURE_DEVICE_INSPECTED,
            sn=entry.terminal.sn,
            grade=grade,
            human_damage=human_damage,
            damage_fen=damage,
            journal=charge["journal"],
            recovery_value_fen=recovery_value,
            disposal=disposal,
            note=note,
        )
        look_again(entry.case_id, StepName.INSPECT)
    entry.refresh_from_db()
    return entry
