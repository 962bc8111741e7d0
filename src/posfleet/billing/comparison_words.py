"""The comparison in words (费率对比): each line of a plan's total — which clause, how many months —
and the verdict: which plan is cheaper over the period, by how much, and why (ADR 0027). Rendered in the
reader's language; the console and the API say the same."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from posfleet.billing.comparison import (
    CONTRACTS_KEPT,
    DEPOSIT_HELD,
    FEES,
    NEW_DEPOSIT,
    PENALTY,
    SERVICE,
    Comparison,
    CostLine,
    PlanCost,
)
from posfleet.billing.models import PenaltyRule
from posfleet.platform.dates import iso_day_text
from posfleet.platform.money import format_fen


def line_text(line: CostLine) -> str:
    """A line of a plan's total in the reader's language: which clause, how many months."""
    p = line.params
    if line.code == FEES:
        return _(
            "Transaction fees on your real sales, each priced with this plan's rates "
            "(%(with_sales)d of the %(months)d months had sales)"
        ) % {"with_sales": p.get("months_with_sales", 0), "months": p.get("months", 0)}
    if line.code == SERVICE:
        if p.get("source") == "plan" and not p.get("per_terminal_fen"):
            return _("This plan asks no service or SIM fee")
        if p.get("source") != "plan" and not p.get("contracts"):
            return _("No service or SIM fee: you have no service contract in force")
        if p.get("source") == "plan":
            return ngettext(
                "Service and SIM fee of this plan: %(fee)s a year for your %(n)d terminal, "
                "a twelfth each month for %(months)d months",
                "Service and SIM fee of this plan: %(fee)s a year for each of your %(n)d terminals, "
                "a twelfth each month for %(months)d months",
                p.get("terminals", 0),
            ) % {
                "fee": format_fen(p.get("per_terminal_fen", 0)),
                "n": p.get("terminals", 0),
                "months": p.get("months", 0),
            }
        return ngettext(
            "Service and SIM fees of your %(n)d service contract: %(fee)s a year, "
            "a twelfth each month for %(months)d months",
            "Service and SIM fees of your %(n)d service contracts: %(fee)s a year together, "
            "a twelfth each month for %(months)d months",
            p.get("contracts", 0),
        ) % {
            "n": p.get("contracts", 0),
            "fee": format_fen(p.get("yearly_fen", 0)),
            "months": p.get("months", 0),
        }
    if line.code == PENALTY:
        if p.get("rule") == PenaltyRule.FIXED:
            return _(
                "Early-termination penalty of contract %(contract)s (terminal %(sn)s) for leaving on "
                "%(day)s: a fixed amount; %(served)d of the minimum %(minimum)d months served"
            ) % {
                "contract": p.get("contract"),
                "sn": p.get("sn", ""),
                "day": iso_day_text(p.get("on")),
                "served": p.get("months_served", 0),
                "minimum": p.get("min_term_months", 0),
            }
        return _(
            "Early-termination penalty of contract %(contract)s (terminal %(sn)s) for leaving on %(day)s: "
            "%(left)d months left of the minimum %(minimum)d × the monthly fee"
        ) % {
            "contract": p.get("contract"),
            "sn": p.get("sn", ""),
            "day": iso_day_text(p.get("on")),
            "left": p.get("months_left", 0),
            "minimum": p.get("min_term_months", 0),
        }
    if line.code == NEW_DEPOSIT:
        return ngettext(
            "Deposit this plan asks for: %(fee)s for your %(n)d terminal, paid when you switch; "
            "it comes back only on that provider's terms",
            "Deposit this plan asks for: %(fee)s for each of your %(n)d terminals, paid when you switch; "
            "it comes back only on that provider's terms",
            p.get("terminals", 0),
        ) % {"fee": format_fen(p.get("per_terminal_fen", 0)), "n": p.get("terminals", 0)}
    if line.code == DEPOSIT_HELD:
        return _(
            "Your deposit of %(held)s is not a further cost: at closure it pays %(penalty)s of the penalty "
            "(the deposit you lose by leaving) and %(owed)s of fees you owe anyway; %(refund)s comes back "
            "to you"
        ) % {
            "held": format_fen(p.get("held_fen", 0)),
            "penalty": format_fen(p.get("penalty_fen", 0)),
            "owed": format_fen(p.get("owed_fen", 0)),
            "refund": format_fen(p.get("refund_fen", 0)),
        }
    if line.code == CONTRACTS_KEPT:
        return _(
            "Moving to another of our plans keeps your service contracts: the same service fees, no "
            "penalty, your deposit stays held"
        )
    return line.code


def verdict(result: Comparison) -> str:
    """Which plan is cheaper over the period, by how much, and why — in plain words."""
    n = len(result.months)
    if not result.has_transactions:
        return _("There were no transactions in these months, so there is nothing to compare.")
    current = result.current
    if current is None:
        cheapest = result.cheapest
        if cheapest is None:
            return _("No plan could price all of these transactions.")
        return _(
            "No plan is assigned to this merchant; %(plan)s would have cost the least over these %(n)s "
            "months, everything included: %(total)s."
        ) % {"plan": cheapest.name, "n": n, "total": format_fen(cheapest.total_fen)}
    best = result.best
    if best is not None:
        head = _(
            "Switching to %(plan)s would have cost %(saving)s less than staying on %(current)s over these "
            "%(n)s months, everything included."
        ) % {"plan": best.name, "saving": format_fen(best.saving_fen or 0), "current": current.name, "n": n}
        return " ".join([head, *_why(best, current)])
    tempting = result.tempting
    if tempting is not None:
        head = _(
            "Stay on %(current)s: %(plan)s has lower transaction fees, but over these %(n)s months it would "
            "have cost %(extra)s more, everything included."
        ) % {
            "current": current.name,
            "plan": tempting.name,
            "n": n,
            "extra": format_fen(-(tempting.saving_fen or 0)),
        }
        return " ".join([head, *_why(tempting, current)])
    return _(
        "Your current plan %(current)s was the cheapest of the plans compared over these %(n)s months, "
        "everything included."
    ) % {"current": current.name, "n": n}


def _why(plan: PlanCost, current: PlanCost) -> list[str]:
    """The differences that make ``plan`` cost what it does against ``current``, one sentence each."""
    reasons = []
    fees = plan.fees_total_fen - current.fees_total_fen
    if fees < 0:
        reasons.append(_("Its transaction fees are %(amount)s lower.") % {"amount": format_fen(-fees)})
    elif fees > 0:
        reasons.append(_("Its transaction fees are %(amount)s higher.") % {"amount": format_fen(fees)})
    service = plan.service_total_fen - current.service_total_fen
    if service < 0:
        reasons.append(_("Its service and SIM fees are %(amount)s lower.") % {"amount": format_fen(-service)})
    elif service > 0:
        reasons.append(_("Its service and SIM fees are %(amount)s higher.") % {"amount": format_fen(service)})
    if plan.penalty_fen:
        left = max(line.params.get("months_left", 0) for line in plan.switching if line.code == PENALTY)
        reasons.append(
            ngettext(
                "Leaving your contract early costs %(penalty)s in early-termination penalties "
                "(up to %(left)d month left of its minimum term).",
                "Leaving your contract early costs %(penalty)s in early-termination penalties "
                "(up to %(left)d months left of its minimum term).",
                left,
            )
            % {"penalty": format_fen(plan.penalty_fen), "left": left}
        )
    if plan.new_deposit_fen:
        reasons.append(
            _("It asks for a deposit of %(deposit)s when you switch.")
            % {"deposit": format_fen(plan.new_deposit_fen)}
        )
    if plan.is_competitor:
        reasons.append(
            _("It is offered by %(provider)s: to switch, your terminals with us would be closed first.")
            % {"provider": plan.provider_name or plan.name}
        )
    return reasons
