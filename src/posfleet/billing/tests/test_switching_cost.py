"""The true cost of switching (issue 14): a plan's total over the period is the sum of its lines — the
transaction fees, the service and SIM fees, and for another provider's plan the early-termination
penalty (the closure quote's, to the fen) and the deposit it asks for; a lower rate that the penalty
outweighs is not recommended; months without sales are not averaged in.

Merchant A, on the standard plan, holds one terminal under a contract signed 2026-06-01: ¥99.00 a year,
deposit ¥299.00, minimum 12 months, penalty ¥10.00 a month left. Today is 2026-11-20: 5 months served,
7 left, a ¥70.00 penalty. It sold ¥1,000.00 by credit card on 2026-09-14 and on 2026-10-14, nothing in
August."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.utils import translation

from posfleet.billing.comparison import (
    CONTRACTS_KEPT,
    DEPOSIT_HELD,
    FEES,
    NEW_DEPOSIT,
    PENALTY,
    SERVICE,
    compare_plans,
)
from posfleet.billing.comparison_words import line_text, verdict
from posfleet.billing.services.plans import RuleSpec, plan_create
from posfleet.billing.statements import Month
from posfleet.billing.tests.test_statements import SH, active_terminal, ingest, txn
from posfleet.closure.quote import build_quote
from posfleet.platform.money import to_fen
from posfleet.testing.money import on_standard_plan, signed_contract
from posfleet.testing.personas import SYSTEM

TODAY = datetime(2026, 11, 20, 10, 0, tzinfo=SH)
AUGUST, OCTOBER = Month(2026, 8), Month(2026, 10)
TERMS = {
    "deposit_fen": 29_900,
    "annual_fee_fen": 9_900,
    "min_term_months": 12,
    "penalty_rule": "remaining_months",
    "penalty_monthly_fen": 1_000,
    "penalty_cap_fen": 12_000,
}
EVERY_METHOD = ("credit", "debit", "qr", "nfc", "foreign")


def competitor(code: str, rate: str, **kw: int):  # type: ignore[no-untyped-def]
    return plan_create(
        actor=SYSTEM,
        code=code,
        name=code.title(),
        is_competitor=True,
        provider_name=f"{code.title()} Ltd",
        effective_from=date(2025, 1, 1),
        rules={m: RuleSpec(Decimal(rate)) for m in EVERY_METHOD},
        **kw,
    )


@pytest.fixture(autouse=True)
def in_english():
    """The words are checked in English (the site's default is Chinese), whatever ran before."""
    with translation.override("en"):
        yield


@pytest.fixture
def merchant(world):
    with time_machine.travel(TODAY, tick=False):
        on_standard_plan(world.merchant_a)
        terminal = active_terminal(
            world, "SN-SWITCH-01", world.merchant_a, since=datetime(2026, 5, 1, tzinfo=SH)
        )
        signed_contract(terminal, starts_on=date(2026, 6, 1), **TERMS)
        ingest(
            txn(terminal, 1, 100_000, day=date(2026, 9, 14)),  # standard: ¥6.00
            txn(terminal, 2, 100_000, day=date(2026, 10, 14)),
        )
    return world.merchant_a, terminal


def compare(merchant_id: int):  # type: ignore[no-untyped-def]
    with time_machine.travel(TODAY, tick=False):
        return compare_plans(merchant_id=merchant_id, first=AUGUST, last=OCTOBER, on=TODAY.date())


def test_a_lower_rate_that_the_penalty_outweighs_is_not_recommended(merchant):
    """The bug: Rival's 0.30 % saves ¥6.00 of fees and ¥24.75 of service fees, but leaving costs a
    ¥70.00 penalty: it costs ¥39.25 more, and the verdict says so."""
    m, _terminal = merchant
    competitor("rival", "0.003")
    result = compare(m.pk)
    standard, rival = result.plans
    assert (standard.code, standard.is_current, rival.code) == ("standard", True, "rival")
    assert (standard.fees_total_fen, rival.fees_total_fen) == (1_200, 600)
    assert (standard.service_total_fen, rival.service_total_fen) == (2_475, 0)  # ¥99.00 × 3/12
    assert rival.penalty_fen == 7_000  # 7 months left × ¥10.00
    assert (standard.total_fen, rival.total_fen) == (3_675, 7_600)
    assert rival.saving_fen == -3_925
    assert result.best is None
    assert result.best_ours is None
    assert result.tempting is rival
    assert verdict(result) == (
        "Stay on 标准费率 Standard: Rival has lower transaction fees, but over these 3 months it would have "
        "cost ¥39.25 more, everything included. Its transaction fees are ¥6.00 lower. Its service and SIM "
        "fees are ¥24.75 lower. Leaving your contract early costs ¥70.00 in early-termination penalties "
        "(up to 7 months left of its minimum term). It is offered by Rival Ltd: to switch, your terminals "
        "with us would be closed first."
    )


def test_every_total_is_the_sum_of_its_lines(merchant):
    m, terminal = merchant
    competitor("rival", "0.003")
    competitor("pricey", "0.002", annual_fee_fen=12_000, deposit_fen=20_000)
    plan_create(  # ours, cheaper: moving to it keeps the contract
        actor=SYSTEM,
        code="lite",
        name="Lite",
        effective_from=date(2025, 1, 1),
        rules={m: RuleSpec(Decimal("0.004")) for m in EVERY_METHOD},
    )
    result = compare(m.pk)
    by_code = {p.code: p for p in result.plans}
    for plan in result.plans:
        counted = [line for line in plan.lines if line.counted]
        assert plan.total_fen == sum(line.amount_fen for line in counted), plan.code
        assert plan.total_fen == sum(plan.monthly_fen) + plan.once_total_fen, plan.code
        assert all(line_text(line) != line.code for line in plan.lines), plan.code  # every line has words
    pricey = by_code["pricey"]
    assert [(line.code, line.amount_fen, line.counted) for line in pricey.lines] == [
        (FEES, 400, True),
        (SERVICE, 3_000, True),  # ¥120.00 a year for its one terminal, 3 months
        (PENALTY, 7_000, True),
        (NEW_DEPOSIT, 20_000, True),
        (DEPOSIT_HELD, 29_900, False),  # explains the set-off; not a second cost
    ]
    penalty = pricey.lines[2]
    assert (penalty.params["sn"], penalty.params["months_left"], penalty.params["min_term_months"]) == (
        terminal.sn,
        7,
        12,
    )
    assert line_text(pricey.lines[2]).endswith(
        "for leaving on 20 Nov 2026: 7 months left of the minimum 12 × the monthly fee"
    )  # the day as the reader's language writes it, not as stored
    with translation.override("zh-hans"):
        assert "2026年11月20日" in line_text(pricey.lines[2])
    # The deposit: ¥99.00 of the fee due pays first, then ¥70.00 of penalty (the deposit lost), ¥130.00 back.
    assert pricey.lines[4].params == {
        "held_fen": 29_900,
        "penalty_fen": 7_000,
        "owed_fen": 9_900,
        "refund_fen": 13_000,
    }
    lite = by_code["lite"]
    assert [(line.code, line.amount_fen, line.counted) for line in lite.lines] == [
        (FEES, 800, True),
        (SERVICE, 2_475, True),  # the contract carries on
        (CONTRACTS_KEPT, 0, False),
    ]
    assert result.best is lite  # rival and pricey cost more in total
    assert result.best_ours is lite
    assert verdict(result).startswith(
        "Switching to Lite would have cost ¥4.00 less than staying on 标准费率 Standard over these 3 months"
    )


def test_months_without_sales_are_not_averaged_in(merchant):
    m, _terminal = merchant
    result = compare(m.pk)
    (standard,) = result.plans
    assert result.with_sales == [False, True, True]  # August: nothing sold
    assert standard.monthly_fen == [825, 600 + 825, 600 + 825]
    assert standard.average_fen == 1_425  # (¥14.25 + ¥14.25) / 2, not ¥36.75 / 3
    assert standard.average_fen != to_fen(Decimal(standard.total_fen) / 3)
    assert result.months_with_sales == 2


def test_the_penalty_is_the_closure_quotes_for_the_same_terminal_and_day(merchant):
    m, terminal = merchant
    competitor("rival", "0.003")
    result = compare(m.pk)
    with time_machine.travel(TODAY, tick=False):
        quote = build_quote(
            merchant_id=m.pk,
            organisation_id=m.organisation_id,
            terminals=[(terminal.pk, terminal.sn)],
            on=TODAY.date(),
        )
    penalties = [line.amount_fen for line in quote.lines if line.code == "penalty"]
    assert result.plans[1].penalty_fen == sum(penalties) == 7_000
    assert result.leaving is not None
    assert result.leaving.deposit_held_fen == quote.deposit_held_fen
    assert result.leaving.set_off.refund_fen == quote.expected_refund_fen == 13_000
