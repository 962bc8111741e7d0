"""Who may open which money page: anonymous → login; another tenant's merchant, batch, contract or
deposit → 404; a role without the right → 403 (and the page is not offered); the right role → 200.

The ``money`` fixture (used by every test_money* module) is merchant A's October 2026 from
billing/tests/test_statements.py (transactions, two settlement batches, a contract with its deposit)
and one QR sale of merchant B."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest
from django.test import Client

from posfleet.billing.models import PlanAssignment, SettlementBatch
from posfleet.billing.tests.test_statements import active_terminal, build_october, ingest, txn
from posfleet.console.tests.helpers import PERSONAS, totp
from posfleet.testing.money import on_standard_plan
from posfleet.testing.refusals import assert_nothing_recorded

MID_A, MID_B = "100000000000001", "100000000000002"
STAFF = {"admin", "reviewer", "warehouse"}
# Who sees merchant A's money (its agent; not the sibling sub-agent A1, not B's side).
SEES_A = STAFF | {"agent_a", "merchant_a"}


@pytest.fixture
def money(clock, world):
    october = build_october(world)
    on_standard_plan(world.merchant_b)
    terminal_b = active_terminal(world, "SN-MONEY-B01", world.merchant_b)
    ingest(txn(terminal_b, 901, 77700, "qr", day=date(2026, 10, 9)))
    return SimpleNamespace(
        october=october,
        terminal_a=october.terminal,
        terminal_b=terminal_b,
        contract=october.contract,
        deposit=october.contract.deposit,
        batch=SettlementBatch.objects.get(merchant=world.merchant_a, business_date=date(2026, 10, 5)),
    )


def merchant_a_pages(m) -> list[str]:
    """Pages about merchant A (or its batch, contract, deposit): 200 for SEES_A, else 404."""
    return [
        f"/console/merchants/{MID_A}/money/",
        f"/console/merchants/{MID_A}/statements/",
        f"/console/merchants/{MID_A}/statements/2026-10/",
        f"/console/merchants/{MID_A}/statements/2026-10/pdf/",
        f"/console/merchants/{MID_A}/compare/",
        f"/console/settlements/{m.batch.pk}/",
        f"/console/settlements/{m.batch.pk}/pdf/",
        f"/console/contracts/{m.contract.pk}/",
    ]


# page -> roles that get 200 (the others in scope get 403); listed pages need no particular merchant.
ROLE_PAGES = {
    "/console/money/": set(PERSONAS),
    "/console/transactions/": set(PERSONAS),
    "/console/transactions/export/csv/": set(PERSONAS),
    "/console/transactions/export/parquet/": set(PERSONAS),
    "/console/contracts/": set(PERSONAS),
    "/console/settlements/": STAFF | {"agent_a", "agent_a1", "agent_b"},
    "/console/plans/": STAFF | {"agent_a", "agent_a1", "agent_b"},
    "/console/plans/standard/": STAFF | {"agent_a", "agent_a1", "agent_b"},
    "/console/plans/new/": {"admin"},
    "/console/plans/standard/versions/new/": {"admin"},
    "/console/contracts/new/": {"admin", "agent_a", "agent_a1", "agent_b"},
    "/console/plan-changes/": set(PERSONAS),  # scoped: each sees its own merchants' requests
}


def test_anonymous_is_sent_to_the_login_page_everywhere(money):
    client = Client()
    pages = [*merchant_a_pages(money), *ROLE_PAGES, f"/console/deposits/{money.deposit.pk}/release/"]
    pages += [f"/console/merchants/{MID_A}/plan/", "/console/money/statements/"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
    response = client.post(f"/console/contracts/{money.contract.pk}/accept/", {"confirm": "on"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("name", PERSONAS)
def test_merchant_a_pages_are_there_only_for_those_who_see_merchant_a(money, login, name):
    client = login(name)
    for url in merchant_a_pages(money):
        response = client.get(url)
        if name in SEES_A:
            assert response.status_code == 200, url
        else:
            assert response.status_code == 404, url
            html = response.content.decode(errors="replace")
            for leak in ('data-testid="merchant-name"', "Shop A<", "Shop A Ltd", "¥"):
                assert leak not in html, (url, leak)


@pytest.mark.parametrize("name", PERSONAS)
def test_pages_by_role(money, login, name):
    client = login(name)
    for url, allowed in ROLE_PAGES.items():
        response = client.get(url)
        if name in allowed:
            assert response.status_code == 200, url
            if url.startswith("/console/transactions/export/"):
                b"".join(response.streaming_content)  # type: ignore[attr-defined]
        else:
            assert response.status_code == 403, url
            assert 'data-testid="forbidden"' in response.content.decode(), url


@pytest.mark.parametrize("name", PERSONAS)
def test_plan_assignment_and_deposit_release_need_the_role_and_the_scope(money, login, name):
    client = login(name)
    assign = client.get(f"/console/merchants/{MID_A}/plan/")
    release = client.get(f"/console/deposits/{money.deposit.pk}/release/")
    expected_assign = 200 if name == "admin" else 403 if name in SEES_A else 404
    expected_release = 200 if name in {"admin", "reviewer"} else 403 if name in SEES_A else 404
    assert (assign.status_code, release.status_code) == (expected_assign, expected_release)
    # Posting what would assign a plan or release the deposit (with a valid code) changes nothing for
    # those refused: no assignment, the deposit held, no journal, audit event or outbox message.
    if expected_assign != 200:
        with assert_nothing_recorded(PlanAssignment.objects.all()):
            posted = client.post(
                f"/console/merchants/{MID_A}/plan/", {"plan": "standard", "effective_from": "2027-02-01"}
            )
        assert posted.status_code == expected_assign
    if expected_release != 200:
        confirmation = {"refund": "0.00", "reason": "device_not_returned", "confirm_fen": "0", "totp": totp()}
        with assert_nothing_recorded(money.deposit, money.contract):
            posted = client.post(f"/console/deposits/{money.deposit.pk}/release/", confirmation)
        assert posted.status_code == expected_release


@pytest.mark.parametrize("name", PERSONAS)
def test_only_merchant_a_may_accept_its_contract(money, login, name):
    from posfleet.billing.models import ServiceContract
    from posfleet.billing.services.contracts import Terms, contract_offer
    from posfleet.testing.money import standard_plan
    from posfleet.testing.personas import SYSTEM

    offered = contract_offer(
        actor=SYSTEM,
        terminal_id=money.terminal_a.pk,
        merchant=money.october.merchant,
        plan=standard_plan(),
        terms=Terms(starts_on=date(2027, 2, 1), deposit_fen=0, annual_fee_fen=0),
    )
    # the terminal has an active contract already: accepting fails even for merchant A (409), but
    # only after the role and the scope were checked
    client = login(name)
    with assert_nothing_recorded(offered, money.contract, money.deposit):
        response = client.post(f"/console/contracts/{offered.pk}/accept/", {"confirm": "on"})
    if name == "merchant_a":
        assert response.status_code == 302
    elif name in SEES_A:
        assert response.status_code == 403
    else:
        assert response.status_code == 404
    assert ServiceContract.objects.get(pk=offered.pk).status == "offered"


def test_my_statements_sends_each_to_the_right_place(money, login):
    assert (
        login("merchant_a").get("/console/money/statements/")["Location"]
        == f"/console/merchants/{MID_A}/statements/"
    )
    assert login("admin").get("/console/money/statements/")["Location"] == "/console/money/"


def test_statement_of_a_bad_or_future_month_is_404(money, login):
    client = login("merchant_a")
    for month in ("2026-13", "26-10", "2099-01", "nonsense"):
        assert client.get(f"/console/merchants/{MID_A}/statements/{month}/").status_code == 404, month


@pytest.mark.parametrize(
    ("name", "entries"),
    [
        ("admin", {"money", "transactions", "settlements", "contracts", "plans"}),
        ("reviewer", {"money", "transactions", "settlements", "contracts", "plans"}),
        ("agent_a", {"money", "transactions", "settlements", "contracts", "plans"}),
        ("merchant_a", {"money", "transactions", "statements", "contracts"}),
    ],
)
def test_the_money_menu_offers_what_the_role_may_open(money, login, name, entries):
    html = login(name).get("/console/").content.decode()
    menu = html.split('data-testid="nav-menu-money"')[1].split("</ul>")[0]
    offered = {
        key
        for key in ("money", "transactions", "statements", "settlements", "contracts", "plans")
        if f'data-nav="{key}"' in menu
    }
    assert offered == entries
