"""Device health in the console: the terminal page's health card (connectivity, last heartbeat,
firmware, position and distance from the store, the open relocation alert), the silent terminals list
and the relocation alerts list with their review — all scoped like the terminal pages (others' are 404
or simply absent), a refused review changing nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client

from posfleet.console.tests.helpers import PERSONAS, SN_A, SN_A1, SN_B, VISIBLE
from posfleet.fleet.models import RelocationAlert, Terminal
from posfleet.fleet.services import terminal_heartbeat
from posfleet.parties.models import Store
from posfleet.platform.clock import now
from posfleet.testing.refusals import assert_nothing_recorded

SILENT = "/console/health/silent/"
ALERTS = "/console/health/relocations/"
STORE = (Decimal("31.230416"), Decimal("121.473701"))  # Shanghai, People's Square
SUZHOU = {"lat": 31.298886, "lon": 120.585316, "accuracy_m": 15}


@pytest.fixture
def located(clock, terminals, world):
    """SN_A at merchant A's store S1, which has coordinates."""
    Store.objects.filter(pk=world.store_a.pk).update(latitude=STORE[0], longitude=STORE[1])
    Terminal.objects.filter(sn=SN_A).update(store=world.store_a)
    return terminals


@pytest.fixture
def alert(located) -> RelocationAlert:
    raised = terminal_heartbeat(
        terminal=Terminal.objects.get(sn=SN_A), location=SUZHOU, source="device_channel"
    ).alert
    assert raised is not None
    return raised


def review_url(alert: RelocationAlert) -> str:
    return f"{ALERTS}{alert.pk}/review/"


@pytest.mark.parametrize("url", [SILENT, ALERTS])
def test_anonymous_is_sent_to_the_login_page(clock, terminals, url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_menu_leads_to_the_health_lists(clock, terminals, login):
    html = login("agent_a").get("/console/").content.decode()
    menu = html.split('data-testid="nav-menu-devices"')[1].split("</ul>")[0]
    for key, url in (("terminals", "/console/terminals/"), ("silent", SILENT), ("relocations", ALERTS)):
        assert f'href="{url}" data-nav="{key}"' in menu


# -- the terminal page ------------------------------------------------------------------------------------


def test_the_terminal_page_shows_health_position_distance_and_the_open_alert(alert, login):
    html = login("admin").get(f"/console/terminals/{SN_A}/").content.decode()
    card = html.split('data-testid="device-health"')[1].split("</section>")[0]
    assert 'data-connectivity="online"' in card
    assert "online" in card
    assert 'data-testid="last-heartbeat"><time datetime="' in card
    assert 'href="geo:31.298886,120.585316"' in card  # the last position, as text with a geo: link
    assert "31.298886, 120.585316" in card
    assert 'href="geo:31.230416,121.473701"' in card  # the store
    assert f'data-metres="{alert.distance_m}"' in card
    assert f"{alert.distance_m / 1000:.1f} km" in card
    assert f'data-alert="{alert.pk}"' in card
    assert f'data-testid="relocation-review-{alert.pk}"' in card  # the admin reviews from here
    assert "https://" not in card  # no map tiles, nothing fetched from elsewhere


def test_the_agent_sees_the_alert_but_no_review_buttons(alert, login):
    html = login("agent_a").get(f"/console/terminals/{SN_A}/").content.decode()
    assert f'data-alert="{alert.pk}"' in html
    assert f'data-testid="relocation-review-{alert.pk}"' not in html


def test_a_terminal_never_heard_of_says_so(clock, terminals, login):
    html = login("admin").get(f"/console/terminals/{SN_B}/").content.decode()
    card = html.split('data-testid="device-health"')[1].split("</section>")[0]
    assert 'data-connectivity="never"' in card
    assert 'data-testid="silent-badge"' in card
    assert 'data-testid="open-relocation-alert"' not in card


def test_offline_after_ten_minutes(located, login, clock):
    terminal_heartbeat(terminal=Terminal.objects.get(sn=SN_A), source="gateway")
    clock.shift(timedelta(minutes=11))
    html = login("admin").get(f"/console/terminals/{SN_A}/").content.decode()
    assert 'data-connectivity="offline"' in html
    assert 'data-testid="silent-badge"' not in html


# -- silent terminals -------------------------------------------------------------------------------------


def test_the_silent_list_shows_25_hours_of_silence_and_not_an_hour(clock, terminals, login):
    at = now()
    Terminal.objects.filter(sn=SN_A).update(last_heartbeat_at=at - timedelta(hours=25))
    Terminal.objects.filter(sn=SN_A1).update(last_heartbeat_at=at - timedelta(hours=1))
    # SN_B never sent one.
    html = login("admin").get(SILENT).content.decode()
    assert 'data-testid="silent-' + SN_A + '"' in html
    assert 'data-testid="silent-' + SN_B + '"' in html
    assert 'data-testid="silent-' + SN_A1 + '"' not in html
    assert html.index(f'data-testid="silent-{SN_B}"') < html.index(f'data-testid="silent-{SN_A}"')
    never = login("admin").get(SILENT, {"seen": "never"}).content.decode()
    assert (f'data-testid="silent-{SN_B}"' in never, f'data-testid="silent-{SN_A}"' in never) == (True, False)
    stale = login("admin").get(SILENT, {"seen": "stale", "q": "SN-CON-A"}).content.decode()
    assert (f'data-testid="silent-{SN_A}"' in stale, f'data-testid="silent-{SN_B}"' in stale) == (True, False)


@pytest.mark.parametrize("name", PERSONAS)
def test_the_silent_list_is_scoped(clock, terminals, login, name):
    html = login(name).get(SILENT).content.decode()
    shown = {sn for sn in (SN_A, SN_A1, SN_B) if f'data-testid="silent-{sn}"' in html}
    assert shown == VISIBLE[name]


def test_the_silent_list_pages(clock, terminals, login, world):
    from posfleet.console.views.health import PAGE
    from posfleet.fleet.states import Status
    from posfleet.testing.personas import make_terminal

    for n in range(PAGE - 2):
        make_terminal(world, f"SN-SIL-{n:04d}", Status.ACTIVE, merchant=world.merchant_b)
    client = login("admin")
    first = client.get(SILENT).content.decode()
    second = client.get(SILENT, {"page": 2}).content.decode()
    assert first.count('data-testid="silent-SN-') == PAGE
    assert second.count('data-testid="silent-SN-') == 1
    assert 'data-page="next"' in first


# -- relocation alerts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PERSONAS)
def test_the_alert_list_is_scoped(alert, login, name):
    html = login(name).get(ALERTS).content.decode()
    assert (f'data-testid="relocation-{alert.pk}"' in html) is (SN_A in VISIBLE[name])
    assert (f'data-testid="relocation-review-{alert.pk}"' in html) is (name == "admin")


def test_the_alert_list_shows_distance_and_coordinates(alert, login):
    html = login("reviewer").get(ALERTS).content.decode()
    row = html.split(f'data-testid="relocation-{alert.pk}"')[1].split("</tr>")[0]
    assert f'data-metres="{alert.distance_m}"' in row
    assert 'href="geo:31.298886,120.585316"' in row
    assert 'href="geo:31.230416,121.473701"' in row
    assert "± 15 m" in row


def test_the_admin_confirms_a_move_from_the_terminal_page(alert, login):
    response = login("admin").post(
        review_url(alert), {"action": "confirm_moved", "note": "New address", "back": "terminal"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/console/terminals/{SN_A}/"
    row = RelocationAlert.objects.get(pk=alert.pk)
    assert (row.status, row.note) == ("confirmed_moved", "New address")
    listed = login("admin").get(ALERTS, {"tab": "confirmed_moved"}).content.decode()
    assert f'data-testid="relocation-status-{alert.pk}"' in listed
    assert f'data-testid="relocation-review-{alert.pk}"' not in listed


def test_dismissing_without_a_note_is_refused_with_its_message(alert, login):
    client = login("admin")
    with assert_nothing_recorded(alert):
        response = client.post(review_url(alert), {"action": "dismiss", "note": ""})
    assert response.status_code == 302
    assert response["Location"] == ALERTS
    page = client.get(ALERTS).content.decode()
    assert "Say in the note why this alert is a false alarm." in page
    client.post(review_url(alert), {"action": "dismiss", "note": "GPS drift"})
    assert RelocationAlert.objects.get(pk=alert.pk).status == "dismissed"
    with assert_nothing_recorded(RelocationAlert.objects.get(pk=alert.pk)):
        client.post(review_url(alert), {"action": "confirm_moved"})
    assert "This relocation alert was reviewed already" in client.get(ALERTS).content.decode()


@pytest.mark.parametrize("name", [p for p in PERSONAS if p != "admin"])
def test_others_may_not_review_and_nothing_changes(alert, login, name):
    with assert_nothing_recorded(alert):
        response = login(name).post(review_url(alert), {"action": "confirm_moved", "note": "x"})
    assert response.status_code == (403 if SN_A in VISIBLE[name] else 404)


def test_get_on_the_review_is_not_allowed(alert, login):
    assert login("admin").get(review_url(alert)).status_code == 405


def test_an_unknown_action_on_others_alert_is_404_and_on_ones_own_a_message(alert, login):
    with assert_nothing_recorded(alert):
        assert login("agent_b").post(review_url(alert), {"action": "shrug"}).status_code == 404
        response = login("admin").post(review_url(alert), {"action": "shrug", "back": "terminal"})
    assert response.status_code == 302
    assert response["Location"] == f"/console/terminals/{SN_A}/"
    assert login("admin").get(ALERTS).status_code == 200


def test_the_terminal_page_shows_the_gateway_key_and_its_revocation(clock, terminals, login):
    from posfleet.fleet.models import TerminalKey
    from posfleet.fleet.services import terminal_transition
    from posfleet.testing.personas import SYSTEM

    key = TerminalKey.objects.get(terminal__sn=SN_A, revoked_at__isnull=True)
    page = login("merchant_a").get(f"/console/terminals/{SN_A}/").content.decode()
    cell = page.split('data-testid="gateway-key"')[1].split("</dd>")[0]
    assert key.master_kcv in cell
    assert "revoked" not in cell
    terminal_transition(actor=SYSTEM, sn=SN_A, action="deactivate", reason="cost")
    page = login("merchant_a").get(f"/console/terminals/{SN_A}/").content.decode()
    cell = page.split('data-testid="gateway-key"')[1].split("</dd>")[0]
    assert "revoked (terminal deactivated)" in cell
    assert key.master_kcv in cell
