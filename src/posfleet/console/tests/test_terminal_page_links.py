"""The terminal page leads to the pages about it that its viewer may open (and to no one else's), shows
its last transaction and heartbeat, and for a deactivated terminal the reactivation deadline of the one
rule (``fleet.guards.reactivation_deadline``)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from posfleet.billing.services.transactions import TxnIn, transactions_ingest
from posfleet.closure.services import closure_quote, closure_request, closure_withdraw
from posfleet.console.tests.helpers import T0
from posfleet.fleet.guards import reactivation_deadline
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Status
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import GuardFailed
from posfleet.testing.money import on_standard_plan, signed_contract
from posfleet.testing.personas import SYSTEM, make_terminal

SN = "SN-LNK-0001"
PAGE = f"/console/terminals/{SN}/"
START = datetime.fromtimestamp(T0, tz=UTC)
MID_A, MID_B = "100000000000001", "100000000000002"


def links(html: str) -> dict[str, str]:
    """The page's links: key -> address."""
    return {
        key: href.replace("&amp;", "&")
        for href, key in re.findall(r'href="([^"]+)" data-testid="link-([a-z]+)"', html)
    }


@pytest.fixture
def used(clock, world):
    """A smart terminal of merchant A at its store, under a contract with a deposit, with one sale and a
    closure case that was asked for and withdrawn."""
    with time_machine.travel(START - timedelta(days=40), tick=False):
        terminal = make_terminal(world, SN, Status.ACTIVE)
    Terminal.objects.filter(sn=SN).update(store=world.store_a)  # bound at the store
    on_standard_plan(world.merchant_a)
    contract = signed_contract(terminal, starts_on=date(2026, 12, 1))
    sold_at = START - timedelta(days=2)
    results = transactions_ingest(
        actor=Actor.job("test-terminal-page"),
        items=[
            TxnIn(
                tid=terminal.tid or "",
                batch_no="000001",
                trace_no="000001",
                txn_date=timezone.localdate(sold_at),
                occurred_at=sold_at,
                method="credit",
                entry_mode="insert",
                amount_fen=12_345,
                card_masked="622202******1234",
            )
        ],
    )
    assert all(r.ok for r in results)
    merchant = Actor.for_user(world.user("merchant_a")).with_step_up(now())
    quote = closure_quote(actor=merchant, sns=[SN]).quote
    case = closure_request(actor=merchant, sns=[SN], reason="cost", quote_digest=quote.digest)
    closure_withdraw(actor=merchant, number=case.number)
    return contract, case


def test_staff_and_the_merchant_are_led_where_each_may_go(used, login, django_assert_max_num_queries):
    contract, case = used
    admin = login("admin")
    admin.get(PAGE)
    with django_assert_max_num_queries(22):  # one query per related thing, none per event or link
        html = admin.get(PAGE).content.decode()
    contract_url = f"/console/contracts/{contract.pk}/"
    assert links(html) == {
        "merchant": f"/console/merchants/{MID_A}/money/",
        "store": f"/console/terminals/?merchant={MID_A}&store=S1",
        "agent": "/console/terminals/?agent=AG-A",
        "contract": contract_url,
        "deposit": f"{contract_url}#deposit-title",
        "transactions": f"/console/transactions/?terminal={SN}",
        "settlements": f"/console/settlements/?merchant={MID_A}",
        "statements": f"/console/merchants/{MID_A}/statements/",
        "closure": f"/console/closures/{case.number}/",
        "commands": f"/console/terminals/{SN}/commands/",
    }
    last = html.split('data-testid="last-transaction"')[1].split("</dd>")[0]
    assert " ".join(re.sub(r"<[^>]+>", " ", last).split()).endswith("¥123.45 · credit card sale · approved")
    assert "¥299.00" in html.split('data-testid="deposit"')[1].split("</dd>")[0]

    merchant = login("merchant_a")
    mine = links(merchant.get(PAGE).content.decode())
    # no agent's list, no settlement batches (staff and agents only): the merchant reads statements
    assert set(mine) == {
        "merchant",
        "store",
        "contract",
        "deposit",
        "transactions",
        "statements",
        "closure",
        "commands",
    }
    assert mine["store"] == "/console/terminals/?store=S1"
    for key, url in mine.items():
        assert merchant.get(url.split("#")[0]).status_code == 200, key
    assert merchant.get(f"/console/settlements/?merchant={MID_A}").status_code == 403  # why there is no link


def test_after_the_device_moves_to_another_merchant_its_past_is_not_theirs(used, login, world):
    contract, case = used
    steps = [
        ("deactivate", "cost", {}),
        ("deregister", "business_change", {}),
        ("receive_return", "", {}),
        ("refurbish", "", {}),
        ("allocate", "", {"agent_code": "AG-B"}),
        ("ship", "", {}),
        ("bind", "", {"merchant_mid": MID_B}),
        ("activate", "", {}),
    ]
    for action, reason, params in steps:
        terminal_transition(actor=SYSTEM, sn=SN, action=action, reason=reason, params=params)
    html = login("merchant_b").get(PAGE).content.decode()
    assert set(links(html)) == {"merchant", "transactions", "statements", "commands"}
    assert links(html)["merchant"] == f"/console/merchants/{MID_B}/money/"
    # (the status timeline is the device's whole history, as before: these are the panels around it)
    panels = html.split('data-testid="terminal-links"')[1].split('aria-labelledby="facts-title"')[0]
    for trace_of_a in (MID_A, f"/console/contracts/{contract.pk}/", case.number, "¥123.45", "¥299.00"):
        assert trace_of_a not in panels
    assert f"/console/contracts/{contract.pk}/" not in html
    assert "none yet" in html.split('data-testid="last-transaction"')[1].split("</dd>")[0]
    assert login("merchant_b").get(f"/console/closures/{case.number}/").status_code == 404


def test_reactivation_deadline_is_the_rules_date(clock, world, login):
    with time_machine.travel(START - timedelta(days=10), tick=False):
        recent = make_terminal(world, "SN-DL-0001", Status.DEACTIVATED)
    with time_machine.travel(START - timedelta(days=100), tick=False):
        old = make_terminal(world, "SN-DL-0002", Status.DEACTIVATED)
    client = login("merchant_a")
    for terminal, still_open in ((recent, "true"), (old, "false")):
        html = client.get(f"/console/terminals/{terminal.sn}/").content.decode()
        deadline = reactivation_deadline(terminal.deactivated_at)
        assert f'data-deadline="{timezone.localtime(deadline).isoformat()}" data-open="{still_open}"' in html
    assert reactivation_deadline(recent.deactivated_at) == recent.deactivated_at + timedelta(days=90)
    assert (
        'data-testid="reactivation-deadline"'
        not in client.get("/console/terminals/SN-LNK-0001/").content.decode()
    )
    # the guard reads the same date: refused one moment after it, allowed on it
    late = reactivation_deadline(old.deactivated_at) + timedelta(seconds=1)
    with time_machine.travel(late, tick=False), pytest.raises(GuardFailed):
        terminal_transition(actor=SYSTEM, sn=old.sn, action="reactivate")
    with time_machine.travel(reactivation_deadline(recent.deactivated_at), tick=False):
        terminal_transition(actor=SYSTEM, sn=recent.sn, action="reactivate")
    assert Terminal.objects.get(sn=recent.sn).status == Status.ACTIVE
