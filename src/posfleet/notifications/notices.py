"""What is said to whom: which events make which notices, and their words in Chinese and English.

An event (an outbox message) makes zero or more ``Notice``s, each for an audience ("merchant": the
merchant's users and its contact; "agent": the users of the agent that serves it) over some channels.
The words are gettext strings rendered in each recipient's language (``render``). Webhooks are not
here: every event goes to the endpoints that subscribed to it, as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils import translation
from django.utils.translation import gettext_lazy as _

from posfleet.fleet.states import RESERVED_REASONS, SPECS, Command
from posfleet.notifications.models import Channel

MERCHANT, AGENT, STAFF, ADMINS = "merchant", "agent", "staff", "admins"
ALL = (Channel.INBOX, Channel.EMAIL, Channel.SMS)
QUIET = (Channel.INBOX, Channel.EMAIL)
INBOX = (Channel.INBOX,)


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
            "It can be reactivated within the reactivation window; after that it is closed for good."
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
            "costs %(fee)s, deducted at the next settlement: renew on the Expiry calendar page, in one click."
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
        return [Notice("service.renewed", {MERCHANT: QUIET})]
    if event_type == "terminal.replaced":
        return [Notice("terminal.replaced", {MERCHANT: QUIET, AGENT: INBOX})]
    if event_type == "integrity.check_failed":
        return [Notice("integrity.check_failed", {ADMINS: QUIET})]
    if event_type == "application.progressed":
        notice = APPLICATION_NOTICES.get(payload.get("step", ""))
        return [notice] if notice is not None else []
    return []


def reason_label(command: str, reason: str) -> str:
    try:
        choices = SPECS[Command(command)].reasons
    except (ValueError, KeyError):
        choices = None
    if choices is not None and reason in choices.values:
        return str(choices(reason).label)
    return reason or "—"


def render(key: str, context: dict[str, Any], language: str) -> tuple[str, str]:
    """The subject and body of notice ``key`` in ``language``; a missing value shows as "—"."""
    words = WORDS[key]
    with translation.override(language):
        values = _Defaulting({k: str(v) for k, v in context.items() if v is not None})
        if "reason" in values and "command" in values:
            values["reason"] = reason_label(values["command"], values["reason"])
        return str(words.subject) % values, str(words.body) % values


class _Defaulting(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "—"
