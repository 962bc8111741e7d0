"""Texts: built now, translated when shown."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from posfleet.enrollment.eligibility.codes import OUTCOME_LABELS, FactorCode, Outcome
from posfleet.enrollment.eligibility.facts import Facts
from posfleet.enrollment.eligibility.policy import Policy, ReasonRule, ScaleRule
from posfleet.fleet.states import DeactivationReason
from posfleet.platform.dates import day_text
from posfleet.platform.money import format_fen

_later: Callable[[Callable[[], str]], str] = lazy(lambda render: render(), str)


def _months(n: int) -> str:
    return ngettext("%(count)d month", "%(count)d months", n) % {"count": n}


def _days(n: int) -> str:
    return ngettext("%(count)d day", "%(count)d days", n) % {"count": n}


def _refunds(n: int) -> str:
    return ngettext("%(count)d refund", "%(count)d refunds", n) % {"count": n}


def _percent(basis_points: int) -> str:
    return f"{basis_points // 100}.{basis_points % 100:02d}%"


def _share(permille: int) -> str:
    return f"{permille // 10}%" if permille % 10 == 0 else f"{permille // 10}.{permille % 10}%"


_UNITS: dict[str, Callable[[int], str]] = {
    FactorCode.MONTHS_ACTIVE: _months,
    FactorCode.VOLUME: format_fen,
    FactorCode.ANOMALY_RATE: _percent,
    FactorCode.DISPUTES: _refunds,
    FactorCode.KYC_FRESHNESS: _days,
}


def _reason_label(code: str) -> str:
    return str(DeactivationReason(code).label) if code in DeactivationReason.values else code


def _facts_text(code: str, value: int | str | None, facts: Facts, on: date) -> tuple[str, str]:
    """(staff, merchant) sentences stating the fact, without a verdict."""
    months = facts.lookback_months
    if code == FactorCode.MONTHS_ACTIVE:
        staff = _("%(months)s active: %(days)s with a terminal active, %(terminals)s in all") % {
            "months": _months(facts.months_active),
            "days": _days(facts.active_days),
            "terminals": ngettext("%(count)d terminal", "%(count)d terminals", facts.terminals)
            % {"count": facts.terminals},
        }
        if facts.months_active == 0:
            return staff, _("You used your terminals for less than a month")
        return staff, ngettext(
            "You used your terminals for %(count)d month",
            "You used your terminals for %(count)d months",
            facts.months_active,
        ) % {"count": facts.months_active}
    if code == FactorCode.VOLUME:
        numbers = {"amount": format_fen(facts.volume_fen), "count": facts.sales, "months": months}
        return (
            ngettext(
                "Takings %(amount)s from %(count)d approved sale in the %(months)d months before closure, "
                "refunds and reversals deducted",
                "Takings %(amount)s from %(count)d approved sales in the %(months)d months before closure, "
                "refunds and reversals deducted",
                facts.sales,
            )
            % numbers,
            ngettext(
                "In the %(months)d months before you closed, you took %(amount)s in %(count)d sale",
                "In the %(months)d months before you closed, you took %(amount)s in %(count)d sales",
                facts.sales,
            )
            % numbers,
        )
    if code == FactorCode.ANOMALY_RATE:
        if not isinstance(value, int):
            return (
                _("No transactions in the %(months)d months before closure") % {"months": months},
                _("You had no payments in the %(months)d months before you closed") % {"months": months},
            )
        numbers = {
            "rate": _percent(value),
            "count": facts.transactions,
            "declined": facts.declined,
            "reversed": facts.reversals,
            "months": months,
        }
        return (
            ngettext(
                "%(rate)s of %(count)d transaction declined or reversed (%(declined)d declined, "
                "%(reversed)d reversed) in the %(months)d months before closure",
                "%(rate)s of %(count)d transactions declined or reversed (%(declined)d declined, "
                "%(reversed)d reversed) in the %(months)d months before closure",
                facts.transactions,
            )
            % numbers,
            _("%(rate)s of your payments were declined or cancelled") % numbers,
        )
    if code == FactorCode.DISPUTES:
        staff = _(
            "%(refunds)s (%(amount)s) in the %(months)d months before closure; refunds stand in for disputes"
        ) % {"refunds": _refunds(facts.refunds), "amount": format_fen(facts.refunds_fen), "months": months}
        if facts.refunds == 0:
            return staff, _("None of your payments was refunded to a customer")
        return staff, ngettext(
            "%(count)d payment was refunded to a customer",
            "%(count)d payments were refunded to customers",
            facts.refunds,
        ) % {"count": facts.refunds}
    if code == FactorCode.CLOSURE_REASON:
        if not value:
            return _("No closure reason on record"), _("We have no reason on record for your closure")
        label = _reason_label(str(value))
        return (
            _("Closed for “%(reason)s” (%(code)s)") % {"reason": label, "code": value},
            _("You closed because of: %(reason)s") % {"reason": label},
        )
    if not isinstance(value, int) or facts.kyc_checked_on is None:
        return (
            _("No KYC check date given"),
            _("We have no recent check of your identity documents on file"),
        )
    return (
        _("KYC last checked on %(date)s, %(days)s before the decision")
        % {"date": day_text(facts.kyc_checked_on), "days": _days(value)},
        _("Your identity documents were last checked %(days)s ago") % {"days": _days(value)},
    )


def _rule_text(code: str, rule: ScaleRule | ReasonRule, value: int | str | None, share: int) -> str:
    if value is None:
        return _("unknown, so %(share)s of the weight") % {"share": _share(share)}
    if isinstance(rule, ReasonRule):
        return _("%(share)s of the weight for this reason") % {"share": _share(share)}
    unit = _UNITS[code]
    numbers = {"full": unit(rule.full_at), "zero": unit(rule.zero_at)}
    if rule.full_at > rule.zero_at:
        return _("full points from %(full)s, none at %(zero)s or less") % numbers
    return _("full points at %(full)s or less, none from %(zero)s") % numbers


def _verdict(value: int | str | None, share: int) -> str:
    if share >= 800:
        return _("this counts in your favour.")
    if value is None and share >= 400:
        return _("this neither helps nor hurts.")
    if share >= 400:
        return _("this counts partly in your favour.")
    return _("this counts against you.")


def _explain(
    code: str,
    value: int | str | None,
    facts: Facts,
    rule: ScaleRule | ReasonRule,
    share: int,
    points: int,
    on: date,
) -> tuple[str, str]:
    def staff() -> str:
        return _("%(fact)s; %(rule)s: %(points)d of %(weight)d points.") % {
            "fact": _facts_text(code, value, facts, on)[0],
            "rule": _rule_text(code, rule, value, share),
            "points": points,
            "weight": rule.weight,
        }

    def merchant() -> str:
        return _("%(fact)s — %(verdict)s") % {
            "fact": _facts_text(code, value, facts, on)[1],
            "verdict": _verdict(value, share),
        }

    return _later(staff), _later(merchant)


def _waiting_texts(facts: Facts, policy: Policy, ends_on: date, on: date) -> tuple[str, str]:
    numbers = {
        "closed": day_text(facts.closed_on),
        "days": policy.waiting_days,
        "date": day_text(ends_on),
    }

    def staff() -> str:
        if on >= ends_on:
            return _("Closed on %(closed)s; the waiting period of %(days)d days ended on %(date)s.") % numbers
        return _("Closed on %(closed)s; the waiting period of %(days)d days ends on %(date)s.") % numbers

    def merchant() -> str:
        if on >= ends_on:
            return _("The waiting period after your closure is over.")
        return _("You can apply again from %(date)s, %(days)d days after your closure.") % numbers

    return _later(staff), _later(merchant)


def _debt_texts(facts: Facts) -> tuple[str, str]:
    numbers = {
        "amount": format_fen(facts.debt_fen),
        "fees": format_fen(facts.fees_owed_fen),
        "penalties": format_fen(facts.penalties_owed_fen),
    }

    def staff() -> str:
        if facts.debt_fen <= 0:
            return _("Nothing owed (fees and penalties receivable are settled).")
        return (
            _("Owes %(amount)s (fees %(fees)s, penalties %(penalties)s): blocks re-application until paid.")
            % numbers
        )

    def merchant() -> str:
        if facts.debt_fen <= 0:
            return _("You owe us nothing.")
        return _("You still owe us %(amount)s. We can consider a new application once it is paid.") % numbers

    return _later(staff), _later(merchant)


def _staff_summary(outcome: str, score: int, policy: Policy) -> str:
    def render() -> str:
        return _(
            "%(outcome)s: score %(score)d of 100 under eligibility policy %(version)d "
            "(approve from %(approve)d, manual review from %(review)d)."
        ) % {
            "outcome": str(OUTCOME_LABELS[outcome]).capitalize(),
            "score": score,
            "version": policy.version,
            "approve": policy.approve_at,
            "review": policy.review_at,
        }

    return _later(render)


def _summary(outcome: str, ends_on: date, debt_fen: int) -> str:
    def render() -> str:
        if outcome == Outcome.TOO_EARLY:
            return _("It is too early to apply again: you can apply from %(date)s.") % {
                "date": day_text(ends_on)
            }
        if outcome == Outcome.BLOCKED:
            return _("You still owe us %(amount)s: please pay it before you apply again.") % {
                "amount": format_fen(debt_fen)
            }
        if outcome == Outcome.APPROVE:
            return _("Your application to use our terminals again is approved.")
        if outcome == Outcome.MANUAL_REVIEW:
            return _("Our staff will look at your application and come back to you.")
        return _("We cannot accept your application to use our terminals again at this time.")

    return _later(render)
