"""Money the API takes (issue 11: "１００" released a deposit in the console): amounts are JSON integers of
fen, nothing else — a string of digits of any script (full-width, Arabic-Indic, superscript…) or a
float is a 422 problem before anything runs: no step-up code spent, nothing moved."""

from __future__ import annotations

import pytest

from posfleet.api.tests.helpers import SN_A1, assert_problem
from posfleet.api.tests.money_world import money, money_trace
from posfleet.billing.models import Deposit

__all__ = ["money"]


@pytest.mark.parametrize(
    "refund", ["１００", "١٠٠", "१००", "²", "100", "100.00", "¥100", 100.0, 1e2 + 0.5, True]
)
def test_a_refund_amount_that_is_not_an_integer_of_fen_is_refused(money, api_as, clock, refund):
    before = money_trace()
    response = api_as("reviewer").post(
        f"/deposits/{money.deposit_a.pk}/refund",
        {"refund_fen": refund, "reason": "contract_closed"},
        totp=clock.code(),
    )
    problem = assert_problem(response, 422, "validation_error")
    assert "refund_fen" in str(problem)
    assert money_trace() == before  # rows, journals, entries, audit (no step-up spent) and outbox
    assert Deposit.objects.get(pk=money.deposit_a.pk).status == Deposit.Status.HELD


@pytest.mark.parametrize("fee", ["９９００", "٩٩٠٠", "9900"])
def test_contract_amounts_are_integers_of_fen_too(money, api_as, fee):
    before = money_trace()
    response = api_as("admin").post(
        "/contracts",
        {"terminal": SN_A1, "plan": "standard", "starts_on": "2027-01-01", "annual_fee_fen": fee},
    )
    assert_problem(response, 422, "validation_error")
    assert money_trace() == before
