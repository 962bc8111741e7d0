"""What is said to whom: which events make which notices, and their words in Chinese and English.

An event (an outbox message) makes zero or more ``Notice``s, each for an audience ("merchant": the
merchant's users and its contact; "agent": the users of the agent that serves it) over some channels.
A channel list with SMS marks a time-critical notice: it also goes by SMS where the merchant has a
mobile number (``services._deliveries`` holds that one rule). Webhooks are not here: every event goes to
the endpoints that subscribed to it, as JSON.

The words are gettext strings with ``%(name)s`` placeholders, filled from a notice's parameters: the
event's payload and a few facts of the recipient's world (``services.params_of``), all of them
language-neutral — ISO dates, integer fen. ``rendering.render`` formats them in the reader's language:
a payload field named ``*_on`` is a date, ``*_at``/``*_until`` a moment, ``*_fen`` an amount (shown as
``*``, e.g. ``refund_fen`` as ``%(refund)s``), and ``when``/``day`` are when the event happened. So an
in-app notice is rendered when it is read, in the reader's language of the moment, and an e-mail or SMS
when it is sent (ADR 0026). Their labels: ``labels.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from posfleet.closure.states import StepName
from posfleet.fleet.states import RESERVED_REASONS, Command
from posfleet.notifications.models import Channel

MERCHANT, AGENT, STAFF, ADMINS = "merchant", "agent", "staff", "admins"
ALL = (Channel.INBOX, Channel.EMAIL, Channel.SMS)  # time-critical: by SMS too, where there is a mobile
QUIET = (Channel.INBOX, Channel.EMAIL)
INBOX = (Channel.INBOX,)
ESCALATION, WEBHOOK = "escalation", "webhook"  # notices of their own (services.escalate, webhooks)


@dataclass(frozen=True)
class Words:
    subject: Any  # a lazy gettext string with %(name)s placeholders
    body: Any


@dataclass(frozen=True)
class Notice:
    key: str
    audiences: dict[str, tuple[str, ...]] = field(default_factory=dict)  # audience → channels


WORDS: dict[str, Words] = {
    "terminal.bound": Words(
        _("Terminal %(tid)s is bound to your shop"),
        _(
            "Terminal %(sn)s has been bound to %(merchant_name)s with terminal ID %(tid)s. "
            "Next: the test transaction (swipe, scan and print) activates it."
        ),
    ),
    "terminal.activated": Words(
        _("Terminal %(tid)s is active"),
        _("Terminal %(tid)s (SN %(sn)s) was activated on %(when)s and can take payments now."),
    ),
    "terminal.suspended": Words(
        _("Terminal %(tid)s is suspended"),
        _(
            "Terminal %(tid)s (SN %(sn)s) was suspended on %(when)s. Reason: %(reason)s. "
            "It takes no payments until it is resumed; money already taken is still settled."
        ),
    ),
    "terminal.resumed": Words(
        _("Terminal %(tid)s takes payments again"),
        _("Terminal %(tid)s (SN %(sn)s) was resumed on %(when)s."),
    ),
    "terminal.deactivated": Words(
        _("Terminal %(tid)s is deactivated"),
        _(
            "Terminal %(tid)s (SN %(sn)s) was deactivated on %(when)s. Reason: %(reason)s. "
            "It can be reactivated until %(reactivate_until)s; after that it can only be closed for good."
        ),
    ),
    "terminal.reactivated": Words(
        _("Terminal %(tid)s is active again"),
        _("Terminal %(tid)s (SN %(sn)s) was reactivated on %(when)s and can take payments."),
    ),
    "terminal.deregistered": Words(
        _("Terminal %(tid)s is closed"),
        _(
            "Terminal %(tid)s (SN %(sn)s) was deregistered on %(when)s. Reason: %(reason)s. "
            "Please return the device; the final settlement and any deposit refund follow."
        ),
    ),
    "service.expiring": Words(
        _("Service of terminal %(tid)s expires in %(days_left)s days"),
        _(
            "The service (and SIM) of terminal %(tid)s (SN %(sn)s) runs until %(expires_on)s. Renew it "
            "before then to keep taking payments without a break."
        ),
    ),
    "service.expiring_tomorrow": Words(
        _("Service of terminal %(tid)s expires tomorrow"),
        _(
            "The service (and SIM) of terminal %(tid)s (SN %(sn)s) ends on %(expires_on)s. Renew it today "
            "to keep taking payments without a break."
        ),
    ),
    "service.expired": Words(
        _("Service of terminal %(tid)s has expired"),
        _(
            "The service of terminal %(tid)s (SN %(sn)s) expired on %(expires_on)s. It keeps working "
            "during the grace period and will be suspended on %(suspend_on)s unless it is renewed."
        ),
    ),
    "service.renewed": Words(
        _("Service of terminal %(tid)s renewed"),
        _(
            "The service of terminal %(tid)s (SN %(sn)s) now runs until %(expires_on)s. The renewal fee "
            "of %(fee)s fell due on %(fee_due_on)s and is deducted from your next settlement."
        ),
    ),
    "service.renewed_no_fee": Words(
        _("Service of terminal %(tid)s renewed"),
        _("The service of terminal %(tid)s (SN %(sn)s) now runs until %(expires_on)s."),
    ),
    "terminal.replaced": Words(
        _("Terminal %(tid)s is replaced by terminal %(new_tid)s"),
        _(
            "Terminal %(tid)s (SN %(sn)s) was replaced on %(when)s by terminal %(new_tid)s "
            "(SN %(replaced_by)s). The new terminal keeps your store, service contract, deposit and "
            "service period (until %(service_expires_on)s). Please return the old device."
        ),
    ),
    "application.submitted": Words(
        _("Application %(number)s received"),
        _(
            "Application %(number)s from %(shop_name)s (terminals: %(terminal_count)s) is waiting for "
            "review. The review is due by %(review_due)s."
        ),
    ),
    "application.info_requested": Words(
        _("Application %(number)s: more information needed"),
        _(
            "The reviewer needs more information on application %(number)s (%(shop_name)s): “%(reason)s”. "
            "Add it on the application's page; review continues when you send it back."
        ),
    ),
    "application.info_given": Words(
        _("Application %(number)s is back for review"),
        _("The applicant added the information asked for on application %(number)s (%(shop_name)s)."),
    ),
    "application.approved": Words(
        _("Application %(number)s approved"),
        _(
            "Application %(number)s (%(shop_name)s) was approved. Next the terminals are reserved and "
            "shipped; you will get the tracking number."
        ),
    ),
    "application.rejected": Words(
        _("Application %(number)s rejected"),
        _("Application %(number)s (%(shop_name)s) was rejected. Reason: %(reason)s"),
    ),
    "application.review_reminded": Words(
        _("Review of application %(number)s is due"),
        _("Application %(number)s (%(shop_name)s) must be reviewed by %(review_due)s."),
    ),
    "application.shipped": Words(
        _("Your terminals are on the way"),
        _(
            "The terminals of application %(number)s (%(terminal_count)s in all) were shipped with "
            "%(carrier)s, tracking number %(tracking_no)s. Confirm the delivery on the application's page "
            "when they arrive."
        ),
    ),
    "application.completed": Words(
        _("Application %(number)s is complete"),
        _(
            "All terminals of application %(number)s (%(shop_name)s) passed their test transaction "
            "and are active."
        ),
    ),
    "service.renewal_offered": Words(
        _("Renew terminal %(tid)s for another year"),
        _(
            "The service of terminal %(tid)s (SN %(sn)s) runs until %(expires_on)s. Renewing it for a year "
            "costs %(fee)s, due on the day you renew and deducted from the next settlement: renew on the "
            "Expiry calendar page, in one click."
        ),
    ),
    "integrity.check_failed": Words(
        _("Integrity check failed: %(check)s"),
        _(
            "The daily %(check)s check found %(problems)s problem(s). The first: “%(first_problem)s”. "
            "Run `%(command)s` on the server to list them, and find out what changed the data "
            "before anything else writes to it."
        ),
    ),
    "escalation": Words(
        _("A notice to merchant %(merchant_name)s could not be delivered"),
        _(
            "We could not deliver “%(subject)s” to merchant %(merchant_name)s (%(mid)s) by %(channel)s "
            "after %(attempts)s attempts. Please contact the merchant."
        ),
    ),
}

# closure.progressed (注销, DOMAIN.md workflow 4): ``number`` is the case, ``terminals`` its SNs, ``merchant``
# its MID; the amounts (``refund``, ``still_owed``, ``penalty``, ``paid``, ``damage``, ``recovery_fee``) and
# dates (``review_due_at``, ``ended_on``, ``paid_on``, ``return_due_on``) come from the event's payload,
# ``step_label`` is the step's name (``rendering.closure_values``).
WORDS.update(
    {
        "closure.requested": Words(
            _("Closure %(number)s requested"),
            _(
                "The closure of terminal(s) %(terminals)s of %(merchant_name)s (MID %(merchant)s) was "
                "requested on %(when)s. Reason: %(reason)s. The terminals no longer take payments; the "
                "request is reviewed by %(review_due_at)s, and it can be withdrawn until then."
            ),
        ),
        "closure.withdrawn": Words(
            _("Closure %(number)s withdrawn"),
            _(
                "The closure request %(number)s for terminal(s) %(terminals)s was withdrawn. Terminals "
                "that were active before take payments again."
            ),
        ),
        "closure.approved": Words(
            _("Closure %(number)s approved"),
            _(
                "The closure of terminal(s) %(terminals)s of %(merchant_name)s was approved. Next: the "
                "contract ends, the last sales are settled, the payment channels are unbound, the data is "
                "backed up and the device is asked back. You hear of each step."
            ),
        ),
        "closure.rejected": Words(
            _("Closure %(number)s rejected"),
            _(
                "The closure request %(number)s for terminal(s) %(terminals)s was rejected; terminals that "
                "were active before take payments again. The closure's page says why."
            ),
        ),
        "closure.review_reminded": Words(
            _("Review of closure %(number)s is due"),
            _(
                "The closure request %(number)s of %(merchant_name)s (MID %(merchant)s, terminal(s) "
                "%(terminals)s) waits for review; it is due by %(review_due_at)s."
            ),
        ),
        "closure.review_late": Words(
            _("Closure %(number)s: review is late"),
            _(
                "The closure request %(number)s of %(merchant_name)s (MID %(merchant)s) passed its review "
                "deadline (%(review_due_at)s) without a decision. Please see that someone decides now."
            ),
        ),
        "closure.return_overdue": Words(
            _("Closure %(number)s: device not returned"),
            _(
                "The device(s) of terminal(s) %(terminals)s (closure %(number)s, %(merchant_name)s) did "
                "not reach the warehouse by %(return_due_on)s. A recovery fee of %(recovery_fee)s was "
                "charged; it is taken from the deposit."
            ),
        ),
        "closure.contract_ended": Words(
            _("Closure %(number)s: contract ended"),
            _(
                "The service contract of terminal(s) %(terminals)s ended on %(ended_on)s: the service fees "
                "due by then were charged and later ones are cancelled. Early-termination penalty: "
                "%(penalty)s. Owed in all: %(still_owed)s, due on %(ended_on)s; it is deducted from your "
                "final settlement or taken from your deposit."
            ),
        ),
        "closure.settled": Words(
            _("Closure %(number)s: final settlement done"),
            _(
                "Your last sales up to the closure were settled: %(paid)s was paid to your settlement "
                "account on %(paid_on)s (the final T+1 settlement, less any service fee owed)."
            ),
        ),
        "closure.settled_nothing": Words(
            _("Closure %(number)s: final settlement done"),
            _(
                "No sales of the closed terminals were left to settle: the final settlement pays nothing "
                "more."
            ),
        ),
        "closure.backup_ready": Words(
            _("Closure %(number)s: your data backup is ready"),
            _(
                "The backup of your transactions, settlements, statements and audit trail is ready to "
                "download on the closure's page. It is signed; its manifest lists each file's SHA-256."
            ),
        ),
        "closure.wiped": Words(
            _("Closure %(number)s: device wipe done"),
            _(
                "The wipe step of terminal(s) %(terminals)s is done: the devices' keys are revoked, and a "
                "device that acknowledged the remote wipe has erased its data."
            ),
        ),
        "closure.return_instructions": Words(
            _("Closure %(number)s: please return the device by %(return_due_on)s"),
            _(
                "Send the device(s) of terminal(s) %(terminals)s to: %(return_address)s. Write the "
                "reference %(return_reference)s on the parcel and send it by %(return_due_on)s; a device "
                "not back by then is charged the recovery fee. Give the tracking number on the closure's "
                "page."
            ),
        ),
        "closure.inspected": Words(
            _("Closure %(number)s: device inspected"),
            _(
                "The warehouse received and inspected the device(s) of terminal(s) %(terminals)s. Grade: "
                "%(grades)s (A as new, B signs of wear, C damaged). Damage charged: %(damage)s; the closure "
                "statement itemises it."
            ),
        ),
        "closure.refunded": Words(
            _("Closure %(number)s: deposit refunded, %(refund)s"),
            _(
                "Your deposit, less what was owed, was released on %(day)s: %(refund)s is paid to your "
                "settlement account. Nothing is owed."
            ),
        ),
        "closure.refunded_owing": Words(
            _("Closure %(number)s: %(still_owed)s still owed"),
            _(
                "Your deposit was released on %(day)s: %(refund)s is refunded to your settlement account, "
                "and %(still_owed)s that the deposit did not cover is still owed. Please pay it: it blocks a "
                "new application until it is paid."
            ),
        ),
        "closure.certificate_ready": Words(
            _("Closure %(number)s: your closure certificate is ready"),
            _(
                "Terminal(s) %(terminals)s are closed for good. The closure certificate and the itemised "
                "closure statement can be downloaded on the closure's page; anyone can check the "
                "certificate with verification code %(certificate_code)s."
            ),
        ),
        "closure.completed": Words(
            _("Closure %(number)s completed"),
            _(
                "The closure of terminal(s) %(terminals)s of %(merchant_name)s (MID %(merchant)s) was "
                "completed on %(day)s. Certificate verification code: %(certificate_code)s."
            ),
        ),
        "closure.step_failed": Words(
            _("Closure %(number)s: “%(step_label)s” needs attention"),
            _(
                "The step “%(step_label)s” of closure %(number)s (%(merchant_name)s, MID %(merchant)s) "
                "failed and waits for a person: read its message on the case's page, deal with the cause, "
                "then retry the step."
            ),
        ),
    }
)


# terminal.status_changed: the command decides the notice.
TERMINAL_NOTICES: dict[str, Notice] = {
    Command.BIND: Notice("terminal.bound", {MERCHANT: QUIET}),
    Command.ACTIVATE: Notice("terminal.activated", {MERCHANT: QUIET}),
    Command.SUSPEND: Notice("terminal.suspended", {MERCHANT: ALL, AGENT: INBOX}),
    Command.RESUME: Notice("terminal.resumed", {MERCHANT: QUIET}),
    Command.DEACTIVATE: Notice("terminal.deactivated", {MERCHANT: ALL, AGENT: INBOX}),
    Command.REACTIVATE: Notice("terminal.reactivated", {MERCHANT: QUIET}),
    Command.DEREGISTER: Notice("terminal.deregistered", {MERCHANT: ALL, AGENT: INBOX}),
}


# complaint.progressed (a merchant's grievance, ADR 0023): ``number`` is the complaint, ``subject`` its
# title, ``case`` a related closure case, ``due`` when the side holding it must answer.
WORDS.update(
    {
        "complaint.raised": Words(
            _("Complaint %(number)s: %(subject)s"),
            _(
                "Merchant %(merchant)s raised complaint %(number)s (%(category)s): “%(subject)s”. "
                "Acknowledge it by %(due_at)s; it goes to the provider if it is not answered in time."
            ),
        ),
        "complaint.acknowledged": Words(
            _("Complaint %(number)s acknowledged"),
            _(
                "Your complaint %(number)s (“%(subject)s”) is being looked at; the answer is due by "
                "%(due_at)s. You will hear of it here."
            ),
        ),
        "complaint.answered": Words(
            _("Complaint %(number)s answered"),
            _(
                "Your complaint %(number)s (“%(subject)s”) has an answer: read it in the console, where you "
                "can close it or, if it does not settle the matter, reopen it or take it to the provider."
            ),
        ),
        "complaint.escalated": Words(
            _("Complaint %(number)s escalated to the provider"),
            _(
                "Complaint %(number)s of merchant %(merchant)s (“%(subject)s”) is now with the provider's "
                "staff%(case_words)s."
            ),
        ),
        "complaint.taken_over": Words(
            _("The provider took over closure %(case)s"),
            _(
                "Following complaint %(number)s, the provider's staff now decide closure case %(case)s of "
                "merchant %(merchant)s."
            ),
        ),
        "complaint.reopened": Words(
            _("Complaint %(number)s reopened"),
            _(
                "Merchant %(merchant)s reopened complaint %(number)s (“%(subject)s”): it needs an "
                "answer again."
            ),
        ),
    }
)


# application.progressed: the step decides the notice. "staff" are the provider's reviewers and admins.
APPLICATION_NOTICES: dict[str, Notice] = {
    "submitted": Notice("application.submitted", {STAFF: INBOX, MERCHANT: QUIET}),
    "info_requested": Notice("application.info_requested", {MERCHANT: ALL, AGENT: INBOX}),
    "info_given": Notice("application.info_given", {STAFF: INBOX}),
    "approved": Notice("application.approved", {MERCHANT: QUIET, AGENT: INBOX}),
    "rejected": Notice("application.rejected", {MERCHANT: QUIET, AGENT: INBOX}),
    "review_reminded": Notice("application.review_reminded", {STAFF: INBOX}),
    "shipped": Notice("application.shipped", {MERCHANT: ALL, AGENT: INBOX}),
    "completed": Notice("application.completed", {MERCHANT: QUIET, AGENT: INBOX}),
}


# closure.progressed: what happened (``step``, and a step's ``state``) decides the notice. The merchant
# hears its case's milestones and the steps that matter to it; the agent the decisions, the end and the
# escalations; the provider's reviewers ("staff") what waits for review; its admins what went wrong.
CLOSURE_NOTICES: dict[str, Notice] = {
    "requested": Notice("closure.requested", {MERCHANT: QUIET, AGENT: INBOX, STAFF: INBOX}),
    "withdrawn": Notice("closure.withdrawn", {MERCHANT: QUIET}),
    "approved": Notice("closure.approved", {MERCHANT: QUIET, AGENT: INBOX}),
    "rejected": Notice("closure.rejected", {MERCHANT: ALL, AGENT: INBOX}),
    "review_reminded": Notice("closure.review_reminded", {STAFF: INBOX}),
    "completed": Notice("closure.completed", {AGENT: INBOX}),
}
CLOSURE_ESCALATIONS: dict[str, Notice] = {
    "review_late": Notice("closure.review_late", {AGENT: INBOX, ADMINS: QUIET}),
    "return_overdue": Notice("closure.return_overdue", {MERCHANT: ALL, AGENT: INBOX, ADMINS: QUIET}),
}
# A step done (the unbinding says nothing to the merchant: the certificate lists the channels).
CLOSURE_STEPS_DONE: dict[str, Notice] = {
    StepName.CONTRACT: Notice("closure.contract_ended", {MERCHANT: QUIET}),
    StepName.SETTLE: Notice("closure.settled", {MERCHANT: QUIET}),
    StepName.BACKUP: Notice("closure.backup_ready", {MERCHANT: QUIET}),
    StepName.WIPE: Notice("closure.wiped", {MERCHANT: QUIET}),
    StepName.INSPECT: Notice("closure.inspected", {MERCHANT: QUIET}),
    StepName.REFUND: Notice("closure.refunded", {MERCHANT: ALL}),
    StepName.CERTIFICATE: Notice("closure.certificate_ready", {MERCHANT: ALL}),
}


# complaint.progressed: the side holding the complaint hears what it must answer (the agent, or the
# provider's staff once it is theirs: the event reaches the agent only while it is addressed to it);
# the merchant hears the answers; the admins hear escalations.
COMPLAINT_NOTICES: dict[str, Notice] = {
    "acknowledged": Notice("complaint.acknowledged", {MERCHANT: QUIET}),
    "resolved": Notice("complaint.answered", {MERCHANT: ALL}),
    "rejected": Notice("complaint.answered", {MERCHANT: ALL}),
    "escalated": Notice("complaint.escalated", {STAFF: INBOX, ADMINS: QUIET, MERCHANT: QUIET, AGENT: INBOX}),
    "taken_over": Notice("complaint.taken_over", {MERCHANT: QUIET, AGENT: INBOX}),
}


def complaint_notices(payload: dict[str, Any]) -> list[Notice]:
    step = payload.get("step", "")
    holder: dict[str, tuple[str, ...]] = (
        {AGENT: INBOX} if payload.get("handler") == "agent" else {STAFF: INBOX}
    )
    if step == "raised":
        return [Notice("complaint.raised", holder)]
    if step == "reopened":
        return [Notice("complaint.reopened", holder)]
    notice = COMPLAINT_NOTICES.get(step)
    return [notice] if notice is not None else []


def closure_notices(payload: dict[str, Any]) -> list[Notice]:
    step, state = payload.get("step", ""), payload.get("state", "")
    if step == "escalated":
        notice = CLOSURE_ESCALATIONS.get(payload.get("reason", ""))
    elif state == "failed":
        notice = Notice("closure.step_failed", {ADMINS: QUIET})
    elif step == StepName.RETURN and state == "waiting":  # the instructions, given once
        notice = Notice("closure.return_instructions", {MERCHANT: ALL})
    elif state == "done":  # a skipped step (nothing to inspect, no channel bound) says nothing
        notice = CLOSURE_STEPS_DONE.get(step)
        if step == StepName.REFUND and payload.get("still_owed_fen"):
            notice = Notice("closure.refunded_owing", {MERCHANT: ALL})
        elif step == StepName.SETTLE and payload.get("paid_on") == "":  # no batch paid anything
            notice = Notice("closure.settled_nothing", {MERCHANT: QUIET})
    elif state:
        notice = None  # waiting for the settlement run or the device: nothing to tell yet
    else:
        notice = CLOSURE_NOTICES.get(step)
    return [notice] if notice is not None else []


def notices_for(event_type: str, payload: dict[str, Any]) -> list[Notice]:
    if event_type == "terminal.status_changed":
        if payload.get("reason") in RESERVED_REASONS:
            return []  # a step of a replacement: its own notice (terminal.replaced) says what happened
        notice = TERMINAL_NOTICES.get(payload.get("command", ""))
        return [notice] if notice is not None else []
    if event_type == "service.expiry_milestone":
        if payload.get("milestone") == "expired":
            return [Notice("service.expired", {MERCHANT: ALL, AGENT: INBOX})]
        if payload.get("days_left") == 1:
            return [Notice("service.expiring_tomorrow", {MERCHANT: ALL})]
        return [Notice("service.expiring", {MERCHANT: ALL})]
    if event_type == "service.renewal_offered":
        return [Notice("service.renewal_offered", {MERCHANT: ALL})]
    if event_type == "service.renewed":
        key = "service.renewed" if payload.get("fee_fen") else "service.renewed_no_fee"
        return [Notice(key, {MERCHANT: QUIET})]
    if event_type == "terminal.replaced":
        return [Notice("terminal.replaced", {MERCHANT: QUIET, AGENT: INBOX})]
    if event_type == "integrity.check_failed":
        return [Notice("integrity.check_failed", {ADMINS: QUIET})]
    if event_type == "application.progressed":
        notice = APPLICATION_NOTICES.get(payload.get("step", ""))
        return [notice] if notice is not None else []
    if event_type == "closure.progressed":
        return closure_notices(payload)
    if event_type == "complaint.progressed":
        return complaint_notices(payload)
    return []
