"""/admin/ stays for superusers: every registered page loads; nobody else gets in; statuses and the
audit chain cannot be edited there. Its login is the console's (throttled, audited, with the second
factor), it needs a verified session, and edits of identities need a fresh step-up (docs/adr/0020)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import time_machine
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.states import Status
from posfleet.iam.models import Role, User
from posfleet.testing.personas import PASSWORD, make_terminal
from posfleet.testing.sessions import sign_in
from posfleet.testing.totp import code_at

T0 = 1_800_000_005
REFUSED = "The username or password is wrong, or the account is locked for a while. Please try again later."
IDENTITY_MODELS = {User, TOTPDevice}


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def superuser(world):
    user = world.user("admin")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def english() -> Client:
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def kinds() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("event_type", flat=True))


def test_every_changelist_and_change_page_loads_for_a_superuser(client, world, superuser):
    make_terminal(world, "SN-ADMIN-01", Status.ACTIVE)
    sign_in(client, superuser, stepped_up=True)
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.get(url).status_code == 200, url
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            assert client.get(f"{url}{first.pk}/change/").status_code == 200, url


@pytest.mark.parametrize("persona", ["admin", "agent_a", "merchant_a"])
def test_non_superusers_are_sent_to_the_admin_login(client, world, persona):
    sign_in(client, world.user(persona))
    response = client.get("/admin/fleet/terminal/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert client.get(response["Location"]).status_code == 403  # signed in, but not for /admin/


def test_terminal_status_is_read_only_and_audit_cannot_be_changed(client, world, superuser):
    terminal = make_terminal(world, "SN-ADMIN-02", Status.ACTIVE)
    sign_in(client, superuser)
    page = client.get(f"/admin/fleet/terminal/{terminal.pk}/change/").content.decode()
    assert 'name="status"' not in page
    client.post(
        f"/admin/fleet/terminal/{terminal.pk}/change/", {"status": "scrapped", "model": terminal.model_id}
    )
    terminal.refresh_from_db()
    assert terminal.status == Status.ACTIVE

    event = AuditEvent.objects.first()
    assert client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403


# ---------------------------------------------------------------------------------------------
# The admin's login is the console's


def test_the_admin_login_counts_and_audits_every_wrong_password(clock, world, superuser):
    client = english()
    before = AuditEvent.objects.count()
    answers = [
        client.post("/admin/login/", {"username": "admin", "password": "wrong-password"}) for _ in range(12)
    ]
    assert {a.status_code for a in answers} == {200}
    assert all(REFUSED in text_of(a) for a in answers)
    assert kinds()[before:] == [EventType.LOGIN_FAILED] * 9 + [EventType.LOGIN_LOCKED] * 3
    locked = client.post("/admin/login/", {"username": "admin", "password": PASSWORD})
    assert REFUSED in text_of(locked)
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_the_admin_login_asks_for_the_code_and_returns_to_the_admin(clock, world, superuser):
    client = english()
    page = client.get("/admin/login/?next=/admin/iam/organisation/")
    assert page.status_code == 200
    assert 'name="next" value="/admin/iam/organisation/"' in page.content.decode()
    assert 'action="/accounts/login/"' in page.content.decode()
    response = client.post(
        "/admin/login/", {"username": "admin", "password": PASSWORD, "next": "/admin/iam/organisation/"}
    )
    assert response["Location"] == "/accounts/login/code/"
    assert client.get("/admin/").status_code == 302
    response = client.post("/accounts/login/code/", {"code": code_at(T0)})
    assert response["Location"] == "/admin/iam/organisation/"
    assert client.get("/admin/iam/organisation/").status_code == 200


def test_a_signed_in_superuser_is_sent_from_the_admin_login_to_the_admin(clock, world, superuser):
    client = sign_in(english(), superuser)
    response = client.get("/admin/login/")
    assert (response.status_code, response["Location"]) == (302, "/admin/")


def test_the_admin_logout_is_the_audited_one(clock, world, superuser):
    client = sign_in(english(), superuser)
    before = AuditEvent.objects.count()
    response = client.post("/admin/logout/")
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 302
    assert kinds()[before:] == [EventType.LOGGED_OUT]


# ---------------------------------------------------------------------------------------------
# Edits of identities need a fresh step-up


def change_url(user: User) -> str:
    return f"/admin/iam/user/{user.pk}/change/"


def user_form(user: User, **changes: str) -> dict[str, str]:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "date_joined_0": "2027-01-01",
        "date_joined_1": "00:00:00",
        "organisation": str(user.organisation_id),
        "role": user.role,
        "language": user.language,
    }
    data.update(changes)
    return data


def test_editing_a_user_without_a_fresh_step_up_changes_nothing(clock, world, superuser):
    agent = world.user("agent_a")
    client = sign_in(english(), superuser)
    before = AuditEvent.objects.count()
    page = client.get(change_url(agent))
    assert (page.status_code, page["Location"]) == (
        302,
        f"/accounts/verify/?next={quote(change_url(agent), safe='')}",
    )
    response = client.post(change_url(agent), user_form(agent, is_staff="on", is_superuser="on"))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/verify/")
    agent.refresh_from_db()
    assert (agent.is_staff, agent.is_superuser) == (False, False)
    assert AuditEvent.objects.count() == before
    for url in (
        f"/admin/iam/user/{agent.pk}/password/",
        f"/admin/iam/user/{agent.pk}/delete/",
        "/admin/iam/user/add/",
        "/admin/auth/group/add/",
        f"/admin/otp_totp/totpdevice/{TOTPDevice.objects.get(user=agent).pk}/change/",
        "/admin/password_change/",
    ):
        assert client.get(url)["Location"].startswith("/accounts/verify/"), url


def test_a_step_up_lets_the_admin_change_a_role_and_the_change_is_audited(clock, world, superuser):
    agent = world.user("reviewer")
    client = sign_in(english(), superuser)
    verify = client.get(f"/accounts/verify/?next={quote(change_url(agent), safe='')}")
    assert 'name="totp"' in verify.content.decode()
    wrong = client.post("/accounts/verify/", {"totp": "000000", "next": change_url(agent)})
    assert "The verification code is wrong, expired or already used." in text_of(wrong)
    response = client.post("/accounts/verify/", {"totp": code_at(T0), "next": change_url(agent)})
    assert response["Location"] == change_url(agent)
    assert client.get(change_url(agent)).status_code == 200
    response = client.post(change_url(agent), user_form(agent, role=Role.WAREHOUSE))
    assert response.status_code == 302, text_of(response)[:2000]
    agent.refresh_from_db()
    assert agent.role == Role.WAREHOUSE
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.event_type, event.subject_id, event.actor_id) == (
        EventType.ROLE_CHANGED,
        str(agent.pk),
        superuser.pk,
    )
    assert (event.before, event.after) == ({"role": "reviewer"}, {"role": "warehouse"})


def test_the_verify_page_follows_a_safe_next_only(clock, world, superuser):
    client = sign_in(english(), superuser)
    response = client.post("/accounts/verify/", {"totp": code_at(T0), "next": "https://evil.example/"})
    assert response["Location"] == "/console/"


def test_a_wrong_old_password_in_the_admin_counts_as_a_login_failure(clock, world, superuser):
    client = sign_in(english(), superuser, stepped_up=True)
    form = {
        "old_password": "wrong-password",
        "new_password1": "a-new-pass-2027",
        "new_password2": "a-new-pass-2027",
    }
    for _ in range(10):
        response = client.post("/admin/password_change/", form)
        assert response.status_code == 200
    assert kinds()[-10:] == [EventType.LOGIN_FAILED] * 9 + [EventType.LOGIN_LOCKED]
    right = client.post("/admin/password_change/", {**form, "old_password": PASSWORD})
    assert right.status_code == 200  # locked: even the right old password is refused now
    superuser.refresh_from_db()
    assert superuser.check_password(PASSWORD)


def test_totp_secrets_are_not_shown_in_the_admin(clock, world, superuser):
    client = sign_in(english(), superuser, stepped_up=True)
    device = TOTPDevice.objects.get(user=world.user("agent_a"))
    html = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    assert device.key not in html
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/").status_code in {403, 404}
