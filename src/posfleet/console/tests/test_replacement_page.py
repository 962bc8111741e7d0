"""Replacement (换机) from the terminal page: the button for those who may, the dialog with the agent's
stock, step-up, the result, and the "Replaces" / "Replaced by" links on both pages."""

from __future__ import annotations

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.billing.models import ServiceContract
from posfleet.console.tests.helpers import SN_A, SN_B, htmx, totp, trace
from posfleet.fleet.models import Replacement, Terminal
from posfleet.fleet.states import Status
from posfleet.testing.money import signed_contract
from posfleet.testing.personas import make_terminal
from posfleet.testing.refusals import assert_nothing_recorded

NEW = "SN-CON-NEW-001"
NEW_2 = "SN-CON-NEW-002"
STOCK_B = "SN-CON-STOCK-B"
URL = "/console/terminals/{}/replace/"


@pytest.fixture
def stock(clock, world, terminals):
    make_terminal(world, NEW, Status.ALLOCATED, agent=world.agent_a)
    make_terminal(world, NEW_2, Status.ALLOCATED, agent=world.agent_a)
    make_terminal(world, STOCK_B, Status.ALLOCATED, merchant=world.merchant_b)
    signed_contract(terminals[SN_A], deposit_fen=0)
    return terminals


@pytest.mark.parametrize(
    ("persona", "offered"),
    [("admin", True), ("agent_a", True), ("reviewer", False), ("warehouse", False), ("merchant_a", False)],
)
def test_the_replace_button_is_offered_to_those_who_may(stock, login, persona, offered):
    html = login(persona).get(f"/console/terminals/{SN_A}/").content.decode()
    assert ('data-action="replace"' in html) is offered


def test_the_dialog_offers_the_agents_stock_and_asks_for_a_code(stock, login):
    response = login("agent_a").get(URL.format(SN_A), **htmx())
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # only the dialog, for the modal
    assert f'<option value="{NEW}">' in html
    assert f'<option value="{NEW_2}">' in html
    assert STOCK_B not in html
    for value in ("device_fault", "damage", "technology_update", "other"):
        assert f'value="{value}"' in html
    assert 'name="totp"' in html
    # Without JavaScript it is a page of its own.
    assert "<html" in login("agent_a").get(URL.format(SN_A)).content.decode()


def test_replacing_from_the_page(stock, login):
    client = login("agent_a")
    response = client.post(
        URL.format(SN_A),
        {"new_sn": NEW, "reason": "device_fault", "note": "screen", "totp": totp()},
        **htmx(),
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "terminals-changed"
    assert f"Terminal {SN_A} is replaced by {NEW}." in html
    new = Terminal.objects.get(sn=NEW)
    assert (new.status, Terminal.objects.get(sn=SN_A).status) == (Status.ACTIVE, Status.DEREGISTERED)
    assert AuditEvent.objects.get(event_type="terminal.replaced").actor_label == "agent_a"
    # The pages link each other, for everyone who may see both.
    old_page = client.get(f"/console/terminals/{SN_A}/").content.decode()
    assert (
        f'href="/console/terminals/{NEW}/"'
        in old_page.split('data-testid="replaced-by"')[1].split("</dd>")[0]
    )
    assert 'data-action="replace"' not in old_page  # deregistered: nothing to replace any more
    new_page = login("merchant_a").get(f"/console/terminals/{NEW}/").content.decode()
    assert (
        f'href="/console/terminals/{SN_A}/"' in new_page.split('data-testid="replaces"')[1].split("</dd>")[0]
    )
    assert "Took over from a replaced terminal" in new_page  # the timeline
    # Another merchant sees neither the terminal nor the link.
    assert login("merchant_b").get(f"/console/terminals/{NEW}/").status_code == 404


def test_a_wrong_code_or_a_refusal_changes_nothing(stock, login):
    client = login("admin")
    before = trace(SN_A, NEW, STOCK_B)
    with assert_nothing_recorded(*untouched(), audit=["mfa.step_up_failed"]):  # only the failed code
        wrong = client.post(URL.format(SN_A), {"new_sn": NEW, "reason": "damage", "totp": "000000"}, **htmx())
    assert wrong.status_code == 200
    assert 'data-testid="replace-dialog"' in wrong.content.decode()
    # Another agent's stock is not among the choices (a form error), and the service would refuse it.
    with assert_nothing_recorded(*untouched()):  # the code is not even spent
        other = client.post(
            URL.format(SN_A), {"new_sn": STOCK_B, "reason": "damage", "totp": totp()}, **htmx()
        )
    assert "Select a valid choice" in other.content.decode()
    with assert_nothing_recorded(*untouched()):
        missing_note = client.post(
            URL.format(SN_A), {"new_sn": NEW, "reason": "other", "totp": totp()}, **htmx()
        )
    assert "Say in the note what the other reason is." in missing_note.content.decode()
    assert trace(SN_A, NEW, STOCK_B) == before
    assert Replacement.objects.count() == 0


def untouched():
    """What a refused replacement leaves as it was: the terminals, contracts and replacements."""
    return Terminal.objects.all(), ServiceContract.objects.all(), Replacement.objects.all()


@pytest.mark.parametrize(("persona", "status"), [("merchant_b", 404), ("agent_b", 404), ("merchant_a", 403)])
def test_others_get_no_dialog(stock, login, persona, status):
    before = trace(SN_A, NEW)
    client = login(persona)
    assert client.get(URL.format(SN_A)).status_code == status
    assert (
        client.post(URL.format(SN_A), {"new_sn": NEW, "reason": "damage", "totp": totp()}).status_code
        == status
    )
    assert trace(SN_A, NEW) == before
    assert login("admin").get(URL.format(SN_B)).status_code == 200  # the admin sees agent B's terminal
