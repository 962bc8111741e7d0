"""Rate plans are versioned and effective-dated; contracts make fees due and collect the deposit."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.billing.errors import NoRatePlan
from posfleet.billing.models import (
    AccountKind,
    Deposit,
    PlanAssignment,
    RatePlan,
    RatePlanVersion,
    RateRule,
    ServiceContract,
    ServiceFeeDue,
)
from posfleet.billing.services.contracts import (
    Terms,
    add_months,
    contract_accept,
    contract_offer,
    penalty_for,
)
from posfleet.billing.services.plans import PlanBook, RuleSpec, plan_assign, plan_create, plan_version_add
from posfleet.billing.verify import verify_ledger
from posfleet.fleet.states import Status
from posfleet.platform.errors import Conflict, DomainError, PermissionDenied, ValidationFailed
from posfleet.testing.money import balance, on_standard_plan, signed_contract, standard_plan
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.refusals import assert_nothing_recorded

NOW = date(2026, 11, 20)


def plans_unchanged():
    """Around a refused plan change: plans, versions, rules and assignments as they were."""
    return assert_nothing_recorded(
        RatePlan.objects.all(),
        RatePlanVersion.objects.all(),
        RateRule.objects.all(),
        PlanAssignment.objects.all(),
    )


def contracts_unchanged():
    """Around a refused contract change: contracts, deposits and fees due as they were."""
    return assert_nothing_recorded(
        ServiceContract.objects.all(), Deposit.objects.all(), ServiceFeeDue.objects.all()
    )


def test_the_articles_default_plan_is_seeded(db):
    version = RatePlanVersion.objects.get(plan__code="standard", number=1)
    rules = {r.method: (r.rate, r.cap_fen) for r in version.rules.all()}
    assert rules["credit"] == (Decimal("0.006000"), None)
    assert rules["qr"] == (Decimal("0.004800"), None)
    assert rules["debit"] == (Decimal("0.005500"), 2000)


def test_the_version_in_force_is_the_one_at_the_transaction_date(world, actor_of):
    on_standard_plan(world.merchant_a, since=date(2025, 1, 1))
    admin = actor_of(world.user("admin"))
    with time_machine.travel(date(2026, 6, 1)):
        plan_version_add(
            actor=admin,
            plan=standard_plan(),
            effective_from=date(2026, 7, 1),
            rules={
                "credit": RuleSpec(Decimal("0.0058")),
                "debit": RuleSpec(Decimal("0.005"), cap_fen=1800),
                "qr": RuleSpec(Decimal("0.0038")),
            },
        )
    book = PlanBook([world.merchant_a.pk])
    june = book.quote(world.merchant_a.pk, None, date(2026, 6, 30), "credit", 100000)
    july = book.quote(world.merchant_a.pk, None, date(2026, 7, 1), "credit", 100000)
    assert (june.version.number, june.fee_fen, july.version.number, july.fee_fen) == (1, 600, 2, 580)
    assert book.quote(world.merchant_a.pk, None, date(2026, 7, 1), "debit", 10_000_000).fee_fen == 1800
    with pytest.raises(NoRatePlan):
        book.quote(world.merchant_a.pk, None, date(2024, 12, 31), "credit", 100)


def vip_on_a_terminal(world, sn):
    """Merchant A on the standard plan, one of its terminals on a "vip" plan (0.38 % on credit)."""
    terminal = make_terminal(world, sn, Status.ACTIVE)
    special = plan_create(
        actor=SYSTEM,
        code="vip",
        name="VIP",
        effective_from=date(2020, 1, 1),
        rules={"credit": RuleSpec(Decimal("0.0038"))},
    )
    on_standard_plan(world.merchant_a)
    plan_assign(
        actor=SYSTEM,
        merchant_id=world.merchant_a.pk,
        merchant_mid=world.merchant_a.mid,
        plan=special,
        terminal_id=terminal.pk,
        effective_from=date(2025, 1, 1),
    )
    return terminal, special


def test_a_terminal_assignment_wins_over_the_merchants(world):
    terminal, _special = vip_on_a_terminal(world, "SN-PLAN-0001")
    book = PlanBook([world.merchant_a.pk])
    assert book.quote(world.merchant_a.pk, terminal.pk, NOW, "credit", 10000).fee_fen == 38
    assert book.quote(world.merchant_a.pk, None, NOW, "credit", 10000).fee_fen == 60


def test_a_merchants_book_reads_the_plans_it_is_on_and_those_asked_for(world):
    """Ingest builds a book for every group: the rest of the catalogue (a competitor's plan entered
    for the comparison, plans no merchant of the group is on) is not read; asked for by id, it is."""
    terminal, special = vip_on_a_terminal(world, "SN-PLAN-0002")
    rival = plan_create(
        actor=SYSTEM,
        code="rival",
        name="Rival",
        effective_from=date(2020, 1, 1),
        rules={"credit": RuleSpec(Decimal("0.0050"))},
    )

    book = PlanBook([world.merchant_a.pk])
    assert set(book.versions) == {standard_plan().pk, special.pk}
    assert {book.rules[v.pk]["credit"].rate for vs in book.versions.values() for v in vs} == {
        Decimal("0.006"),
        Decimal("0.0038"),
    }
    assert book.quote(world.merchant_a.pk, terminal.pk, NOW, "credit", 10000).fee_fen == 38
    assert set(PlanBook([world.merchant_b.pk]).versions) == set()  # on no plan: nothing to quote

    asked = PlanBook([world.merchant_a.pk], plans=[rival.pk, special.pk])
    assert set(asked.versions) == {standard_plan().pk, special.pk, rival.pk}
    (version,) = asked.versions[rival.pk]
    assert asked.fee(version, "credit", 10000) == 50
    assert set(PlanBook().versions) >= {standard_plan().pk, special.pk, rival.pk}


def test_history_is_never_rewritten(world, actor_of):
    admin = actor_of(world.user("admin"))
    with time_machine.travel(NOW):
        with plans_unchanged(), pytest.raises(ValidationFailed):
            plan_version_add(
                actor=admin,
                plan=standard_plan(),
                effective_from=date(2026, 11, 19),
                rules={"credit": RuleSpec(Decimal("0.005"))},
            )
        with plans_unchanged(), pytest.raises(ValidationFailed):
            plan_assign(
                actor=admin,
                merchant_id=world.merchant_a.pk,
                merchant_mid=world.merchant_a.mid,
                plan=standard_plan(),
                effective_from=date(2026, 1, 1),
            )
    assert RatePlanVersion.objects.filter(plan__code="standard").count() == 1


@pytest.mark.parametrize(
    "rules",
    [
        {},
        {"bitcoin": RuleSpec(Decimal("0.01"))},
        {"credit": RuleSpec(Decimal("-0.01"))},
        {"credit": RuleSpec(Decimal("0.5"))},
        {"credit": RuleSpec(Decimal("0.0060001"))},
        {"debit": RuleSpec(Decimal("0.005"), cap_fen=100, min_fen=200)},
    ],
)
def test_bad_rules_are_refused(world, rules):
    with plans_unchanged(), pytest.raises(ValidationFailed):
        plan_create(actor=SYSTEM, code="bad", name="bad", effective_from=NOW, rules=rules)


def test_only_admins_manage_plans(world, actor_of):
    for persona in ("reviewer", "agent_a", "merchant_a"):
        with plans_unchanged(), pytest.raises(PermissionDenied):
            plan_create(
                actor=actor_of(world.user(persona)),
                code="x",
                name="x",
                effective_from=NOW,
                rules={"credit": RuleSpec(Decimal("0.005"))},
            )


def test_competitor_plans_are_for_comparison_only(world):
    rival = plan_create(
        actor=SYSTEM,
        code="rival",
        name="Rival",
        is_competitor=True,
        effective_from=NOW,
        rules={"credit": RuleSpec(Decimal("0.0055"))},
    )
    with plans_unchanged(), pytest.raises(ValidationFailed):
        plan_assign(
            actor=SYSTEM,
            merchant_id=world.merchant_a.pk,
            merchant_mid=world.merchant_a.mid,
            plan=rival,
            effective_from=NOW,
        )


def test_accepting_a_contract_makes_fees_due_and_collects_the_deposit(world):
    terminal = make_terminal(world, "SN-CONTRACT-1", Status.ACTIVE)
    contract = signed_contract(
        terminal, deposit_fen=29900, annual_fee_fen=9900, starts_on=date(2025, 3, 31), term_months=24
    )
    dues = list(ServiceFeeDue.objects.filter(contract=contract).values_list("period", "due_on", "amount_fen"))
    assert dues == [(1, date(2025, 3, 31), 9900), (2, date(2026, 3, 31), 9900)]
    deposit = Deposit.objects.get(contract=contract)
    assert (deposit.amount_fen, deposit.status) == (29900, "held")
    org = world.merchant_a.organisation_id
    assert balance(org, AccountKind.DEPOSIT_HELD) == 29900
    assert verify_ledger().ok
    kinds = list(AuditEvent.objects.order_by("-seq").values_list("event_type", flat=True)[:3])
    assert kinds == [EventType.DEPOSIT_COLLECTED, EventType.CONTRACT_ACCEPTED, EventType.CONTRACT_OFFERED]
    with contracts_unchanged(), pytest.raises(Conflict):
        contract_accept(actor=SYSTEM, contract=contract)


def test_one_active_contract_per_terminal(world):
    terminal = make_terminal(world, "SN-CONTRACT-2", Status.ACTIVE)
    signed_contract(terminal)
    second = contract_offer(
        actor=SYSTEM,
        terminal_id=terminal.pk,
        merchant=world.merchant_a,
        plan=standard_plan(),
        terms=Terms(starts_on=NOW),
    )
    with contracts_unchanged(), pytest.raises(Conflict):
        contract_accept(actor=SYSTEM, contract=second)
    assert Deposit.objects.count() == 1
    assert ServiceContract.objects.get(pk=second.pk).status == "offered"


def test_only_the_merchant_or_an_admin_accepts(world, actor_of):
    terminal = make_terminal(world, "SN-CONTRACT-3", Status.ACTIVE)
    offer = contract_offer(
        actor=actor_of(world.user("agent_a")),
        terminal_id=terminal.pk,
        merchant=world.merchant_a,
        plan=standard_plan(),
        terms=Terms(starts_on=NOW, deposit_fen=100),
    )
    for persona in ("merchant_b", "agent_a", "reviewer"):
        with contracts_unchanged(), pytest.raises(DomainError):
            contract_accept(actor=actor_of(world.user(persona)), contract=offer)
    contract_accept(actor=actor_of(world.user("merchant_a")), contract=offer)
    with contracts_unchanged(), pytest.raises(PermissionDenied):
        contract_offer(
            actor=actor_of(world.user("agent_b")),
            terminal_id=terminal.pk,
            merchant=world.merchant_a,
            plan=standard_plan(),
            terms=Terms(starts_on=NOW),
        )


@pytest.mark.parametrize(
    ("rule", "ends_on", "expected"),
    [
        ({"penalty_rule": "fixed", "penalty_fixed_fen": 20000}, date(2025, 6, 1), 20000),
        ({"penalty_rule": "fixed", "penalty_fixed_fen": 20000}, date(2026, 1, 1), 0),  # min term served
        ({"penalty_rule": "remaining_months", "penalty_monthly_fen": 3000}, date(2025, 6, 15), 7 * 3000),
        (
            {"penalty_rule": "remaining_months", "penalty_monthly_fen": 3000, "penalty_cap_fen": 10000},
            date(2025, 6, 15),
            10000,
        ),
        ({"penalty_rule": "none"}, date(2025, 2, 1), 0),
    ],
)
def test_early_termination_penalty(world, rule, ends_on, expected):
    terminal = make_terminal(world, "SN-PENALTY-1", Status.ACTIVE)
    contract = signed_contract(terminal, starts_on=date(2025, 1, 1), min_term_months=12, **rule)
    assert penalty_for(contract, ends_on) == expected


def test_bad_terms_are_refused(world):
    terminal = make_terminal(world, "SN-TERMS-01", Status.ACTIVE)
    for terms in (
        Terms(starts_on=NOW, deposit_fen=-1),
        Terms(starts_on=NOW, recovery_value_fen=-1),
        Terms(starts_on=NOW, term_months=7),
        Terms(starts_on=NOW, min_term_months=24),
        Terms(starts_on=NOW, damage_prices={"Z": 1}),
    ):
        with contracts_unchanged(), pytest.raises(ValidationFailed):
            contract_offer(
                actor=SYSTEM,
                terminal_id=terminal.pk,
                merchant=world.merchant_a,
                plan=standard_plan(),
                terms=terms,
            )


def test_add_months_clamps_to_the_month_end():
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
