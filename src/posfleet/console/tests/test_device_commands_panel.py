"""The terminal page's "Device commands" panel: loaded into the page by htmx (a page of its own
without JavaScript), scoped like the terminal page, offering each persona the commands it may send,
and asking for a code before a wipe or a lock."""

from __future__ import annotations

import pytest
from django.test import Client

from posfleet.console.tests.helpers import PERSONAS, SN_A, SN_B, VISIBLE, htmx, ids_with_prefix, totp
from posfleet.fleet.models import DeviceCommand
from posfleet.fleet.services import device_command_send
from posfleet.testing.personas import SYSTEM
from posfleet.testing.refusals import assert_nothing_recorded

URL = "/console/terminals/{}/commands/"
# Which commands the panel offers on SN_A (merchant A, agent A), by persona (fleet/rules.py).
OFFERED = {
    "admin": {"lock", "unlock", "message", "wipe"},
    "reviewer": set(),
    "warehouse": {"lock", "unlock", "message", "wipe"},
    "agent_a": {"lock", "unlock", "message"},
    "agent_a1": set(),
    "agent_b": set(),
    "merchant_a": {"lock", "message"},
    "merchant_b": set(),
}


def test_the_terminal_page_loads_the_panel(clock, terminals, login):
    html = login("admin").get(f"/console/terminals/{SN_A}/").content.decode()
    assert 'data-testid="device-commands-slot"' in html
    assert f'hx-get="{URL.format(SN_A)}"' in html


def test_anonymous_is_sent_to_the_login_page(clock, terminals):
    response = Client().get(URL.format(SN_A))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("name", PERSONAS)
def test_the_panel_is_scoped_and_offers_what_the_persona_may_send(clock, terminals, login, name):
    device_command_send(actor=SYSTEM, sn=SN_A, kind="message", payload={"text": "Hello"})
    client = login(name)
    response = client.get(URL.format(SN_A), **htmx())
    if SN_A not in VISIBLE[name]:
        assert response.status_code == 404
        assert "Hello" not in response.content.decode()
        return
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # the panel only, for the page
    assert len(ids_with_prefix(html, "device-command-status-")) == 1
    assert "Hello" in html
    offered = set()
    for kind in ("lock", "unlock", "message", "wipe", "update_params"):
        if f'<option value="{kind}"' in html:
            offered.add(kind)
    assert offered == OFFERED[name]
    assert ('data-testid="device-command-form"' in html) is bool(OFFERED[name])
    assert "<html" in client.get(URL.format(SN_A)).content.decode()  # a page of its own without htmx


def test_sending_a_message_from_the_panel(clock, terminals, login):
    client = login("agent_a")
    response = client.post(URL.format(SN_A), {"kind": "message", "text": "Closing early"}, **htmx())
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="device-command-sent"' in html
    command = DeviceCommand.objects.get()
    assert (command.kind, command.payload, command.status) == ("message", {"text": "Closing early"}, "queued")
    assert f'data-testid="device-command-{command.pk}"' in html
    # Without JavaScript: back to the terminal page.
    plain = client.post(URL.format(SN_A), {"kind": "unlock"})
    assert plain.status_code == 302
    assert plain["Location"] == f"/console/terminals/{SN_A}/"


def test_a_wipe_needs_a_code_and_without_it_nothing_is_sent(clock, terminals, login):
    client = login("admin")
    with assert_nothing_recorded(terminals[SN_A], DeviceCommand.objects.all()):
        response = client.post(URL.format(SN_A), {"kind": "wipe"}, **htmx())
        assert response.status_code == 200
        assert 'name="totp"' in response.content.decode()
        assert "is-invalid" in response.content.decode()
    response = client.post(URL.format(SN_A), {"kind": "wipe", "totp": totp()}, **htmx())
    assert response.status_code == 200
    assert DeviceCommand.objects.get().kind == "wipe"


def test_a_persona_cannot_send_what_it_was_not_offered(clock, terminals, login):
    with assert_nothing_recorded(terminals[SN_A], DeviceCommand.objects.all()):
        response = login("merchant_a").post(URL.format(SN_A), {"kind": "wipe", "totp": totp()}, **htmx())
        assert response.status_code == 200  # "wipe" is no choice of this form
        assert login("reviewer").post(URL.format(SN_A), {"kind": "message", "text": "x"}).status_code == 403
        assert login("agent_b").post(URL.format(SN_A), {"kind": "message", "text": "x"}).status_code == 404
        assert login("agent_b").get(URL.format(SN_B)).status_code == 200
