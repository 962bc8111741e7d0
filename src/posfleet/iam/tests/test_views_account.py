"""Account pages: language switch, two-factor set-up and backup codes, API tokens."""

from __future__ import annotations

import re
import time
from base64 import b32encode

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.iam.models import ApiToken, User, hash_token
from posfleet.testing.sessions import sign_in
from posfleet.testing.totp import code_at

T0 = 1_800_000_005


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def login(world):
    def make(name: str) -> Client:
        return sign_in(Client(), world.user(name))

    return make


def totp(secret: str | None = None) -> str:
    return code_at(time.time(), secret) if secret else code_at(time.time())


# ---------------------------------------------------------------------------------------------
# Language


def test_new_users_default_to_chinese(db):
    assert User().language == "zh-hans"


def test_language_switch_persists_to_the_user_and_the_cookie(clock, world, login):
    client = login("agent_a")
    assert '<html lang="en">' in client.get("/console/").content.decode()
    response = client.post("/accounts/language/", {"language": "zh-hans", "next": "/console/terminals/"})
    assert response["Location"] == "/console/terminals/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert User.objects.get(username="agent_a").language == "zh-hans"
    assert '<html lang="zh-hans">' in client.get("/console/").content.decode()
    # the choice follows the user to a new browser (no cookie there)
    assert '<html lang="zh-hans">' in login("agent_a").get("/console/").content.decode()
    client.post("/accounts/language/", {"language": "en"})
    assert User.objects.get(username="agent_a").language == "en"


def test_language_switch_shows_the_other_language(clock, world, login):
    html = login("admin").get("/console/").content.decode()
    switch = html.split('data-testid="language-switch"')[1].split("</button>")[0]
    assert "简体中文" in switch
    assert 'name="language" value="zh-hans"' in html


def test_unknown_language_and_unsafe_next_are_ignored(clock, world, login):
    client = login("admin")
    response = client.post("/accounts/language/", {"language": "xx", "next": "https://evil.example/"})
    assert response["Location"] == "/console/"
    assert User.objects.get(username="admin").language == "en"


def test_anonymous_language_switch_sets_the_cookie_only(db):
    client = Client()
    response = client.post("/accounts/language/", {"language": "en", "next": "/accounts/login/"})
    assert response["Location"] == "/accounts/login/"
    assert '<html lang="en">' in client.get("/accounts/login/").content.decode()


def test_language_switch_is_post_only(db):
    assert Client().get("/accounts/language/").status_code == 405


# ---------------------------------------------------------------------------------------------
# Two-factor set-up


def test_security_page_shows_the_state(clock, world, login):
    response = login("merchant_a").get("/accounts/security/")
    html = response.content.decode()
    assert 'data-testid="totp-status"' in html
    assert "0 unused backup codes left." in html
    assert "no-store" in response["Cache-Control"]
    assert html.count('id="start_totp"') == 1
    assert html.count('id="backup_totp"') == 1


def test_replacing_an_authenticator_needs_a_step_up(clock, world, login):
    client = login("merchant_a")
    html = client.post("/accounts/security/totp/start/", {}).content.decode()
    assert "This field is required." in html
    assert not TOTPDevice.objects.filter(user=world.user("merchant_a"), confirmed=False).exists()


def test_enrolment_with_qr_code_then_backup_codes_once(clock, world, login):
    user = world.user("merchant_a")
    client = login("merchant_a")
    response = client.post("/accounts/security/totp/start/", {"totp": totp()})
    assert response.status_code == 302
    page = client.get("/accounts/security/").content.decode()
    pending = TOTPDevice.objects.get(user=user, confirmed=False)
    secret = b32encode(pending.bin_key).decode()
    assert "<svg" in page.split('data-testid="totp-qr"')[1][:200]
    key_shown = re.search(r'data-testid="totp-key">([^<]+)<', page).group(1).replace(" ", "")
    assert key_shown == secret
    assert secret not in response["Location"]

    clock.shift(31)
    wrong = client.post("/accounts/security/totp/confirm/", {"code": "000000"}).content.decode()
    assert "That code does not match." in wrong
    response = client.post("/accounts/security/totp/confirm/", {"code": totp(secret)})
    html = response.content.decode()
    assert "no-store" in response["Cache-Control"]
    codes = re.findall(r"<li>([0-9a-f]{8}-[0-9a-f]{4})</li>", html)
    assert len(codes) == 10
    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1
    assert TOTPDevice.objects.get(user=user, confirmed=True).pk == pending.pk  # the old device is gone
    assert StaticToken.objects.filter(device__user=user).count() == 10
    again = client.get("/accounts/security/").content.decode()
    assert not any(code in again for code in codes)  # shown once only
    assert "10 unused backup codes left." in again
    assert AuditEvent.objects.filter(event_type=EventType.MFA_ENROLLED).count() == 1


def test_regenerating_backup_codes_needs_a_step_up(clock, world, login):
    user = world.user("admin")
    client = login("admin")
    refused = client.post("/accounts/security/backup-codes/", {}).content.decode()
    assert "This field is required." in refused
    assert StaticToken.objects.filter(device__user=user).count() == 0
    html = client.post("/accounts/security/backup-codes/", {"totp": totp()}).content.decode()
    first = re.findall(r"<li>([0-9a-f]{8}-[0-9a-f]{4})</li>", html)
    assert len(first) == 10
    # within the step-up window no new code is asked for
    html = client.post("/accounts/security/backup-codes/", {}).content.decode()
    second = re.findall(r"<li>([0-9a-f]{8}-[0-9a-f]{4})</li>", html)
    assert len(second) == 10
    assert not set(first) & set(second)
    assert set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True)) == set(second)


def test_a_wrong_code_regenerates_nothing(clock, world, login):
    client = login("admin")
    html = client.post("/accounts/security/backup-codes/", {"totp": "123456"}).content.decode()
    assert "The verification code is wrong, expired or already used." in html
    assert StaticToken.objects.count() == 0


# ---------------------------------------------------------------------------------------------
# API tokens


def test_token_creation_needs_a_step_up(clock, world, login):
    client = login("agent_a")
    html = client.post("/accounts/tokens/", {"name": "ERP sync", "scope": "read"}).content.decode()
    assert "This field is required." in html
    assert not ApiToken.objects.exists()


def test_token_secret_is_shown_once_and_only_its_hash_is_stored(clock, world, login):
    client = login("agent_a")
    response = client.post(
        "/accounts/tokens/",
        {"name": "ERP sync", "scope": "write", "expires_on": "2027-06-30", "totp": totp()},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = re.search(r'id="new-token-secret" value="([^"]+)"', html).group(1)
    assert secret.startswith("pf_")
    assert 'data-testid="copy-secret"' in html
    token = ApiToken.objects.get()
    assert token.digest == hash_token(secret)
    assert secret not in {token.name, token.prefix, token.digest}
    assert token.prefix == secret[:10]
    assert token.scope == "write"
    assert token.expires_at.date().isoformat() == "2027-06-30"
    listing = client.get("/accounts/tokens/").content.decode()
    assert secret not in listing
    assert "ERP sync" in listing
    assert f"{token.prefix}…" in listing


def test_tokens_list_shows_only_ones_own(clock, world, login):
    for name in ("agent_a", "agent_b"):
        client = login(name)
        client.post("/accounts/tokens/", {"name": f"token of {name}", "scope": "read", "totp": totp()})
        clock.shift(31)
    html = login("agent_a").get("/accounts/tokens/").content.decode()
    assert "token of agent_a" in html
    assert "token of agent_b" not in html


def test_revoke_own_token_but_not_someone_elses(clock, world, login):
    client = login("agent_a")
    client.post("/accounts/tokens/", {"name": "mine", "scope": "read", "totp": totp()})
    clock.shift(31)
    other = login("agent_b")
    other.post("/accounts/tokens/", {"name": "theirs", "scope": "read", "totp": totp()})
    mine, theirs = ApiToken.objects.get(name="mine"), ApiToken.objects.get(name="theirs")
    client.post(f"/accounts/tokens/{theirs.pk}/revoke/")
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    response = client.post(f"/accounts/tokens/{mine.pk}/revoke/", follow=True)
    mine.refresh_from_db()
    assert mine.revoked_at is not None
    assert "was revoked" in response.content.decode()
    assert client.get(f"/accounts/tokens/{mine.pk}/revoke/").status_code == 405


def test_expiry_in_the_past_is_refused(clock, world, login):
    html = login("admin").post(
        "/accounts/tokens/", {"name": "old", "scope": "read", "expires_on": "2020-01-01", "totp": totp()}
    )
    assert "The expiry must be today or later." in html.content.decode()
    assert not ApiToken.objects.exists()
