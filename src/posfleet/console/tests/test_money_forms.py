"""Rate plans, plan assignment, contract offer and acceptance, deposit release from the console: rates
typed in percent and money in yuan; every refusal is shown and changes nothing (no row, no journal, no
audit event)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import (
    Deposit,
    Journal,
    PlanAssignment,
    RatePlan,
    RatePlanVersion,
    RateRule,
    ServiceContract,
    ServiceFeeDue,
)
from posfleet.billing.services.plans import RuleSpec, plan_create
from posfleet.console.tests.helpers import htmx, totp
from posfleet.console.tests.test_money_access import MID_A, money  # noqa: F401  (fixture)
from posfleet.fleet.states import Status
from posfleet.testing.personas import SYSTEM, make_terminal

TODAY = date(2027, 1, 15)  # the console tests' clock (helpers.T0)


def trace() -> tuple[int, ...]:
    """What a refused form must leave as it was."""
    return (
        RatePlan.objects.count(),
        RatePlanVersion.objects.count(),
        RateRule.objects.count(),
        PlanAssignment.objects.count(),
        ServiceContract.objects.count(),
        Deposit.objects.filter(status="held").count(),
        Journal.objects.count(),
        AuditEvent.objects.count(),
    )


def events(kind: EventType) -> int:
    return AuditEvent.objects.filter(event_type=kind).count()


PLAN = {
    "code": "rival-2027",
    "name": "Rival 2027",
    "is_competitor": "on",
    "provider_name": "Rival Payments Ltd",
    "effective_from": "2027-01-15",
    "settlement_cycle": "t1",
    "rate_credit": "0.38%",
    "rate_debit": "0.38",
    "cap_debit": "15元",
    "rate_qr": "０.３０％",
    "min_qr": "0.01",
}


def test_a_plan_is_created_from_percent_and_yuan(money, login):  # noqa: F811
    response = login("admin").post("/console/plans/new/", PLAN)
    assert response.status_code == 302
    assert response["Location"] == "/console/plans/rival-2027/"
    plan = RatePlan.objects.get(code="rival-2027")
    assert (plan.is_competitor, plan.provider_name) == (True, "Rival Payments Ltd")
    rules = {r.method: (r.rate, r.cap_fen, r.min_fen) for r in RateRule.objects.filter(version__plan=plan)}
    assert rules == {
        "credit": (Decimal("0.003800"), None, None),
        "debit": (Decimal("0.003800"), 1500, None),
        "qr": (Decimal("0.003000"), None, 1),
    }
    assert events(EventType.PLAN_CREATED) == 1
    page = login("reviewer").get("/console/plans/rival-2027/").content.decode()
    assert "0.38%" in page
    assert "¥15.00" in page
    assert 'data-testid="new-version"' not in page  # reviewers read, admins change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rate_credit": "abc"}, "Enter a rate in percent, such as 0.60%."),
        ({"rate_credit": "12%"}, "A rate is below 10%."),
        ({"rate_credit": "0.12345%"}, "A rate has at most four decimals of a percent."),
        ({"cap_debit": "15.001"}, "An amount has at most two decimals (fen)."),
        ({"rate_nfc": "", "cap_nfc": "5"}, "Give the rate too, or clear the cap and minimum."),
        ({"provider_name": ""}, "Say whose plan it is."),
        ({"min_debit": "20", "cap_debit": "15"}, "The minimum cannot be above the cap."),
        ({"code": "standard"}, "A plan with this code exists already."),
        (
            {"rate_credit": "", "rate_debit": "", "cap_debit": "", "rate_qr": "", "min_qr": ""},
            "Give a rate for at least one payment method.",
        ),
    ],
)
def test_a_refused_plan_form_says_why_and_changes_nothing(money, login, change, message):  # noqa: F811
    before = trace()
    response = login("admin").post("/console/plans/new/", {**PLAN, **change})
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    assert 'data-testid="form-invalid"' in html or 'data-testid="form-error"' in html
    assert trace() == before


def test_a_new_version_applies_from_a_date_and_never_backwards(money, login):  # noqa: F811
    client = login("admin")
    form = client.get("/console/plans/standard/versions/new/").content.decode()
    assert 'value="0.60%"' in form  # starts from the current rates
    assert 'value="20.00"' in form  # the debit cap
    rates = {"settlement_cycle": "t1", "rate_credit": "0.58%", "rate_debit": "0.50%", "cap_debit": "18"}
    before = trace()
    refused = client.post("/console/plans/standard/versions/new/", {**rates, "effective_from": "2027-01-14"})
    assert "Changes apply from today or later; history is never rewritten." in refused.content.decode()
    assert trace() == before
    done = client.post("/console/plans/standard/versions/new/", {**rates, "effective_from": "2027-02-01"})
    assert done.status_code == 302
    version = RatePlanVersion.objects.get(plan__code="standard", number=2)
    assert version.effective_from == date(2027, 2, 1)
    assert {r.method: (r.rate, r.cap_fen) for r in version.rules.all()} == {
        "credit": (Decimal("0.005800"), None),
        "debit": (Decimal("0.005000"), 1800),
    }
    assert events(EventType.PLAN_VERSION_ADDED) == 1


def test_assigning_a_plan_to_a_merchant_from_a_date(money, login):  # noqa: F811
    plan_create(
        actor=SYSTEM,
        code="lite",
        name="Lite",
        effective_from=date(2026, 1, 1),
        rules={"credit": RuleSpec(Decimal("0.005"))},
    )
    plan_create(
        actor=SYSTEM,
        code="rival",
        name="Rival",
        is_competitor=True,
        provider_name="R",
        effective_from=date(2026, 1, 1),
        rules={"credit": RuleSpec(Decimal("0.003"))},
    )
    client = login("admin")
    assigned = events(EventType.PLAN_ASSIGNED)
    form = client.get(f"/console/merchants/{MID_A}/plan/").content.decode()
    assert 'value="lite"' in form
    assert 'value="rival"' not in form  # a competitor's plan is for comparison only
    url = f"/console/merchants/{MID_A}/plan/"
    before = trace()
    for data, message in (
        ({"plan": "rival", "effective_from": "2027-02-01"}, "Select a valid choice."),
        (
            {"plan": "lite", "effective_from": "2027-02-01", "terminal": "SN-NOT-HERE"},
            "This merchant has no terminal with this SN.",
        ),
        ({"plan": "lite", "effective_from": "2026-12-01"}, "Changes apply from today or later"),
    ):
        assert message in client.post(url, data).content.decode(), data
        assert trace() == before
    response = client.post(url, {"plan": "lite", "effective_from": "2027-02-01"})
    assert response["Location"] == f"/console/merchants/{MID_A}/money/"
    assignment = PlanAssignment.objects.get(merchant__mid=MID_A, effective_from=date(2027, 2, 1))
    assert (assignment.plan.code, assignment.terminal) == ("lite", None)
    assert events(EventType.PLAN_ASSIGNED) == assigned + 1
    again = client.post(url, {"plan": "lite", "effective_from": "2027-02-01"}).content.decode()
    assert "There is already a plan change on that day." in again
    page = client.get(f"/console/merchants/{MID_A}/money/").content.decode()
    assert "Lite from 1 Feb 2027" in page


OFFER = {
    "plan": "standard",
    "starts_on": "2027-01-20",
    "term_months": "24",
    "annual_fee": "99",
    "deposit": "299.00元",
    "min_term_months": "6",
    "penalty_rule": "remaining_months",
    "penalty_monthly": "50",
    "penalty_cap": "200",
    "recovery_fee": "150",
    "recovery_value": "30",
    "damage_B": "50",
    "damage_C": "300",
}


def test_offer_then_the_merchant_reads_and_accepts(money, login, world):  # noqa: F811
    terminal = make_terminal(world, "SN-OFFER-0001", Status.ACTIVE, merchant=world.merchant_b)
    offered, accepted, collected = (
        events(EventType.CONTRACT_OFFERED),
        events(EventType.CONTRACT_ACCEPTED),
        events(EventType.DEPOSIT_COLLECTED),
    )
    admin = login("admin")
    assert 'value="SN-OFFER-0001"' in admin.get("/console/contracts/new/?sn=SN-OFFER-0001").content.decode()
    response = admin.post("/console/contracts/new/", {**OFFER, "terminal": "sn-offer-0001"})
    contract = ServiceContract.objects.get(terminal=terminal)
    assert response["Location"] == f"/console/contracts/{contract.pk}/"
    assert (contract.status, contract.annual_fee_fen, contract.deposit_fen, contract.term_months) == (
        "offered",
        9900,
        29900,
        24,
    )
    assert (contract.penalty_rule, contract.penalty_monthly_fen, contract.penalty_cap_fen) == (
        "remaining_months",
        5000,
        20000,
    )
    assert (contract.recovery_fee_fen, contract.damage_prices) == (15000, {"B": 5000, "C": 30000})
    assert contract.recovery_value_fen == 3000
    assert events(EventType.CONTRACT_OFFERED) == offered + 1

    merchant = login("merchant_b")
    page = merchant.get(f"/console/contracts/{contract.pk}/").content.decode()
    assert 'data-testid="offer-banner"' in page
    assert 'data-testid="term-annual-fee">¥99.00<' in page
    assert 'data-testid="term-deposit">¥299.00<' in page
    assert "¥50.00 per remaining month" in page
    assert "at most ¥200.00" in page
    assert 'data-testid="term-recovery">¥150.00<' in page
    assert 'data-testid="term-recovery-value">¥30.00<' in page
    assert "grade C: ¥300.00" in page
    assert 'data-testid="penalty-table"' in page  # ending after 0, 1, … months: ¥200.00 (cap), …, ¥0.00
    assert "20 Jan 2027" in page
    assert 'data-testid="accept-form"' in page
    assert 'data-testid="accept-form"' not in admin.get(f"/console/contracts/{contract.pk}/").content.decode()

    before = trace()
    merchant.post(f"/console/contracts/{contract.pk}/accept/", {})  # the box not ticked
    assert trace() == before
    merchant.post(f"/console/contracts/{contract.pk}/accept/", {"confirm": "on"})
    contract.refresh_from_db()
    assert contract.status == "active"
    assert Deposit.objects.get(contract=contract).amount_fen == 29900
    assert list(ServiceFeeDue.objects.filter(contract=contract).values_list("due_on", "amount_fen")) == [
        (date(2027, 1, 20), 9900),
        (date(2028, 1, 20), 9900),
    ]
    assert (events(EventType.CONTRACT_ACCEPTED), events(EventType.DEPOSIT_COLLECTED)) == (
        accepted + 1,
        collected + 1,
    )


def test_refused_offers_change_nothing(money, login, world):  # noqa: F811
    make_terminal(world, "SN-OFFER-STOCK", Status.IN_STOCK)
    before = trace()
    admin = (
        login("admin")
        .post("/console/contracts/new/", {**OFFER, "terminal": "SN-OFFER-STOCK"})
        .content.decode()
    )
    assert "A contract is offered for a terminal bound to a merchant or active." in admin
    other = (
        login("agent_a")
        .post("/console/contracts/new/", {**OFFER, "terminal": "SN-MONEY-B01"})
        .content.decode()
    )
    assert "There is no terminal with this SN in your scope." in other
    bad = login("admin").post(
        "/console/contracts/new/", {**OFFER, "terminal": "SN-MONEY-B01", "min_term_months": "0"}
    )
    assert "A penalty applies only before a minimum term." in bad.content.decode()
    amount = login("admin").post(
        "/console/contracts/new/", {**OFFER, "terminal": "SN-MONEY-B01", "deposit": "-5"}
    )
    assert "The amount cannot be negative." in amount.content.decode()
    assert trace() == before


def test_a_negative_recovery_value_is_refused_at_its_field(money, login, world):  # noqa: F811
    make_terminal(world, "SN-OFFER-0002", Status.ACTIVE, merchant=world.merchant_b)
    before = trace()
    response = login("admin").post(
        "/console/contracts/new/", {**OFFER, "terminal": "SN-OFFER-0002", "recovery_value": "-30"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="form-invalid"' in page
    assert "The amount cannot be negative." in page
    assert 'name="recovery_value"' in page
    assert trace() == before


RELEASE = "/console/deposits/{}/release/"


def test_deposit_release_needs_a_reason_and_a_fresh_code_and_happens_once(money, login):  # noqa: F811
    client = login("reviewer")
    url = RELEASE.format(money.deposit.pk)
    dialog = client.get(url, **htmx()).content.decode()
    assert "<html" not in dialog
    assert 'name="totp"' not in dialog  # the code comes with the confirmation of the amounts
    assert 'data-testid="review-release"' in dialog
    assert 'data-testid="deposit-amount">¥299.00<' in dialog
    before = trace()
    for data, message in (
        ({"refund": "300", "reason": "device_damaged"}, "The refund cannot exceed the deposit."),
        ({"refund": "199", "reason": "other"}, "Say in the note what the other reason is."),
        ({"refund": "abc", "reason": "device_damaged"}, "is not an amount"),
        ({"refund": "199"}, "This field is required."),
    ):
        html = client.post(url, data, **htmx()).content.decode()
        assert message in html, data
        assert 'data-testid="release-readback"' not in html, data
    assert trace() == before

    # the amounts read back; nothing moves until they are confirmed with a fresh code
    step = {"refund": "199.00", "reason": "device_damaged", "note": "screen", "confirm_fen": "19900"}
    review = client.post(
        url, {k: v for k, v in step.items() if k != "confirm_fen"}, **htmx()
    ).content.decode()
    assert "You are refunding ¥199.00 to Shop A and forfeiting ¥100.00" in review
    assert 'name="totp"' in review
    for data, message in (
        (step, "This field is required."),
        ({**step, "totp": "000000"}, "The verification code is wrong"),
    ):
        html = client.post(url, data, **htmx()).content.decode()
        assert message in html, data
        assert "You are refunding ¥199.00 to Shop A" in html  # still the confirmation
        assert 'data-testid="release-done"' not in html
    # the wrong code left a failed verification in the audit chain; nothing else changed
    assert trace()[:-1] == before[:-1]
    assert not AuditEvent.objects.filter(event_type=EventType.DEPOSIT_RELEASED).exists()

    response = client.post(url, {**step, "totp": totp()}, **htmx())
    assert 'data-testid="release-done"' in response.content.decode()
    assert response["HX-Trigger"] == "money-changed"
    deposit = Deposit.objects.get(pk=money.deposit.pk)
    assert (deposit.status, deposit.refunded_fen, deposit.forfeited_fen) == ("refunded", 19900, 10000)
    event = AuditEvent.objects.get(event_type=EventType.DEPOSIT_RELEASED)
    assert (event.actor_label, event.reason, event.note) == ("reviewer", "device_damaged", "screen")

    journals = Journal.objects.count()
    for data in (
        {"refund": "299", "reason": "contract_ended"},
        {**step, "refund": "299", "confirm_fen": "29900"},
    ):
        again = client.post(url, data, **htmx())
        html = again.content.decode()
        assert again.status_code == 409
        assert 'data-testid="already-released"' in html
        assert "deposit_already_refunded" in html
        assert "¥199.00 was refunded and ¥100.00 forfeited" in html
    assert Journal.objects.count() == journals
    assert AuditEvent.objects.filter(event_type=EventType.DEPOSIT_RELEASED).count() == 1
    page = client.get(url).content.decode()  # without htmx: a page of its own, saying so
    assert 'data-testid="already-released"' in page
    assert "<html" in page


def test_deposit_release_without_javascript_goes_back_to_the_contract(money, login):  # noqa: F811
    client = login("admin")
    url = RELEASE.format(money.deposit.pk)
    review = client.post(url, {"refund": "0", "reason": "device_not_returned"})
    html = review.content.decode()
    assert (review.status_code, "<html" in html) == (200, True)
    assert "You are refunding ¥0.00 to Shop A and forfeiting ¥299.00" in html
    response = client.post(
        url, {"refund": "0.00", "reason": "device_not_returned", "confirm_fen": "0", "totp": totp()}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/console/contracts/{money.contract.pk}/"
    deposit = Deposit.objects.get(pk=money.deposit.pk)
    assert (deposit.status, deposit.refunded_fen, deposit.forfeited_fen) == ("forfeited", 0, 29900)
