"""Logging in with a second factor (PCI DSS 8.4.2, docs/adr/0020): the password page, then the code page
(or, for staff without an authenticator, a forced set-up); a session that skipped the code is worth
nothing anywhere; the code at login counts as a fresh step-up."""

from __future__ import annotations

import re
from base64 import b32encode
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.iam.web import SESSION_KEY as STEP_UP_KEY
from posfleet.testing.personas import PASSWORD
from posfleet.testing.sessions import sign_in
from posfleet.testing.totp import code_at

LOGIN = "/accounts/login/"
CODE = "/accounts/login/code/"
ENROL = "/accounts/login/enrol/"
T0 = 1_800_000_005  # just after a 30-second TOTP step begins
WRONG_CODE = "000000" if code_at(T0) != "000000" else "111111"


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def english() -> Client:
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def password_step(client: Client, username: str, password: str = PASSWORD, next_url: str = ""):
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post(LOGIN, data)


def signed_in(client: Client) -> bool:
    return client.get("/console/").status_code == 200


def events_since(seq: int) -> list[str]:
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("event_type", flat=True))


def last_seq() -> int:
    last = AuditEvent.objects.order_by("-seq").first()
    return last.seq if last else 0


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.mark.parametrize("persona", ["admin", "reviewer", "warehouse", "agent_a"])
def test_staff_give_a_code_after_the_password(clock, world, persona):
    client = english()
    before = last_seq()
    response = password_step(client, persona, next_url="/console/terminals/")
    assert (response.status_code, response["Location"]) == (302, CODE)
    assert not signed_in(client)  # the password alone signs nobody in
    page = client.get(CODE)
    assert 'data-testid="login-code-form"' in page.content.decode()
    assert "Enter the 6-digit code from your authenticator app" in text_of(page)
    response = client.post(CODE, {"code": code_at(T0)})
    assert (response.status_code, response["Location"]) == (302, "/console/terminals/")
    assert signed_in(client)
    assert events_since(before) == [
        EventType.LOGIN_PASSWORD_ACCEPTED,
        EventType.STEP_UP_SUCCEEDED,
        EventType.LOGIN_SUCCEEDED,
    ]


def test_the_code_page_rotates_the_session_id_at_each_step(clock, world):
    client = english()
    client.get(LOGIN)
    client.cookies["sessionid"] = "a-session-id-an-attacker-planted"
    password_step(client, "admin")
    after_password = client.cookies["sessionid"].value
    assert after_password != "a-session-id-an-attacker-planted"
    client.post(CODE, {"code": code_at(T0)})
    assert client.cookies["sessionid"].value not in {after_password, "a-session-id-an-attacker-planted"}
    assert signed_in(client)


def test_a_wrong_code_signs_nobody_in_and_is_counted(clock, world):
    client = english()
    password_step(client, "admin")
    before = last_seq()
    response = client.post(CODE, {"code": WRONG_CODE})
    assert response.status_code == 200
    assert "The verification code is wrong, expired or already used." in text_of(response)
    assert not signed_in(client)
    assert events_since(before) == [EventType.STEP_UP_FAILED]
    assert TOTPDevice.objects.get(user=world.user("admin")).throttling_failure_count == 1


def test_ten_wrong_codes_lock_the_login_even_with_the_right_code(clock, world):
    client = english()
    password_step(client, "admin")
    for _ in range(10):
        client.post(CODE, {"code": WRONG_CODE})
    locked = client.post(CODE, {"code": code_at(T0)})
    assert "Too many wrong verification codes. Verification is locked for 30 minutes." in text_of(locked)
    assert not signed_in(client)
    # a new password step does not reset the count either
    other = english()
    password_step(other, "admin")
    assert "locked" in text_of(other.post(CODE, {"code": code_at(T0)}))
    assert not signed_in(other)
    clock.shift(timedelta(minutes=31))
    third = english()
    password_step(third, "admin")
    third.post(CODE, {"code": code_at(T0 + 31 * 60)})
    assert signed_in(third)


def test_a_code_used_to_log_in_cannot_be_used_again(clock, world):
    first, second = english(), english()
    password_step(first, "agent_a")
    password_step(second, "agent_a")
    first.post(CODE, {"code": code_at(T0)})
    assert signed_in(first)
    replay = second.post(CODE, {"code": code_at(T0)})
    assert "The verification code is wrong, expired or already used." in text_of(replay)
    assert not signed_in(second)


def test_a_backup_code_logs_in_once(clock, world):
    user = world.user("reviewer")
    static = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    StaticToken.objects.create(device=static, token="abcd1234-ef56")
    client = english()
    password_step(client, "reviewer")
    client.post(CODE, {"code": "abcd1234-ef56"})
    assert signed_in(client)
    again = english()
    password_step(again, "reviewer")
    again.post(CODE, {"code": "abcd1234-ef56"})
    assert not signed_in(again)


def test_the_code_page_without_a_password_step_goes_back_to_the_login(clock, world):
    client = english()
    response = client.get(CODE)
    assert (response.status_code, response["Location"]) == (302, LOGIN)
    before = last_seq()
    response = client.post(CODE, {"code": code_at(T0)})
    assert (response.status_code, response["Location"]) == (302, LOGIN)
    assert events_since(before) == []
    assert TOTPDevice.objects.get(user=world.user("admin")).last_t == -1  # no code was looked at


def test_a_password_step_expires_after_ten_minutes(clock, world):
    client = english()
    password_step(client, "admin")
    clock.shift(timedelta(minutes=11))
    response = client.post(CODE, {"code": code_at(T0 + 11 * 60)})
    assert (response.status_code, response["Location"]) == (302, LOGIN)
    assert not signed_in(client)


def test_a_password_changed_between_the_steps_ends_the_pending_login(clock, world):
    client = english()
    password_step(client, "admin")
    admin = world.user("admin")
    admin.set_password("a-brand-new-password")
    admin.save()
    response = client.post(CODE, {"code": code_at(T0)})
    assert (response.status_code, response["Location"]) == (302, LOGIN)
    assert not signed_in(client)


def test_a_wrong_password_never_reaches_the_code_page(clock, world):
    client = english()
    response = password_step(client, "admin", "wrong-password")
    assert response.status_code == 200
    assert client.get(CODE)["Location"] == LOGIN


def test_a_merchant_without_an_authenticator_logs_in_with_the_password(clock, world):
    TOTPDevice.objects.filter(user=world.user("merchant_b")).delete()
    client = english()
    before = last_seq()
    response = password_step(client, "merchant_b")
    assert (response.status_code, response["Location"]) == (302, "/console/")
    assert signed_in(client)
    assert events_since(before) == [EventType.LOGIN_SUCCEEDED]


def test_a_merchant_who_turned_the_authenticator_on_gives_the_code(clock, world):
    client = english()
    assert password_step(client, "merchant_a")["Location"] == CODE
    assert not signed_in(client)
    client.post(CODE, {"code": code_at(T0)})
    assert signed_in(client)


def test_staff_without_an_authenticator_must_set_one_up_first(clock, world):
    user = world.user("warehouse")
    TOTPDevice.objects.filter(user=user).delete()
    client = english()
    response = password_step(client, "warehouse", next_url="/console/terminals/")
    assert (response.status_code, response["Location"]) == (302, ENROL)
    assert not signed_in(client)
    assert client.get(CODE)["Location"] == ENROL  # no way around the set-up
    page = client.get(ENROL)
    html = page.content.decode()
    assert "no-store" in page["Cache-Control"]
    assert "<svg" in html.split('data-testid="totp-qr"')[1][:200]
    pending = TOTPDevice.objects.get(user=user, confirmed=False)
    secret = b32encode(pending.bin_key).decode()
    assert re.search(r'data-testid="totp-key">([^<]+)<', html).group(1).replace(" ", "") == secret
    assert client.get(ENROL).content.decode().count(secret[:4]) >= 1  # reloading keeps the same key
    assert TOTPDevice.objects.filter(user=user, confirmed=False).count() == 1

    wrong = client.post(ENROL, {"code": WRONG_CODE})
    assert "That code does not match." in text_of(wrong)
    assert not signed_in(client)

    before = last_seq()
    done = client.post(ENROL, {"code": code_at(T0, secret)})
    assert done.status_code == 200
    codes = re.findall(r"<li>([0-9a-f]{8}-[0-9a-f]{4})</li>", done.content.decode())
    assert len(codes) == 10
    assert 'href="/console/terminals/"' in done.content.decode()  # then on to where they were going
    assert events_since(before) == [
        EventType.MFA_ENROLLED,
        EventType.MFA_BACKUP_CODES_ISSUED,
        EventType.LOGIN_SUCCEEDED,
    ]
    assert signed_in(client)
    # a set-up is not a step-up: the new authenticator has not proved anything yet
    assert STEP_UP_KEY not in client.session


def test_the_set_up_page_is_only_for_staff_without_an_authenticator(clock, world):
    client = english()
    password_step(client, "admin")  # has one
    assert client.get(ENROL)["Location"] == CODE
    assert client.post(ENROL, {"code": code_at(T0)})["Location"] == CODE
    assert not TOTPDevice.objects.filter(user=world.user("admin"), confirmed=False).exists()
    assert Client().get(ENROL)["Location"] == LOGIN


def test_the_login_code_counts_as_a_fresh_step_up(clock, world):
    client = english()
    password_step(client, "agent_a")
    client.post(CODE, {"code": code_at(T0)})
    html = client.get("/accounts/security/").content.decode()
    assert "Verified recently" in html
    clock.shift(timedelta(minutes=6))
    html = client.get("/accounts/security/").content.decode()
    assert "Not verified in the last 5 minutes" in html


def test_a_session_that_skipped_the_code_is_signed_out_everywhere(clock, world):
    # A session made without the code (as /admin/login/ used to) is worth nothing: not in the
    # console, not on the API, not in /admin/.
    admin = world.user("admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    for url, refused in [("/console/", 302), ("/api/v1/me", 401), ("/admin/", 302)]:
        client = Client()
        client.force_login(admin)
        assert client.get(url).status_code == refused, url
        assert "_auth_user_id" not in client.session, url


def test_a_verified_session_keeps_working(clock, world):
    client = sign_in(Client(), world.user("agent_a"))
    assert client.get("/console/").status_code == 200
    assert client.get("/api/v1/me").status_code == 200


def test_sessions_of_a_merchant_die_when_the_merchant_turns_the_authenticator_on(clock, world):
    user = world.user("merchant_b")
    TOTPDevice.objects.filter(user=user).delete()
    other_browser = Client()
    password_step(other_browser, "merchant_b")
    assert signed_in(other_browser)
    client = Client()
    password_step(client, "merchant_b")
    client.post("/accounts/security/totp/start/", {})
    pending = TOTPDevice.objects.get(user=user, confirmed=False)
    secret = b32encode(pending.bin_key).decode()
    client.post("/accounts/security/totp/confirm/", {"code": code_at(T0, secret)})
    assert signed_in(client)  # the session that set it up was verified by it
    assert not signed_in(other_browser)


def test_logging_in_as_someone_else_signs_the_first_one_out(clock, world):
    client = sign_in(Client(), world.user("agent_a"))
    password_step(client, "agent_b")
    assert not signed_in(client)  # agent_a is gone; agent_b has not given the code yet


def test_the_demo_logins_work_with_the_password_and_the_demo_code(clock, db):
    # README "Demo logins": every demo user has the authenticator of the demo secret.
    from posfleet.demo.build import build_demo
    from posfleet.demo.vocabulary import PASSWORD as DEMO_PASSWORD

    build_demo(agents=2, merchants=20, terminals=300, seed=4242, money_days=0)
    for username in ("admin", "reviewer", "warehouse", "agent1", "merchant1"):
        client = english()
        assert password_step(client, username, DEMO_PASSWORD)["Location"] == CODE, username
        client.post(CODE, {"code": code_at(T0)})
        assert signed_in(client), username
        if username == "admin":
            assert client.get("/admin/").status_code == 200
