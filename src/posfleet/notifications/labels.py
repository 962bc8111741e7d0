"""What notice kinds and event types are called on the pages and in the API: one mapping, translated
labels, never the codes (``terminal.deactivated``, ``terminal.status_changed``)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from posfleet.notifications.notices import ESCALATION, WEBHOOK

NOTICE_LABELS: dict[str, Any] = {
    "terminal.bound": _("Terminal bound"),
    "terminal.activated": _("Terminal activated"),
    "terminal.suspended": _("Terminal suspended"),
    "terminal.resumed": _("Terminal resumed"),
    "terminal.deactivated": _("Terminal deactivated"),
    "terminal.reactivated": _("Terminal reactivated"),
    "terminal.deregistered": _("Terminal deregistered"),
    "terminal.replaced": _("Terminal replaced"),
    "service.expiring": _("Service expiring"),
    "service.expiring_tomorrow": _("Service expires tomorrow"),
    "service.expired": _("Service expired"),
    "service.renewed": _("Service renewed"),
    "service.renewed_no_fee": _("Service renewed"),
    "service.renewal_offered": _("Renewal offer"),
    "application.submitted": _("Application submitted"),
    "application.info_requested": _("Application: more information needed"),
    "application.info_given": _("Application back for review"),
    "application.approved": _("Application approved"),
    "application.rejected": _("Application rejected"),
    "application.review_reminded": _("Application review due"),
    "application.shipped": _("Terminals shipped"),
    "application.completed": _("Application completed"),
    "closure.requested": _("Closure requested"),
    "closure.withdrawn": _("Closure withdrawn"),
    "closure.approved": _("Closure approved"),
    "closure.rejected": _("Closure rejected"),
    "closure.review_reminded": _("Closure review due"),
    "closure.review_late": _("Closure review late"),
    "closure.return_overdue": _("Device not returned"),
    "closure.contract_ended": _("Contract ended"),
    "closure.settled": _("Final settlement"),
    "closure.settled_nothing": _("Final settlement"),
    "closure.backup_ready": _("Data backup ready"),
    "closure.wiped": _("Device wiped"),
    "closure.return_instructions": _("Device return instructions"),
    "closure.inspected": _("Device inspected"),
    "closure.refunded": _("Deposit refunded"),
    "closure.refunded_owing": _("Deposit refunded, amount still owed"),
    "closure.certificate_ready": _("Closure certificate ready"),
    "closure.completed": _("Closure completed"),
    "closure.step_failed": _("Closure step needs attention"),
    "complaint.raised": _("Complaint raised"),
    "complaint.acknowledged": _("Complaint acknowledged"),
    "complaint.answered": _("Complaint answered"),
    "complaint.escalated": _("Complaint escalated"),
    "complaint.taken_over": _("Closure taken over by the provider"),
    "complaint.reopened": _("Complaint reopened"),
    "integrity.check_failed": _("Integrity check failed"),
    ESCALATION: _("Undelivered notice escalated"),
    WEBHOOK: _("Webhook event"),
}

# Every event type of the registry (platform/events.py): what a webhook delivery carries.
EVENT_LABELS: dict[str, Any] = {
    "terminal.status_changed": _("Terminal status changed"),
    "terminals.imported": _("Terminals imported"),
    "terminal.replaced": _("Terminal replaced"),
    "device.credential_changed": _("Device credential changed"),
    "device.firmware_changed": _("Device firmware changed"),
    "device.command_changed": _("Device command changed"),
    "device.relocation_alert_changed": _("Relocation alert changed"),
    "merchant.status_changed": _("Merchant status changed"),
    "channel.unbound": _("Payment channel unbound"),
    "channel.unbind_refused": _("Payment channel refused to unbind"),
    "service.expiry_milestone": _("Service expiry reminder"),
    "service.renewed": _("Service renewed"),
    "service.renewal_offered": _("Renewal offer"),
    "application.progressed": _("Application progressed"),
    "closure.progressed": _("Closure progressed"),
    "complaint.progressed": _("Complaint progressed"),
    "plan_change.progressed": _("Plan change request progressed"),
    "integrity.check_failed": _("Integrity check failed"),
}


def notice_label(key: str) -> str:
    """The translated name of notice kind ``key`` (in the active language); never the code itself."""
    label = NOTICE_LABELS.get(key)
    return str(label) if label is not None else str(_("Other notice"))


def event_label(event_type: str) -> str:
    """The translated name of event type ``event_type`` (in the active language)."""
    label = EVENT_LABELS.get(event_type)
    return str(label) if label is not None else str(_("Other event"))
