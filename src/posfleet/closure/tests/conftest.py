"""Builders for closure tests: a merchant's active terminal under a contract with a deposit, and the
people who ask, review and handle the return (each stepped up, as a destructive request needs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from posfleet.billing.models import ServiceContract
from posfleet.closure.runner import advance
from posfleet.closure.services import closure_decide, closure_quote, closure_request
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.testing.money import on_standard_plan, signed_contract
from posfleet.testing.personas import World, build_world, make_terminal

CONTRACT_START = date(2026, 6, 1)
TERMS = {
    "deposit_fen": 29_900,
    "annual_fee_fen": 9_900,
    "min_term_months": 12,
    "penalty_rule": "remaining_months",
    "penalty_monthly_fen": 1_000,
    "penalty_cap_fen": 12_000,
    "recovery_fee_fen": 5_000,
    "damage_prices": {"A": 0, "B": 5_000, "C": 30_000},
}


def person(world: World, name: str) -> Actor:
    """The persona ``name`` acting in the console, identity verified just now."""
    return Actor.for_user(world.users[name]).with_step_up(now())


@dataclass
class Setup:
    world: World
    terminal: Terminal
    contract: ServiceContract


def closable(world: World, sn: str = "CLS0001", **terms: object) -> Setup:
    terminal = make_terminal(world, sn, Status.ACTIVE, model=terms.pop("model", None))  # type: ignore[arg-type]
    on_standard_plan(world.merchant_a)
    contract = signed_contract(terminal, starts_on=CONTRACT_START, **{**TERMS, **terms})
    terminal.refresh_from_db()
    return Setup(world, terminal, contract)


def request_and_approve(setup: Setup, *, reason: str = "shop_closed"):  # type: ignore[no-untyped-def]
    requester = person(setup.world, "merchant_a")
    quote = closure_quote(actor=requester, sns=[setup.terminal.sn]).quote
    case = closure_request(actor=requester, sns=[setup.terminal.sn], reason=reason, quote_digest=quote.digest)
    closure_decide(actor=person(setup.world, "reviewer"), number=case.number, decision="approve")
    advance(case.pk)
    case.refresh_from_db()
    return case


@pytest.fixture
def world(db: None) -> World:
    return build_world()
