"""Page-level security and plumbing: CSP with nonces, no external assets, CSRF, 404s, health, root."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from posfleet.console.tests.helpers import SN_A, htmx, totp
from posfleet.fleet.models import Terminal
from posfleet.testing.sessions import sign_in

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
    "/console/no-such-page/",
]


def asset_urls(html: str) -> list[str]:
    return re.findall(r'<script[^>]*\ssrc="([^"]+)"', html) + re.findall(r'<link[^>]*\shref="([^"]+)"', html)


@pytest.mark.parametrize("url", PAGES)
def test_pages_send_a_csp_with_a_nonce_and_load_nothing_from_elsewhere(clock, terminals, login, url):
    response = login("admin").get(url)
    csp = response["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    html = response.content.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        if 'type="application/json"' in tag:
            continue
        assert f'nonce="{nonce}"' in tag, tag
    for url_ in asset_urls(html):
        assert url_.startswith("/"), url_
        assert not url_.startswith("//"), url_
    assert not re.search(r"\son[a-z]+=", html), "inline event handlers are blocked by the CSP"


def test_login_page_has_no_external_assets_either(db):
    response = Client().get("/accounts/login/")
    assert "Content-Security-Policy" in response
    assert all(u.startswith("/static/") for u in asset_urls(response.content.decode()))


def test_body_sends_the_csrf_token_with_htmx_requests(clock, terminals, login):
    client = login("admin")
    html = client.get("/console/terminals/").content.decode()
    token = re.search(r"""hx-headers='\{"X-CSRFToken": "([^"]+)"\}'""", html).group(1)
    assert re.fullmatch(r"[A-Za-z0-9]{64}", token)  # a masked CSRF token, as Django makes them


def test_posts_without_a_csrf_token_are_refused(clock, terminals, world):
    client = sign_in(Client(enforce_csrf_checks=True), world.user("admin"))
    response = client.post(
        "/console/terminals/actions/deactivate/", {"sn": SN_A, "reason": "cost", "totp": totp()}, **htmx()
    )
    assert response.status_code == 403
    assert Terminal.objects.get(sn=SN_A).status == "active"
    for url in ("/accounts/tokens/", "/accounts/language/", "/accounts/logout/"):
        assert client.post(url, {"language": "zh-hans", "name": "x"}).status_code == 403


def test_posts_with_the_csrf_header_pass(clock, terminals, world):
    client = sign_in(Client(enforce_csrf_checks=True), world.user("admin"))
    html = client.get("/console/terminals/").content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)
    response = client.post(
        "/console/terminals/actions/deactivate/",
        {"sn": SN_A, "reason": "cost", "totp": totp()},
        **htmx(HTTP_X_CSRFTOKEN=token),
    )
    assert response.status_code == 200
    assert Terminal.objects.get(sn=SN_A).status == "deactivated"


def test_browser_404_is_a_friendly_page(clock, terminals, login):
    response = login("merchant_a").get("/console/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "Page not found" in html
    assert 'href="/console/"' in html


def test_anonymous_404_offers_the_login(db):
    response = Client().get("/nothing-here/")
    assert response.status_code == 404
    assert 'href="/accounts/login/"' in response.content.decode()


def test_api_404_is_problem_json(db):
    response = Client().get("/api/v1/no-such-endpoint-at-all/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["status"] == 404
    assert body["code"] == "not_found"
    assert {"type", "title", "detail"} <= set(body)


def test_healthz(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_root_leads_to_the_console_or_the_login(clock, terminals, login):
    assert Client().get("/", follow=True).redirect_chain[-1][0] == "/accounts/login/?next=/console/"
    assert login("admin").get("/")["Location"] == "/console/"


def test_pages_have_the_footer_version_and_a_loading_indicator(clock, terminals, login):
    html = login("admin").get("/console/terminals/").content.decode()
    assert 'data-testid="version">v0.1.0<' in html
    assert 'id="global-indicator"' in html
    assert 'hx-indicator="#terminal-table-card"' in html
