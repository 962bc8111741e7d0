"""The comparison's offer to ask for the cheaper plan, and the requests' list (issue 14, ADR 0027): the
merchant asks from the comparison page and sees its request's state there; the admin approves it from
the list (the plan is assigned from the day asked for); others' requests are not there (404) and a
refused button changes nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from posfleet.billing.models import PlanAssignment, PlanChangeRequest
from posfleet.billing.services.plans import RuleSpec, plan_create
from posfleet.console.tests.test_money_access import MID_A, money  # noqa: F401  (fixture)
from posfleet.console.tests.test_money_pages import text_of
from posfleet.testing.personas import SYSTEM
from posfleet.testing.refusals import assert_nothing_recorded

COMPARE = f"/console/merchants/{MID_A}/compare/?start=2026-09&end=2026-11"


def test_a_merchant_asks_for_the_cheaper_plan_and_the_admin_approves_it(money, login):  # noqa: F811
    plan_create(
        actor=SYSTEM,
        code="lite",
        name="Lite",
        effective_from=date(2020, 1, 1),
        rules={m: RuleSpec(Decimal("0.0030")) for m in ("credit", "debit", "qr", "nfc", "foreign")},
    )
    merchant = login("merchant_a")
    html = merchant.get(COMPARE).content.decode()
    assert text_of(html, "conclusion", "</p>").startswith("Switching to Lite would have cost ¥11.11 less")
    assert 'data-testid="plan-change-offer"' in html
    assert 'data-testid="line-lite-contracts_kept"' in html  # why no penalty: the contract carries on
    for name in ("agent_b", "merchant_b"):  # not theirs: 404, nothing asked
        with assert_nothing_recorded(PlanChangeRequest.objects.all()):
            refused = login(name).post(
                f"/console/merchants/{MID_A}/plan-changes/",
                {"to_plan": "lite", "effective_from": "2027-02-01"},
            )
        assert refused.status_code == 404, name
    sent = merchant.post(
        f"/console/merchants/{MID_A}/plan-changes/",
        {"to_plan": "lite", "effective_from": "2027-02-01", "note": "", "start": "2026-09", "end": "2026-11"},
    )
    assert sent["Location"] == f"/console/merchants/{MID_A}/compare/?start=2026-09&end=2026-11"
    asked = PlanChangeRequest.objects.get()
    html = merchant.get(COMPARE).content.decode()
    assert 'data-testid="plan-change-offer"' not in html  # one at a time
    assert text_of(html, "plan-change-status") == "requested"

    staff_list = login("admin").get("/console/plan-changes/").content.decode()
    assert f'data-testid="plan-change-approve-{asked.pk}"' in staff_list
    assert 'data-testid="plan-changes-waiting">1<' in login("admin").get("/console/plans/").content.decode()
    assert (
        f'data-testid="plan-change-{asked.pk}"'
        not in login("agent_b").get("/console/plan-changes/").content.decode()
    )
    mine = login("merchant_a").get("/console/plan-changes/").content.decode()
    assert f'data-testid="plan-change-withdraw-{asked.pk}"' in mine
    assert f'data-testid="plan-change-approve-{asked.pk}"' not in mine
    for name, status in (("merchant_b", 404), ("agent_b", 404), ("merchant_a", 403), ("reviewer", 403)):
        with assert_nothing_recorded(asked, PlanAssignment.objects.all()):
            response = login(name).post(f"/console/plan-changes/{asked.pk}/approve/")
        assert response.status_code == status, name

    approved = login("admin").post(f"/console/plan-changes/{asked.pk}/approve/")
    assert approved["Location"] == "/console/plan-changes/"
    assert PlanAssignment.objects.get(plan__code="lite").effective_from == date(2027, 2, 1)
    html = merchant.get(COMPARE).content.decode()
    assert text_of(html, "plan-change-status") == "approved"
    assert "your fees follow this plan from 1 Feb 2027" in html
