"""The login page: Chinese by default, demo notice, lockout without user enumeration, logout. (The
second factor: test_login_second_factor.py.)"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.testing.personas import PASSWORD
from posfleet.testing.sessions import sign_in
from posfleet.testing.totp import code_at

LOGIN = "/accounts/login/"
CODE = "/accounts/login/code/"
T0 = 1_800_000_005
# The login page is in Chinese for a new visitor; this is its one refusal message.
REFUSED = "用户名或密码错误，或账户暂时被锁定。请稍后重试。"


def attempt(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def error_of(response) -> str:
    match = re.search(r'data-testid="login-error">(.*?)</div>\s*</div>', response.content.decode(), re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip() if match else ""


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def test_login_page_is_chinese_by_default_and_has_the_test_ids(db):
    response = Client().get(LOGIN, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="zh-hans">' in html
    assert 'id="id_username"' in html
    assert 'id="id_password"' in html
    assert 'data-testid="language-switch"' in html


def test_login_page_follows_a_chosen_language(db):
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert '<html lang="en">' in client.get(LOGIN).content.decode()


def test_demo_notice_shows_the_demo_logins(db):
    html = Client().get(LOGIN).content.decode()
    notice = html.split('data-testid="demo-notice"')[1]
    for text in ("admin", "reviewer", "agent1", "merchant1", "posfleet-demo", "JBSWY3DPEHPK3PXP"):
        assert text in notice


def test_no_demo_notice_outside_demo_mode(db, settings):
    settings.POSFLEET = {**settings.POSFLEET, "DEMO_MODE": False}
    html = Client().get(LOGIN).content.decode()
    assert 'data-testid="demo-notice"' not in html
    assert "JBSWY3DPEHPK3PXP" not in html


def test_login_rotates_the_session_and_goes_to_the_console(clock, world):
    client = Client()
    client.get(LOGIN)
    client.cookies["sessionid"] = "a-session-id-an-attacker-planted"
    assert attempt(client, "agent_a", PASSWORD)["Location"] == CODE
    response = client.post(CODE, {"code": code_at(T0)})
    assert response.status_code == 302
    assert response["Location"] == "/console/"
    assert client.cookies["sessionid"].value != "a-session-id-an-attacker-planted"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"  # the user's own language
    assert client.get("/console/").status_code == 200
    assert AuditEvent.objects.filter(event_type=EventType.LOGIN_SUCCEEDED).count() == 1


def test_login_follows_a_safe_next_only(clock, world):
    client = Client()
    client.post(LOGIN + "?next=/console/terminals/", {"username": "admin", "password": PASSWORD})
    response = client.post(CODE, {"code": code_at(T0)})
    assert response["Location"] == "/console/terminals/"
    clock.shift(31)
    client = Client()
    client.post(LOGIN + "?next=https://evil.example/", {"username": "admin", "password": PASSWORD})
    response = client.post(CODE, {"code": code_at(T0 + 31)})
    assert response["Location"] == "/console/"


def test_wrong_password_and_unknown_user_answer_the_same(clock, world):
    wrong = attempt(Client(), "admin", "not-the-password")
    unknown = attempt(Client(), "nobody-by-this-name", "not-the-password")
    assert wrong.status_code == unknown.status_code == 200
    assert REFUSED in error_of(wrong)
    assert error_of(wrong) == error_of(unknown)
    assert "_auth_user_id" not in Client().session


def test_lockout_after_ten_failures_refuses_even_the_right_password(clock, world):
    client = Client()
    for _ in range(10):
        assert REFUSED in error_of(attempt(client, "admin", "wrong-password"))
    locked = attempt(client, "admin", PASSWORD)
    assert locked.status_code == 200
    assert error_of(locked) == error_of(attempt(Client(), "admin", "wrong-password"))
    assert client.get("/console/").status_code == 302  # still not signed in
    assert AuditEvent.objects.filter(event_type=EventType.LOGIN_LOCKED).exists()


def test_unknown_usernames_lock_out_identically(clock, world):
    known, unknown = Client(), Client()
    for _ in range(10):
        attempt(known, "admin", "wrong-password")
        attempt(unknown, "ghost", "wrong-password")
    answer_known = attempt(known, "admin", "wrong-password")
    answer_unknown = attempt(unknown, "ghost", "wrong-password")
    assert error_of(answer_known) == error_of(answer_unknown) != ""
    assert answer_known.status_code == answer_unknown.status_code


def test_lockout_ends_after_thirty_minutes(clock, world):
    for _ in range(10):
        attempt(Client(), "admin", "wrong-password")
    clock.shift(timedelta(minutes=29))
    assert attempt(Client(), "admin", PASSWORD).status_code == 200
    clock.shift(timedelta(minutes=2))
    assert attempt(Client(), "admin", PASSWORD)["Location"] == CODE  # on to the code


def test_logout_needs_a_post(clock, world):
    client = sign_in(Client(), world.user("admin"))
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response["Location"] == "/accounts/login/"
    assert client.get("/console/").status_code == 302


def test_staff_session_idles_out_after_fifteen_minutes(clock, world):
    client = sign_in(Client(), world.user("admin"))
    clock.shift(timedelta(minutes=14))
    assert client.get("/console/").status_code == 200
    clock.shift(timedelta(minutes=16))
    assert client.get("/console/").status_code == 302


def test_disabled_user_is_signed_out_on_the_next_request(clock, world):
    user = world.user("agent_a")
    client = sign_in(Client(), user)
    user.is_active = False
    user.save()
    assert client.get("/console/").status_code == 302
