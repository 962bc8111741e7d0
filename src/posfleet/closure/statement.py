"""The itemised closure statement: each line of the quote the requester confirmed beside what happened
(from the steps' evidence and the journals), with the difference and its reason in plain words. A
conditional line that applied (a damage charge, the recovery fee, the recovery value credited for a
device returned as new) is not in the quote's totals: its reason says why the totals differ."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from posfleet.billing.merchant_records import merchant_contracts, merchant_settlements
from posfleet.billing.selectors import deposit_of_contract
from posfleet.closure.document_facts import (
    STATEMENT_STATUSES,
    ClosureStatement,
    StatementLine,
    TotalLine,
    _Case,
    _day,
    _local_day,
    _provider_name,
    _reason_label,
)
from posfleet.closure.models import ClosureCase
from posfleet.closure.quote import IF, INFO, OWED, TO_MERCHANT, effect_text, line_text
from posfleet.closure.states import CaseStatus, StepName
from posfleet.platform.clock import now
from posfleet.platform.errors import NotFound
from posfleet.platform.money import format_fen

# Lines that credit the merchant (not charges): the recovery value of a device returned as new.
CREDIT_CODES = frozenset({"recovery_value"})

# -- the statement --------------------------------------------------------------------------------------


def statement(case: ClosureCase) -> ClosureStatement:
    """The itemised statement of a running (provisional) or completed case (NotFound otherwise)."""
    if case.status not in STATEMENT_STATUSES:
        raise NotFound(_("There is no closure statement for this case."))
    read = _Case(case)
    quote = case.quote or {}
    contract_of_sn = {e.terminal.sn: e.contract_id for e in read.entries}
    contracts = _contract_results(read)
    final = _final_settlement(read)
    lines: list[StatementLine] = []
    for raw in quote.get("lines", []):
        contract_id = contract_of_sn.get(raw.get("terminal", ""))
        line = _line(read, raw, contracts.get(contract_id) if contract_id is not None else None, final)
        if line is not None:
            lines.append(line)
    if (
        not any(line.code == "unsettled_sales" for line in lines)
        and final
        and (final["paid_fen"] or final["deducted_fen"])
    ):
        lines.insert(
            0,
            _settlement_line(
                read, {"code": "final_settlement", "amount_fen": 0, "effect": TO_MERCHANT}, final
            ),
        )
    totals, refund, still_owed = _totals(read, quote, lines, final)
    credited, paid_out = _recovery_credited(read)
    provisional = case.status != CaseStatus.COMPLETED
    return ClosureStatement(
        number=case.number,
        provisional=provisional,
        status=case.status,
        status_label=str(CaseStatus(case.status).label),
        provider_name=_provider_name(),
        merchant_mid=case.merchant.mid,
        merchant_name=case.merchant.name,
        reason_label=_reason_label(case.reason),
        requested_at=case.requested_at,
        approved_at=case.reviewed_at,
        completed_at=case.ended_at if not provisional else None,
        quote_on=str(quote.get("on", "")),
        generated_at=now(),
        terminals=[e.terminal.sn for e in read.entries],
        lines=lines,
        totals=totals,
        refund_fen=refund,
        still_owed_fen=still_owed,
        outcome_text=_outcome_text(provisional, refund, still_owed, credited, paid_out),
        settlements=final["batches"] if final else [],
        recovery_credited_fen=credited,
        recovery_paid_out_fen=paid_out,
    )


def _contract_results(read: _Case) -> dict[int, dict[str, Any]]:
    """What ending each contract did (the contract step's evidence), with the service fees charged by
    the closure itself (their journals posted since the request) — fees charged earlier are owed
    already and are on the quote's "not yet paid" line."""
    if not read.finished(StepName.CONTRACT):
        return {}
    results = {int(c["contract"]): dict(c) for c in read.evidence(StepName.CONTRACT).get("contracts", [])}
    for contract in (
        merchant_contracts(read.case.merchant_id)
        .filter(pk__in=list(results))
        .prefetch_related("fees_due__journal")
    ):
        results[contract.pk]["charged_now_fen"] = sum(
            fee.amount_fen
            for fee in contract.fees_due.all()
            if fee.journal is not None and fee.journal.occurred_at >= read.case.requested_at
        )
    return results


def _final_settlement(read: _Case) -> dict[str, Any] | None:
    """The final settlement's batches (the settle step's evidence) with what each paid and kept back."""
    if not read.finished(StepName.SETTLE):
        return None
    evidence = read.evidence(StepName.SETTLE)
    ids = [b["id"] for b in evidence.get("batches", [])]
    batches = [
        {
            "id": b.pk,
            "business_date": b.business_date,
            "paid_on": b.paid_on,
            "net_fen": b.gross_fen - b.refunds_fen - b.fees_fen,
            "deducted_fen": b.service_fees_fen,
            "payout_fen": b.payout_fen,
        }
        for b in merchant_settlements(read.case.merchant_id).filter(pk__in=ids)
    ]
    return {
        "batches": batches,
        "net_fen": sum(b["net_fen"] for b in batches),
        "deducted_fen": sum(b["deducted_fen"] for b in batches),
        "paid_fen": sum(b["payout_fen"] for b in batches),
        "unsettled_net_fen": int(evidence.get("unsettled_net_fen", 0) or 0),
    }


def _line(
    read: _Case, raw: dict[str, Any], contract: dict[str, Any] | None, final: dict[str, Any] | None
) -> StatementLine | None:
    code = raw["code"]
    if code == "unsettled_sales":
        return _settlement_line(read, raw, final)
    if code in ("fees_owed", "penalties_owed"):
        return _make(raw, raw["amount_fen"], _("charged before the closure"))
    if code in ("fees_due", "fees_lapse", "penalty"):
        if contract is None:
            return _make(raw, None, _("when the contract ends"))
        actual = {
            "fees_due": int(contract.get("charged_now_fen", contract.get("fees_charged_fen", 0)) or 0),
            "fees_lapse": int(contract.get("fees_lapsed_fen", 0) or 0),
            "penalty": int(contract.get("penalty_fen", 0) or 0),
        }[code]
        why = ""
        if actual != raw["amount_fen"]:
            why = _(
                "worked out on the day the contract ended (%(day)s), not the quote's day (%(quote_day)s)"
            ) % {
                "day": _day(contract.get("ended_on")),
                "quote_day": _day(read.case.quote.get("on")),
            }
        return _make(raw, actual, why)
    if code == "recovery_fee":
        return _recovery_line(read, raw)
    if code == "recovery_value":
        return _recovery_value_line(read, raw)
    if code == "damage":
        return _damage_line(read, raw)
    if code == "deposit":
        return _deposit_line(read, raw)
    if raw.get("effect") == INFO:
        return None  # words without money (an agent's clauses, its review clock): not a money line
    return _make(raw, None, "")


def _make(raw: dict[str, Any], actual: int | None, why: str) -> StatementLine:
    return StatementLine(
        code=raw["code"],
        terminal=raw.get("terminal", ""),
        text=line_text(raw) if raw["code"] != "final_settlement" else _("Final settlement"),
        effect=raw["effect"],
        effect_text=effect_text(raw["effect"]),
        quoted_fen=int(raw["amount_fen"]),
        actual_fen=actual,
        why=why,
    )


def _settlement_line(read: _Case, raw: dict[str, Any], final: dict[str, Any] | None) -> StatementLine:
    if final is None:
        return _make(raw, None, _("waiting for the final settlement (T+1)"))
    reasons = []
    if final["deducted_fen"]:
        reasons.append(
            _("%(amount)s of fees were deducted from the final settlement instead of the deposit")
            % {"amount": format_fen(final["deducted_fen"])}
        )
    if final["net_fen"] != raw["amount_fen"]:
        reasons.append(
            _(
                "the takings settled came to %(net)s, not the %(quoted)s quoted (sales and refunds "
                "recorded after the quote)"
            )
            % {"net": format_fen(final["net_fen"]), "quoted": format_fen(raw["amount_fen"])}
        )
    left = final["unsettled_net_fen"]
    if left > 0:
        reasons.append(_("%(amount)s is not settled yet") % {"amount": format_fen(left)})
    elif left < 0:
        reasons.append(
            _("refunds exceeded sales by %(amount)s: left to be collected") % {"amount": format_fen(-left)}
        )
    return _make(raw, final["paid_fen"], "; ".join(reasons))


def _recovery_line(read: _Case, raw: dict[str, Any]) -> StatementLine:
    entry = read.by_sn.get(raw.get("terminal", ""))
    due_on = read.evidence(StepName.RETURN).get("due_on") or (
        read.case.return_due_on.isoformat() if read.case.return_due_on else None
    )
    if entry is None:
        return _make(raw, None, "")
    if entry.recovery_fee_fen:
        return _make(
            raw,
            entry.recovery_fee_fen,
            _("recovery fee: device not returned by %(day)s") % {"day": _day(due_on)},
        )
    if entry.received_at is not None:
        return _make(
            raw,
            0,
            _("not charged: the device was returned on %(day)s") % {"day": _local_day(entry.received_at)},
        )
    if read.finished(StepName.RETURN):
        return _make(raw, 0, "")
    if due_on:
        return _make(raw, None, _("only if the device is not back by %(day)s") % {"day": _day(due_on)})
    return _make(raw, None, "")


def _recovery_value_line(read: _Case, raw: dict[str, Any]) -> StatementLine:
    """The recovery value credited for a device returned as new: the credit the refund step posted."""
    entry = read.by_sn.get(raw.get("terminal", ""))
    if entry is None:
        return _make(raw, None, "")
    if entry.inspected_at is None:
        if entry.received_at is None and read.finished(StepName.RETURN):
            return _make(raw, 0, _("not credited: the device was not returned"))
        return _make(raw, None, _("when the device is inspected"))
    if entry.grade != "A":
        return _make(
            raw, 0, _("not credited: the device was graded %(grade)s, not as new") % {"grade": entry.grade}
        )
    if not read.finished(StepName.REFUND):
        return _make(raw, None, _("credited when the deposit is refunded"))
    credit = (read.evidence(StepName.REFUND).get("recovery_credits") or {}).get(entry.terminal.sn) or {}
    amount = int(credit.get("amount_fen", 0) or 0)
    if not amount:
        return _make(raw, 0, _("not credited: no recovery value was recorded at the inspection"))
    paid_owed = int(credit.get("paid_fees_fen", 0) or 0) + int(credit.get("paid_penalties_fen", 0) or 0)
    return _make(
        raw,
        amount,
        _(
            "credited: the device came back as new (grade A); %(owed)s paid what was still owed, "
            "%(out)s was paid to you"
        )
        % {"owed": format_fen(paid_owed), "out": format_fen(int(credit.get("paid_out_fen", 0) or 0))},
    )


def _damage_line(read: _Case, raw: dict[str, Any]) -> StatementLine:
    entry = read.by_sn.get(raw.get("terminal", ""))
    grade = str((raw.get("params") or {}).get("grade", ""))
    if entry is None:
        return _make(raw, None, "")
    if entry.inspected_at is None:
        if entry.received_at is None and read.finished(StepName.RETURN):
            return _make(raw, 0, _("not charged: the device was not returned, so it was not inspected"))
        return _make(raw, None, _("when the device is inspected"))
    if entry.grade != grade:
        return _make(raw, 0, _("not charged: the device was graded %(grade)s") % {"grade": entry.grade})
    if entry.human_damage:
        return _make(
            raw, entry.damage_fen, _("damage charged: grade %(grade)s, caused by a person") % {"grade": grade}
        )
    return _make(
        raw,
        0,
        _("not charged: grade %(grade)s, the damage was not caused by a person (repaired free)")
        % {"grade": grade},
    )


def _deposit_line(read: _Case, raw: dict[str, Any]) -> StatementLine:
    if not read.finished(StepName.REFUND):
        return _make(raw, None, _("released when the device is back and inspected"))
    entry = read.by_sn.get(raw.get("terminal", ""))
    deposit_id = deposit_of_contract(entry.contract_id) if entry is not None and entry.contract_id else None
    for release in read.evidence(StepName.REFUND).get("deposits", []):
        if deposit_id is not None and release.get("deposit") == deposit_id:
            why = ""
            if release.get("refund_fen"):
                why = _("released: %(refund)s refunded, %(kept)s kept for what was owed") % {
                    "refund": format_fen(int(release["refund_fen"])),
                    "kept": format_fen(int(release["deposit_fen"]) - int(release["refund_fen"])),
                }
            else:
                why = _("released: all of it kept for what was owed")
            return _make(raw, int(release.get("deposit_fen", 0)), why)
    return _make(raw, 0, _("no deposit was held"))


def _recovery_credited(read: _Case) -> tuple[int | None, int | None]:
    """The recovery value credited and how much of it was paid out (None before the refund step)."""
    if not read.finished(StepName.REFUND):
        return None, None
    evidence = read.evidence(StepName.REFUND)
    return (
        int(evidence.get("recovery_credited_fen", 0) or 0),
        int(evidence.get("recovery_paid_out_fen", 0) or 0),
    )


def _sum(values: list[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _totals(
    read: _Case, quote: dict[str, Any], lines: list[StatementLine], final: dict[str, Any] | None
) -> tuple[list[TotalLine], int | None, int | None]:
    charges = [line for line in lines if line.effect in (OWED, IF) and line.code not in CREDIT_CODES]
    credits = [line for line in lines if line.code in CREDIT_CODES]
    charged = _sum([line.actual_fen for line in charges])
    deposit_held = int(quote.get("deposit_held_fen", 0))
    owed_quoted = int(quote.get("owed_fen", 0))
    refund_evidence = read.evidence(StepName.REFUND) if read.finished(StepName.REFUND) else None
    deducted = final["deducted_fen"] if final is not None else None
    from_deposit = int(refund_evidence.get("paid_owed_fen", 0)) if refund_evidence is not None else None
    refund = int(refund_evidence.get("refund_fen", 0)) if refund_evidence is not None else None
    still_owed = int(refund_evidence.get("still_owed_fen", 0)) if refund_evidence is not None else None
    credited = _recovery_credited(read)[0]
    credit_paid_owed = int(refund_evidence.get("recovery_paid_owed_fen", 0)) if refund_evidence else 0
    # What made the charges differ from the quote: a conditional charge that applied, an amount worked
    # out again on the day the contract ended.
    changed = [
        line.why
        for line in charges
        if line.why
        and line.actual_fen is not None
        and (
            (line.effect == IF and line.actual_fen)
            or (line.effect == OWED and line.actual_fen != line.quoted_fen)
        )
    ]
    deducted_why = (
        _("fees were deducted from the final settlement instead of the deposit") if deducted else ""
    )
    paid_why = [w for w in (deducted_why, *changed) if w]
    quoted_from_deposit = min(deposit_held, owed_quoted)
    quoted_refund = int(quote.get("expected_refund_fen", 0))
    quoted_owed = int(quote.get("expected_shortfall_fen", 0))

    # A credit (the recovery value of a device returned as new), like a conditional charge, is not in the
    # quote's totals: it explains what it changed.
    credit_why = [line.why for line in credits if line.why and line.actual_fen]
    owed_why = paid_why + (
        [
            _("the device recovery value paid %(amount)s of what was still owed")
            % {"amount": format_fen(credit_paid_owed)}
        ]
        if credit_paid_owed
        else []
    )

    def why_if(actual: int | None, quoted: int, reasons: list[str] | None = None) -> str:
        if actual is None or actual == quoted:
            return ""
        return "; ".join(paid_why if reasons is None else reasons)

    totals = [
        TotalLine("charged", _("Charged to you at closure"), owed_quoted, charged, "; ".join(changed)),
        TotalLine("deducted", _("Deducted from the final settlement"), 0, deducted, deducted_why),
        TotalLine(
            "from_deposit",
            _("Paid from the deposit"),
            quoted_from_deposit,
            from_deposit,
            why_if(from_deposit, quoted_from_deposit),
        ),
        TotalLine(
            "refund", _("Deposit refunded to you"), quoted_refund, refund, why_if(refund, quoted_refund)
        ),
    ]
    if credits or credited:
        totals.append(
            TotalLine(
                "recovery_credited",
                _("Device recovery value credited to you"),
                0,
                credited,
                "; ".join(credit_why) if credited else "",
            )
        )
    totals.append(
        TotalLine(
            "still_owed",
            _("Still owed by you"),
            quoted_owed,
            still_owed,
            why_if(still_owed, quoted_owed, owed_why),
        )
    )
    return totals, refund, still_owed


def _outcome_text(
    provisional: bool,
    refund: int | None,
    still_owed: int | None,
    credited: int | None = None,
    paid_out: int | None = None,
) -> str:
    if refund is None or still_owed is None:
        return _("Provisional: the closure is still under way, the figures not known yet are marked “—”.")
    if still_owed:
        text = _(
            "%(refund)s of the deposit was refunded to your settlement account; %(owed)s is still owed."
        ) % {
            "refund": format_fen(refund),
            "owed": format_fen(still_owed),
        }
    else:
        text = _("%(refund)s of the deposit was refunded to your settlement account; nothing is owed.") % {
            "refund": format_fen(refund)
        }
    if credited:
        text += " " + _(
            "The device recovery value credited to you, %(credited)s, paid %(owed)s of what was owed and "
            "%(out)s to your settlement account."
        ) % {
            "credited": format_fen(credited),
            "owed": format_fen(credited - (paid_out or 0)),
            "out": format_fen(paid_out or 0),
        }
    return text
