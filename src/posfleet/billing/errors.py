"""Refusals of the money context (stable codes; the API and console map them once)."""

from django.utils.translation import gettext_lazy as _

from posfleet.platform.errors import Conflict, DomainError, ValidationFailed


class AlreadyPosted(Conflict):
    code = "already_posted"
    title = _("This posting was made already.")


class Unbalanced(DomainError):
    code = "unbalanced_journal"
    status = 422
    title = _("A journal's debits and credits must add up to zero.")


class DepositAlreadyReleased(Conflict):
    code = "deposit_already_refunded"
    title = _("This deposit has been refunded or forfeited already.")


class TerminalNotActive(ValidationFailed):
    code = "terminal_not_active"
    title = _("The terminal was not active at the time of the transaction.")


class NoRatePlan(ValidationFailed):
    code = "no_rate_plan"
    title = _("No rate plan is in force for this merchant at that time.")


class PlanChangeWaiting(Conflict):
    code = "plan_change_waiting"
    title = _("A plan change request of this merchant is already waiting for a decision.")
