"""The closure quote (DOMAIN.md workflow 4: "preconditions shown up front"): before a requester
commits, every money line that will move and why — unsettled sales, fees due, the early-termination
penalty with its clause and the months left, the recovery fee if the device does not come back, the
recovery value credited if it comes back as new, the damage prices by grade, the deposit held, and the
expected refund or the amount that will be owed (the conditional lines are not in these totals).

A quote is data (codes, amounts in fen, parameters), stored with the case as the requester confirmed
it; its words are rendered in the reader's language when shown (``line_text``). Its ``digest`` covers
every amount: a request that confirms a digest other than the current quote's is refused as stale
(a sale settled or a fee fell due meanwhile), and the requester sees the new quote.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from django.utils.translation import gettext as _

from posfleet.billing.services.closure import closure_facts, deposit_set_off
from posfleet.platform.money import format_fen

# What each line does to the money between the merchant and the provider.
TO_MERCHANT = "to_merchant"  # paid to the merchant (sales, the refund)
OWED = "owed"  # the merchant owes it; taken from the deposit first
IF = "if"  # only if something happens (device not returned, damage; returned as new: a credit)
INFO = "info"  # nothing moves (a fee that lapses)
HELD = "held"  # the deposit


@dataclass(frozen=True)
class QuoteLine:
    code: str
    amount_fen: int
    effect: str
    terminal: str = ""  # SN, for a terminal's line
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Quote:
    on: str
    lines: list[QuoteLine]
    deposit_held_fen: int
    owed_fen: int
    expected_refund_fen: int
    expected_shortfall_fen: int

    @property
    def digest(self) -> str:
        body = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "digest": self.digest}


@dataclass(frozen=True)
class AgentTerms:
    """An agent termination's reviewer: the merchant's agent, and how long it has to decide."""

    code: str
    name: str
    review_days: int


def build_quote(
    *,
    merchant_id: int,
    organisation_id: int,
    terminals: list[tuple[int, str]],
    on: date,
    agent: AgentTerms | None = None,
) -> Quote:
    """The quote of closing ``terminals`` ((id, SN) pairs of one merchant) on ``on``; with ``agent``, of
    ending with that agent (ADR 0023): the same money, plus the agent's review clock, the clauses of
    each contract signed through it, and who holds the deposit (the provider: there is no agent-held
    deposit in posfleet, so the deposit line is what is refunded, whether or not the agent acts)."""
    sn_of = dict(terminals)
    facts = closure_facts(
        merchant_id=merchant_id, organisation_id=organisation_id, terminal_ids=list(sn_of), on=on
    )
    lines: list[QuoteLine] = []
    if agent is not None:
        lines.append(
            QuoteLine(
                "agent_review",
                0,
                INFO,
                params={"agent": agent.code, "agent_name": agent.name, "days": agent.review_days},
            )
        )
    if facts.unsettled_gross_fen or facts.unsettled_refunds_fen:
        lines.append(
            QuoteLine(
                "unsettled_sales",
                facts.unsettled_net_fen,
                TO_MERCHANT,
                params={
                    "gross_fen": facts.unsettled_gross_fen,
                    "refunds_fen": facts.unsettled_refunds_fen,
                    "fees_fen": facts.unsettled_fees_fen,
                },
            )
        )
    if facts.fees_owed_fen:
        lines.append(QuoteLine("fees_owed", facts.fees_owed_fen, OWED))
    if facts.penalties_owed_fen:
        lines.append(QuoteLine("penalties_owed", facts.penalties_owed_fen, OWED))
    owed_fees, owed_penalties = facts.fees_owed_fen, facts.penalties_owed_fen
    deposit = 0
    for contract in facts.contracts:
        sn = sn_of.get(contract.terminal_id, "")
        if agent is not None:
            lines.append(
                QuoteLine(
                    "agent_clauses",
                    0,
                    INFO,
                    sn,
                    params={
                        "agent": agent.code,
                        "contract": contract.contract_id,
                        "rule": contract.penalty_rule,
                        "min_term_months": contract.min_term_months,
                        "months_served": contract.months_served,
                    },
                )
            )
        if contract.fees_to_charge_fen:
            lines.append(QuoteLine("fees_due", contract.fees_to_charge_fen, OWED, sn))
            owed_fees += contract.fees_to_charge_fen
        if contract.fees_lapsing_fen:
            lines.append(QuoteLine("fees_lapse", contract.fees_lapsing_fen, INFO, sn))
        if contract.penalty_fen:
            lines.append(
                QuoteLine(
                    "penalty",
                    contract.penalty_fen,
                    OWED,
                    sn,
                    params={
                        "rule": contract.penalty_rule,
                        "min_term_months": contract.min_term_months,
                        "months_served": contract.months_served,
                        "months_left": max(0, contract.min_term_months - contract.months_served),
                        "contract": contract.contract_id,
                    },
                )
            )
            owed_penalties += contract.penalty_fen
        if contract.recovery_fee_fen:
            lines.append(QuoteLine("recovery_fee", contract.recovery_fee_fen, IF, sn))
        if contract.recovery_value_fen:
            lines.append(QuoteLine("recovery_value", contract.recovery_value_fen, IF, sn))
        for grade, price in sorted(contract.damage_prices.items()):
            if price:
                lines.append(QuoteLine("damage", price, IF, sn, params={"grade": grade}))
        if contract.deposit_held_fen:
            lines.append(QuoteLine("deposit", contract.deposit_held_fen, HELD, sn))
            deposit += contract.deposit_held_fen
    if agent is not None and deposit:
        lines.append(QuoteLine("agent_deposit", 0, INFO, params={"agent": agent.code}))
    set_off = deposit_set_off(deposit, owed_fees, owed_penalties)  # the deposit's one rule
    return Quote(
        on=on.isoformat(),
        lines=lines,
        deposit_held_fen=deposit,
        owed_fen=owed_fees + owed_penalties,
        expected_refund_fen=set_off.refund_fen,
        expected_shortfall_fen=set_off.shortfall_fen,
    )


def line_text(line: dict[str, Any]) -> str:
    """A quote line in the reader's language (the active translation)."""
    params = line.get("params") or {}
    code = line["code"]
    if code == "unsettled_sales":
        return _(
            "Sales not yet settled (%(gross)s sales − %(refunds)s refunds − %(fees)s fees): paid with the "
            "final settlement"
        ) % {
            "gross": format_fen(params.get("gross_fen", 0)),
            "refunds": format_fen(params.get("refunds_fen", 0)),
            "fees": format_fen(params.get("fees_fen", 0)),
        }
    if code == "fees_owed":
        return _("Service fees charged and not yet paid")
    if code == "penalties_owed":
        return _("Penalties and charges not yet paid")
    if code == "fees_due":
        return _("Service fee due by the closing day, charged at closure")
    if code == "fees_lapse":
        return _("Later service fees: cancelled, never charged")
    if code == "penalty":
        if params.get("rule") == "fixed":
            return _(
                "Early-termination penalty (contract %(contract)s: fixed amount; %(served)d of the "
                "minimum %(minimum)d months served)"
            ) % {
                "contract": params.get("contract"),
                "served": params.get("months_served", 0),
                "minimum": params.get("min_term_months", 0),
            }
        return _(
            "Early-termination penalty (contract %(contract)s: %(left)d months left of the minimum "
            "%(minimum)d × the monthly fee)"
        ) % {
            "contract": params.get("contract"),
            "left": params.get("months_left", 0),
            "minimum": params.get("min_term_months", 0),
        }
    if code == "recovery_fee":
        return _("Device recovery fee — only if the device is not returned by the deadline")
    if code == "recovery_value":
        return _(
            "Device recovery value, credited to you — only if the device comes back as new (grade A); "
            "it pays what you still owe, the rest is paid to you"
        )
    if code == "damage":
        return _("Damage charge for grade %(grade)s — only if a person caused the damage") % {
            "grade": params.get("grade", "")
        }
    if code == "deposit":
        return _("Deposit held")
    if code == "agent_review":
        return _(
            "Your agent %(agent)s decides on ending with it within %(days)d days; if it does not, "
            "complain to the provider, who can take the case over"
        ) % {"agent": params.get("agent_name") or params.get("agent", ""), "days": params.get("days", 0)}
    if code == "agent_clauses":
        rule = {
            "fixed": _("a fixed penalty"),
            "remaining_months": _("a penalty per month left of the minimum term"),
        }.get(str(params.get("rule", "")), _("no penalty"))
        return _(
            "Terms signed through agent %(agent)s (contract %(contract)s): minimum term %(minimum)d "
            "months, %(served)d served; ending early: %(rule)s"
        ) % {
            "agent": params.get("agent", ""),
            "contract": params.get("contract"),
            "minimum": params.get("min_term_months", 0),
            "served": params.get("months_served", 0),
            "rule": rule,
        }
    if code == "agent_deposit":
        return _(
            "Deposit held by the agent: none — the deposit above is held by the provider, which refunds "
            "it at the end even if the agent does not act"
        )
    return code


EFFECT_LABELS = {
    TO_MERCHANT: "to_merchant",
    OWED: "owed",
    IF: "if",
    INFO: "info",
    HELD: "held",
}


def effect_text(effect: str) -> str:
    return {
        TO_MERCHANT: _("paid to you"),
        OWED: _("you owe"),
        IF: _("only if it applies"),
        INFO: _("not charged"),
        HELD: _("held, refunded less what you owe"),
    }.get(effect, effect)
