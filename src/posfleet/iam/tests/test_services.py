"""Logins with lockout (no user enumeration), users, TOTP enrolment and API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django_otp.plugins.otp_totp.models import TOTPDevice

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.iam.models import ApiToken, Role, User, hash_token
from posfleet.iam.services import (
    LoginRefused,
    login_check,
    token_authenticate,
    token_create,
    token_revoke,
    totp_confirm_enrolment,
    totp_start_enrolment,
    user_create,
)
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import NotFound, PermissionDenied, StepUpRequired, ValidationFailed
from posfleet.testing.personas import PASSWORD
from posfleet.testing.totp import code_at

T0 = 1_800_000_000


def test_a_good_login_is_audited(world):
    user = login_check(username="admin", password=PASSWORD, source_ip="10.0.0.1")
    assert user == world.user("admin")
    last = AuditEvent.objects.order_by("-seq").first()
    assert (last.event_type, last.source_ip, last.actor_id) == (
        EventType.LOGIN_PASSWORD_ACCEPTED,  # staff: the code comes next (test_login_second_factor.py)
        "10.0.0.1",
        user.pk,
    )
    TOTPDevice.objects.filter(user=world.user("merchant_b")).delete()
    merchant = login_check(username="merchant_b", password=PASSWORD, source_ip="10.0.0.2")
    last = AuditEvent.objects.order_by("-seq").first()
    assert (last.event_type, last.source_ip, last.actor_id) == (
        EventType.LOGIN_SUCCEEDED,
        "10.0.0.2",
        merchant.pk,
    )


@pytest.mark.parametrize("username", ["admin", "no-such-user"])
def test_ten_failures_lock_the_name_for_thirty_minutes(world, username):
    with time_machine.travel(T0, tick=False):
        for _ in range(10):
            with pytest.raises(LoginRefused):
                login_check(username=username, password="wrong-password")
        with pytest.raises(LoginRefused):  # the right password is refused while locked
            login_check(username=username, password=PASSWORD)
    kinds = list(AuditEvent.objects.filter(subject_type="login").values_list("event_type", flat=True))
    assert kinds == [EventType.LOGIN_FAILED] * 9 + [EventType.LOGIN_LOCKED] * 2
    with time_machine.travel(T0 + 29 * 60, tick=False), pytest.raises(LoginRefused):
        login_check(username=username, password=PASSWORD)
    if username == "admin":
        with time_machine.travel(T0 + 31 * 60, tick=False):
            assert login_check(username=username, password=PASSWORD) == world.user("admin")


def test_lockout_of_one_name_does_not_lock_another(world):
    for _ in range(10):
        with pytest.raises(LoginRefused):
            login_check(username="admin", password="wrong")
    assert login_check(username="reviewer", password=PASSWORD) == world.user("reviewer")


def test_inactive_user_cannot_log_in(world):
    User.objects.filter(username="agent_b").update(is_active=False)
    with pytest.raises(LoginRefused):
        login_check(username="agent_b", password=PASSWORD)


def test_user_create_checks_role_against_organisation(world):
    admin = Actor.for_user(world.user("admin"))
    with pytest.raises(ValidationFailed):
        user_create(
            actor=admin,
            username="x",
            password=PASSWORD,
            organisation=world.agent_a.organisation,
            role=Role.ADMIN,
        )
    with pytest.raises(PermissionDenied):
        user_create(
            actor=Actor.for_user(world.user("agent_a")),
            username="y",
            password=PASSWORD,
            organisation=world.agent_a.organisation,
            role=Role.AGENT,
        )
    assert not User.objects.filter(username__in=["x", "y"]).exists()
    user = user_create(
        actor=admin,
        username="agent_a_2",
        password=PASSWORD,
        organisation=world.agent_a.organisation,
        role=Role.AGENT,
    )
    assert user.language == "zh-hans"
    assert AuditEvent.objects.order_by("-seq").first().event_type == EventType.USER_CREATED


def test_totp_enrolment_confirms_with_a_code_and_issues_backup_codes(world):
    user = world.user("reviewer")
    actor = Actor.for_user(user)
    device = totp_start_enrolment(actor=actor.with_step_up(now()))  # replaces the persona's device
    with pytest.raises(ValidationFailed):
        totp_confirm_enrolment(actor=actor, device=device, code="000000")
    from django_otp.oath import TOTP

    with time_machine.travel(T0, tick=False):
        totp = TOTP(device.bin_key)
        totp.time = T0
        codes = totp_confirm_enrolment(actor=actor, device=device, code=f"{totp.token():06d}")
    assert len(codes) == 10
    assert list(TOTPDevice.objects.filter(user=user, confirmed=True)) == [device]
    kinds = list(AuditEvent.objects.order_by("-seq").values_list("event_type", flat=True)[:2])
    assert kinds == [EventType.MFA_BACKUP_CODES_ISSUED, EventType.MFA_ENROLLED]


def test_token_needs_step_up_and_is_stored_hashed(world):
    actor = Actor.for_user(world.user("agent_a"))
    with pytest.raises(StepUpRequired):
        token_create(actor=actor, name="erp")
    assert ApiToken.objects.count() == 0
    token, secret = token_create(actor=actor.with_step_up(now()), name="erp", scope="write")
    assert secret.startswith("pf_")
    assert token.digest == hash_token(secret)
    assert secret not in str(ApiToken.objects.values().get(pk=token.pk))
    assert token_authenticate(secret) == token
    assert token_authenticate(secret + "x") is None


def test_revoked_and_expired_tokens_do_not_authenticate(world):
    actor = Actor.for_user(world.user("agent_a")).with_step_up(now())
    token, secret = token_create(actor=actor, name="a")
    with pytest.raises(NotFound):  # someone else's token
        token_revoke(actor=Actor.for_user(world.user("agent_b")), token_id=token.pk)
    assert token_authenticate(secret) == token
    token_revoke(actor=actor, token_id=token.pk)
    assert token_authenticate(secret) is None
    _expiring, secret2 = token_create(actor=actor, name="b", expires_at=now() + timedelta(hours=1))
    with time_machine.travel(now() + timedelta(hours=2)):
        assert token_authenticate(secret2) is None


def test_token_input_is_validated(world):
    actor = Actor.for_user(world.user("agent_a")).with_step_up(now())
    for kwargs in [
        {"name": ""},
        {"name": "x" * 101},
        {"name": "ok", "scope": "root"},
        {"name": "ok", "expires_at": now() - timedelta(seconds=1)},
    ]:
        with pytest.raises(ValidationFailed):
            token_create(actor=actor, **kwargs)
    assert ApiToken.objects.count() == 0


def test_demo_secret_codes_match_an_authenticator(world):
    # JBSWY3DPEHPK3PXP at T0 gives the same code any RFC 6238 app shows (computed independently below).
    import base64
    import hashlib
    import hmac
    import struct

    counter = struct.pack(">Q", T0 // 30)
    digest = hmac.new(base64.b32decode("JBSWY3DPEHPK3PXP"), counter, hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    expected = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    assert code_at(T0) == f"{expected:06d}"


def test_replacing_an_enrolled_authenticator_needs_step_up(world):
    user = world.user("admin")  # enrolled by the personas
    with pytest.raises(StepUpRequired):
        totp_start_enrolment(actor=Actor.for_user(user))
    assert not TOTPDevice.objects.filter(user=user, confirmed=False).exists()
    device = totp_start_enrolment(actor=Actor.for_user(user).with_step_up(now()))
    assert not device.confirmed


def test_logout_and_language(world):
    from posfleet.iam.services import logout_record, user_set_language

    user = world.user("agent_a")
    user_set_language(user=user, language="zh-hans")
    assert User.objects.get(pk=user.pk).language == "zh-hans"
    with pytest.raises(ValidationFailed):
        user_set_language(user=user, language="klingon")
    logout_record(actor=Actor.for_user(user))
    assert AuditEvent.objects.order_by("-seq").first().event_type == EventType.LOGGED_OUT
