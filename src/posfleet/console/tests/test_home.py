"""The merchant's home (issue 14): a merchant user opening the console's root sees its own terminals,
money, open cases and unread notices, in plain words — and nothing of another merchant's, no staff
names, no allocations; provider staff and agents keep the fleet dashboard.

The world: merchant A's October 2026 (billing/tests/test_statements.py ``build_october``: settled up to
2026-10-06; a ¥1,000.00 sale on 10-31 and a ¥500.00 sale on 11-02 not paid yet), seen on 2026-11-03;
a second terminal of A's asked to be closed (deactivated, its case waiting for review), a complaint and
an application of A's; merchant B sells ¥7,777.00 on 11-02 and its terminal is suspended.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
import time_machine

from posfleet.billing.tests.test_statements import active_terminal, at, build_october, ingest, settle, txn
from posfleet.closure.services import closure_quote, closure_request, complaint_raise
from posfleet.closure.tests.conftest import CONTRACT_START, TERMS, person
from posfleet.enrollment.services import applications as apps
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command, Status
from posfleet.iam.models import User
from posfleet.notifications.models import Channel, Delivery
from posfleet.notifications.services import deliver_one
from posfleet.platform.context import Actor
from posfleet.platform.models import OutboxMessage
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.applications import more_terminals_request
from posfleet.testing.money import on_standard_plan, signed_contract
from posfleet.testing.personas import make_terminal

SN_SALES = "SN-STMT-0001"  # A's, active: its last sale ¥500.00 on 2026-11-02 10:49
SN_CLOSING = "CLS0001"  # A's, asked to be closed: deactivated
SN_OTHER = "SN-HOME-B-001"  # B's
TODAY = at(date(2026, 11, 3), 12)


@pytest.fixture
def shop(world):
    with time_machine.travel(TODAY, tick=False):
        build_october(world)
        closing = make_terminal(world, SN_CLOSING, Status.ACTIVE, merchant=world.merchant_a)
        signed_contract(closing, starts_on=CONTRACT_START, **TERMS)  # type: ignore[arg-type]
        merchant = person(world, "merchant_a")
        quote = closure_quote(actor=merchant, sns=[SN_CLOSING]).quote
        case = closure_request(
            actor=merchant, sns=[SN_CLOSING], reason="shop_closed", quote_digest=quote.digest
        )
        OutboxMessage.objects.all().delete()  # notices of the complaint and of B's suspension only
        complaint = complaint_raise(
            actor=merchant, category="device", subject="Printer jams", text="It jams on every receipt."
        )
        application = apps.application_submit(
            actor=merchant,
            request=more_terminals_request(),
        )
        on_standard_plan(world.merchant_b)
        other = active_terminal(world, SN_OTHER, world.merchant_b)
        ingest(txn(other, 900, 777700, day=date(2026, 11, 2)))
        terminal_transition(actor=Actor.system("test"), sn=SN_OTHER, action=Command.SUSPEND, reason="risk")
        dispatch_outbox()
        for delivery in Delivery.objects.filter(channel=Channel.INBOX).values_list("pk", flat=True):
            deliver_one(delivery)
        yield {"case": case, "complaint": complaint, "application": application}


def home_of(login, name: str) -> str:
    with time_machine.travel(TODAY, tick=False):
        response = login(name).get("/console/")
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start : html.index("</section>", start)]


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_merchant_sees_its_own_home(shop, login, world, django_assert_max_num_queries):
    html = home_of(login, "merchant_a")
    assert 'data-testid="home-money"' in html
    assert 'data-testid="kpi-total"' not in html  # not the operator's dashboard
    assert 'data-nav="home"' in html
    assert 'data-nav="dashboard"' not in html

    terminals = section(html, "home-terminals")
    assert re.findall(r'data-testid="home-terminal-link">([^<]+)<', terminals) == [SN_CLOSING, SN_SALES]
    words = text(terminals)
    assert "Takes payments" in words
    assert "Stopped: takes no payments for now" in words
    assert "Last transaction 2 Nov 2026 10:49, ¥500.00" in words
    assert "2 in use, 1 taking payments" in words
    assert 'href="/console/terminals/?status=active"' in terminals
    assert 'href="/console/terminals/?status=deactivated"' in terminals

    money = text(section(html, "home-money"))
    # T+1: the 10-31 and 11-02 sales (¥1,500.00 less ¥9.00 of fees), paid the day after 11-02's run.
    assert "Next payout ¥1,491.00 expected on 3 Nov 2026" in money
    assert "Your takings of 31 Oct 2026 to 2 Nov 2026: sales ¥1,500.00 − refunds ¥0.00 − fees ¥9.00" in money
    assert "Last payout: ¥173.95 on 7 Oct 2026." in money
    assert "Deposit held (refunded when the contract ends) ¥598.00" in money
    # The closing terminal's fee: due, not charged while it is stopped (so not deducted above).
    assert "Service fees to come due 1 Jun 2026 · CLS0001 ¥99.00" in money

    apps_card = text(section(html, "home-applications"))
    assert shop["application"].number in apps_card
    assert "More terminals: 1 terminal" in apps_card
    assert "waiting for review" in apps_card
    assert "A reviewer checks the application" in apps_card

    closures = text(section(html, "home-closures"))
    assert shop["case"].number in closures
    assert "Your request is being reviewed" in closures

    complaints = text(section(html, "home-complaints"))
    assert "Printer jams" in complaints
    assert "Your agent acknowledges it by" in complaints

    inbox = section(html, "home-inbox")
    assert inbox.count('data-testid="home-inbox-item"') >= 1
    assert 'href="/console/inbox/?show=unread"' in inbox

    # Nothing of B's, nothing internal.
    for other in (SN_OTHER, "7,777.00", "Shop B", world.merchant_b.mid):
        assert other not in html, other
    for internal in ("reviewer", "agent_a", "warehouse", "Agent A", "allocat", "audit"):
        assert internal not in text(html).replace("A reviewer checks", ""), internal

    # In Chinese: the same page, the locale's dates.
    User.objects.filter(username="merchant_a").update(language="zh-hans")
    html = home_of(login, "merchant_a")
    assert '<html lang="zh-hans">' in html
    words = text(html)
    assert "押金余额" in words
    assert "收件箱" in words
    assert "资金概览" in words
    assert "2026年11月2日 10:49" in words  # the locale's date and time

    # Hundreds of terminals would not all be read: a bounded list (the same queries whatever the
    # number of terminals) and the link to the whole list.
    for i in range(7):
        make_terminal(world, f"SN-HOME-A-{i:03d}", Status.BOUND, merchant=world.merchant_a)
    client = login("merchant_a")
    User.objects.filter(username="merchant_a").update(language="en")
    with time_machine.travel(TODAY, tick=False), django_assert_max_num_queries(30):
        html = client.get("/console/").content.decode()
    terminals = section(html, "home-terminals")
    assert terminals.count('data-testid="home-terminal"') == 8
    assert "Installed: takes payments once its test transaction passes" in text(terminals)
    assert "and 1 more" in text(terminals)
    assert "All 9 terminals" in text(terminals)

    # A service fee falls due (a new terminal's contract): the next payout keeps it back; once the run
    # of 11-02 has paid, the next payout is today's, and the last one is shown.
    with time_machine.travel(TODAY, tick=False):
        fresh = active_terminal(world, "SN-HOME-A-NEW", world.merchant_a)
        signed_contract(fresh, starts_on=date(2026, 11, 1), annual_fee_fen=9900)
    money = text(section(home_of(login, "merchant_a"), "home-money"))
    assert "Next payout ¥1,392.00" in money
    assert "fees ¥9.00 − deductions ¥99.00." in money
    settle(date(2026, 11, 2))
    money = text(section(home_of(login, "merchant_a"), "home-money"))
    assert "Next payout ¥0.00 expected on 4 Nov 2026" in money
    assert "Nothing to pay yet" in money
    assert "Last payout: ¥1,392.00 on 3 Nov 2026." in money


def test_another_merchant_sees_only_its_own_and_staff_keep_the_dashboard(shop, login):
    html = home_of(login, "merchant_b")
    assert SN_OTHER in html
    for other in (SN_SALES, SN_CLOSING, "Printer jams", shop["case"].number, shop["application"].number):
        assert other not in html, other
    money = text(section(html, "home-money"))
    assert "Next payout ¥7,730.34 expected on 3 Nov 2026" in money  # ¥7,777.00 less 0.60 % of fees

    for name in ("admin", "agent_a"):  # the operator's dashboard, unchanged
        html = home_of(login, name)
        assert 'data-testid="kpi-total"' in html
        assert 'data-testid="home-money"' not in html
        assert 'data-nav="dashboard"' in html
        assert 'data-nav="home"' not in html


def test_a_merchant_without_terminals_gets_a_sensible_home(world, login):
    html = home_of(login, "merchant_b")
    words = text(html)
    assert "No terminals yet" in words
    assert "Nothing to pay yet" in words
    assert "Next payout ¥0.00" in words
    assert "No open application." in words
    assert "No closure under way." in words
    assert "No open complaint." in words
    assert "No unread notices." in words


def test_the_api_answers_the_figures_the_home_shows(shop, login):
    """GET /api/v1/me/home renders the read model the console's home renders: the same terminals, words,
    payout, deposit, fees, open items and notices, in the reader's language."""
    for language in ("en", "zh-hans"):
        User.objects.filter(username="merchant_a").update(language=language)
        client = login("merchant_a")
        with time_machine.travel(TODAY, tick=False):
            html = client.get("/console/").content.decode()
            response = client.get("/api/v1/me/home")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["merchant"] == {"mid": "100000000000001", "name": "Shop A"}

        terminals = section(html, "home-terminals")
        assert [t["sn"] for t in body["terminals"]] == [SN_CLOSING, SN_SALES]
        assert re.findall(r'data-testid="home-terminal-link">([^<]+)<', terminals) == [SN_CLOSING, SN_SALES]
        shown_words = re.findall(r'data-testid="home-terminal-words">([^<]+)<', terminals)
        assert [t["words"] for t in body["terminals"]] == shown_words
        for row in body["by_status"]:
            count = re.search(
                rf'data-testid="home-status-{row["status"]}".*?tabular fw-semibold">(\d+)<', terminals
            )
            assert count is not None, row
            assert int(count.group(1)) == row["count"], row
        sales = body["terminals"][1]
        assert (sales["last_amount_fen"], sales["last_amount_display"]) == (50_000, "¥500.00")
        assert sales["last_amount_display"] in text(terminals)
        assert (body["terminal_total"], body["in_use"], body["taking_payments"]) == (2, 2, 1)

        money = body["money"]
        shown = text(section(html, "home-money"))
        payout = money["next_payout"]
        assert (payout["payout_fen"], payout["gross_fen"], payout["fees_fen"]) == (149_100, 150_000, 900)
        assert payout["payout_display"] == "¥1,491.00"
        assert payout["paid_on"] == "2026-11-03"
        assert (money["deposit_fen"], money["last_paid_fen"], money["last_paid_on"]) == (
            59_800,
            17_395,
            "2026-10-07",
        )
        for figure in (payout["payout_display"], money["deposit_display"], "¥173.95"):
            assert figure in shown, figure
        assert [(f["sn"], f["amount_fen"], f["due_on"]) for f in money["fees_due"]] == [
            (SN_CLOSING, 9_900, "2026-06-01")
        ]

        for key in ("applications", "closures", "complaints"):
            card = section(html, f"home-{key}")
            assert body[key], key
            for item in body[key]:
                assert item["number"] in card, (key, item)
                assert item["next_step"] in text(card), (key, item)
        assert [i["number"] for i in body["applications"]] == [shop["application"].number]
        assert [i["number"] for i in body["closures"]] == [shop["case"].number]
        assert [i["title"] for i in body["complaints"]] == ["Printer jams"]

        inbox = section(html, "home-inbox")
        assert body["unread_notices"] == inbox.count('data-testid="home-inbox-item"') >= 1
        for notice in body["notices"]:
            assert notice["title"] in inbox, notice["title"]
    assert "押金" not in body["money"]["deposit_display"]  # amounts are ¥ in both languages
    assert body["terminals"][1]["words"] == shown_words[1] != "Takes payments"  # Chinese words now


def test_the_home_api_is_for_merchants_and_each_sees_its_own(shop, login):
    with time_machine.travel(TODAY, tick=False):
        other = login("merchant_b").get("/api/v1/me/home").json()
        refused = {name: login(name).get("/api/v1/me/home") for name in ("admin", "reviewer", "agent_a")}
    assert [t["sn"] for t in other["terminals"]] == [SN_OTHER]
    assert other["applications"] == other["closures"] == other["complaints"] == []
    assert other["money"]["next_payout"]["payout_fen"] == 773_034
    for name, response in refused.items():
        assert response.status_code == 403, name
        assert response.json()["code"] == "permission_denied"
