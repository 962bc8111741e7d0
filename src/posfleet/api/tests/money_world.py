"""Money fixtures for the API tests: merchants on the standard plan, signed contracts with deposits,
an offered contract, and what a refusal must leave untouched (rows, journals, audit, outbox)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from posfleet.api.tests.helpers import SN_A, SN_A1, SN_B
from posfleet.audit.models import AuditEvent
from posfleet.billing.models import (
    Deposit,
    Entry,
    Journal,
    PlanAssignment,
    RatePlan,
    RatePlanVersion,
    ServiceContract,
    SettlementBatch,
    SettlementRun,
    Transaction,
)
from posfleet.billing.services.contracts import Terms, contract_offer
from posfleet.billing.verify import verify_ledger
from posfleet.fleet.models import Terminal
from posfleet.platform.clock import today
from posfleet.platform.models import OutboxMessage
from posfleet.testing.money import on_standard_plan, signed_contract, standard_plan
from posfleet.testing.personas import SYSTEM, World

MID_A, MID_B, MID_A1 = "100000000000001", "100000000000002", "100000000000003"


@dataclass
class Money:
    contract_a: ServiceContract  # SN_A, merchant A, active, deposit ¥299.00
    contract_b: ServiceContract  # SN_B, merchant B, active, deposit ¥299.00
    offered_a1: ServiceContract  # SN_A1, merchant A1 (sub-agent A1), offered
    deposit_a: Deposit
    deposit_b: Deposit


def offer(terminal: Terminal, **terms: Any) -> ServiceContract:
    assert terminal.merchant is not None
    return contract_offer(
        actor=SYSTEM,
        terminal_id=terminal.pk,
        merchant=terminal.merchant,
        plan=standard_plan(),
        terms=Terms(**{"starts_on": today(), "deposit_fen": 19900, **terms}),
    )


def build_money(world: World, fleet: dict[str, Terminal]) -> Money:
    for merchant in (world.merchant_a, world.merchant_b, world.merchant_a1):
        on_standard_plan(merchant)
    contract_a = signed_contract(fleet[SN_A])
    contract_b = signed_contract(fleet[SN_B])
    return Money(
        contract_a=contract_a,
        contract_b=contract_b,
        offered_a1=offer(fleet[SN_A1]),
        deposit_a=contract_a.deposit,
        deposit_b=contract_b.deposit,
    )


@pytest.fixture
def money(world: World, fleet: dict[str, Terminal]) -> Iterator[Money]:
    yield build_money(world, fleet)
    report = verify_ledger()
    assert report.ok, report.problems  # conservation after every test that moves money


@dataclass(frozen=True)
class MoneyTrace:
    rows: dict[str, Any]
    journals: int
    entries: int
    audit: int
    outbox: int


def money_trace() -> MoneyTrace:
    """What a refusal must leave untouched."""
    return MoneyTrace(
        rows={
            "plans": list(RatePlan.objects.values_list("code", flat=True).order_by("code")),
            "versions": RatePlanVersion.objects.count(),
            "assignments": PlanAssignment.objects.count(),
            "contracts": list(ServiceContract.objects.values_list("id", "status").order_by("id")),
            "deposits": list(
                Deposit.objects.values_list("id", "status", "refunded_fen", "forfeited_fen").order_by("id")
            ),
            "transactions": Transaction.objects.count(),
            "settlements": SettlementBatch.objects.count(),
            "runs": list(SettlementRun.objects.values_list("business_date", "status", "attempts")),
        },
        journals=Journal.objects.count(),
        entries=Entry.objects.count(),
        audit=AuditEvent.objects.count(),
        outbox=OutboxMessage.objects.count(),
    )
