"""Who may see which console page: anonymous, every persona, others' terminals (404, not 403)."""

from __future__ import annotations

import pytest
from django.test import Client

from posfleet.console.tests.helpers import PERSONAS, SN_A, SN_A1, SN_B, VISIBLE, htmx, trace

PAGES = [
    "/console/",
    "/console/terminals/",
    f"/console/terminals/{SN_A}/",
    f"/console/terminals/actions/deactivate/?sn={SN_A}",
    "/accounts/security/",
    "/accounts/tokens/",
    "/console/inbox/",
    "/console/notifications/",
    "/console/expiry/",
    "/console/closures/",
    "/console/closures/new/",
    "/console/closures/returns/",
]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_is_sent_to_the_login_page(clock, terminals, url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", PAGES[:4])
def test_anonymous_htmx_request_redirects_the_whole_page(clock, terminals, url):
    response = Client().get(url, **htmx(HTTP_HX_CURRENT_URL="http://testserver/console/terminals/?q=SN"))
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/login/?next=/console/terminals/%3Fq%3DSN"


def test_anonymous_post_to_an_action_changes_nothing(clock, terminals):
    response = Client().post("/console/terminals/actions/deactivate/", {"sn": SN_A, "reason": "cost"})
    assert response.status_code == 302
    assert terminals[SN_A].__class__.objects.get(sn=SN_A).status == "active"


@pytest.mark.parametrize("name", PERSONAS)
def test_every_persona_reaches_the_dashboard_list_and_account_pages(clock, terminals, login, name):
    client = login(name)
    for url in ("/console/", "/console/terminals/", "/accounts/security/", "/accounts/tokens/"):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("name", PERSONAS)
@pytest.mark.parametrize("sn", [SN_A, SN_A1, SN_B])
def test_terminal_page_is_404_for_others_terminals(clock, terminals, login, name, sn):
    response = login(name).get(f"/console/terminals/{sn}/")
    if sn in VISIBLE[name]:
        assert response.status_code == 200
        assert f'data-testid="status-{sn}"' in response.content.decode()
    else:
        assert response.status_code == 404
        html = response.content.decode()
        assert "Page not found" in html
        assert 'data-testid="status-' not in html  # nothing about the terminal itself
        assert 'data-testid="timeline"' not in html


@pytest.mark.parametrize("name", PERSONAS)
def test_terminal_list_shows_only_the_personas_scope(clock, terminals, login, name):
    html = login(name).get("/console/terminals/").content.decode()
    shown = {sn for sn in (SN_A, SN_A1, SN_B) if f'data-sn="{sn}"' in html}
    assert shown == VISIBLE[name]


@pytest.mark.parametrize("name", PERSONAS)
def test_action_dialog_does_not_reveal_others_terminals(clock, terminals, login, name):
    html = login(name).get(f"/console/terminals/actions/deactivate/?sn={SN_A}&sn={SN_B}").content.decode()
    for sn in (SN_A, SN_B):
        row = html.split(f'data-testid="candidate-{sn}"')[1].split("</tr>")[0]
        if sn in VISIBLE[name]:
            assert 'class="badge status-badge status-active"' in row
        else:
            assert "not found" in row
            assert "status-badge" not in row  # not even the status leaks


def test_unknown_action_is_404(clock, terminals, login):
    assert login("admin").get(f"/console/terminals/actions/explode/?sn={SN_A}").status_code == 404
    before = trace(SN_A)
    forged = login("admin").post("/console/terminals/actions/explode/", {"sn": [SN_A], "reason": "cost"})
    assert forged.status_code == 404
    assert trace(SN_A) == before


def test_django_admin_link_only_for_superusers(clock, terminals, login, world):
    assert 'href="/admin/"' not in login("admin").get("/console/").content.decode()
    admin = world.user("admin")
    admin.is_superuser = True
    admin.save()
    assert 'href="/admin/"' in login("admin").get("/console/").content.decode()


def test_navbar_shows_organisation_user_and_role(clock, terminals, login):
    html = login("agent_a").get("/console/").content.decode()
    assert 'data-testid="org-name">Agent A<' in html
    assert 'data-testid="user-role">agent<' in html
    assert 'data-testid="language-switch"' in html
    assert 'data-testid="logout"' in html
    assert 'data-nav="terminals"' in html
