"""Identity and access: users, logins with lockout, TOTP enrolment, API tokens.

Every change here is audited in its own transaction, like every other change in posfleet.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.iam.models import (
    ROLES_BY_ORG_KIND,
    ApiToken,
    LoginThrottle,
    Organisation,
    User,
    hash_token,
)
from posfleet.iam.stepup import has_totp, require_fresh_step_up, second_factor_required, verify_step_up
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import NotFound, PermissionDenied, ValidationFailed

TOKEN_PREFIX = "pf_"  # noqa: S105 (a prefix, not a secret)
BACKUP_CODE_COUNT = 10


# ---------------------------------------------------------------------------------------------
# Login with lockout


def _throttle_key(username: str) -> str:
    return hash_token("login:" + username.strip().lower())


class LoginRefused(Exception):
    """Wrong credentials or a locked account. One message for both (no user enumeration)."""


def _password_check(
    *,
    username: str,
    password: str,
    request_id: str,
    source_ip: str | None,
    request: HttpRequest | None,
    success: Callable[[User], EventType],
) -> User:
    """THE password check: every path that takes a password comes here. Failures are counted per
    username (known or not) and audited; ``success(user)`` names the audit row of a right password."""
    max_failures = settings.POSFLEET["LOGIN_MAX_FAILURES"]
    duration = settings.POSFLEET["LOCKOUT_DURATION"]
    key = _throttle_key(username)
    throttle = LoginThrottle.objects.filter(pk=key).first()
    anonymous = Actor(kind="user", label=username[:150], request_id=request_id, source_ip=source_ip)
    if throttle and throttle.locked_until and throttle.locked_until > now():
        # Check the password anyway so a locked account answers in the same time as a wrong password.
        authenticate(request, username=username, password=password)
        with transaction.atomic():
            record(
                anonymous,
                Entry(
                    event_type=EventType.LOGIN_LOCKED,
                    subject_type="login",
                    subject_id=username[:64],
                    outcome="refused",
                ),
            )
        raise LoginRefused()
    user = authenticate(request, username=username, password=password)
    with transaction.atomic():
        if user is None or not isinstance(user, User):
            throttle, _created = LoginThrottle.objects.select_for_update().get_or_create(pk=key)
            throttle.failures += 1
            throttle.last_failure_at = now()
            locked = throttle.failures >= max_failures
            if locked:
                throttle.locked_until = now() + duration
                throttle.failures = 0
            throttle.save()
            record(
                anonymous,
                Entry(
                    event_type=EventType.LOGIN_LOCKED if locked else EventType.LOGIN_FAILED,
                    subject_type="login",
                    subject_id=username[:64],
                    outcome="refused",
                ),
            )
        else:
            LoginThrottle.objects.filter(pk=key).delete()
            record(
                Actor.for_user(user, request_id=request_id, source_ip=source_ip),
                Entry(event_type=success(user), subject_type="user", subject_id=str(user.pk)),
            )
    if user is None or not isinstance(user, User):
        raise LoginRefused()
    return user


def _login_outcome(user: User) -> EventType:
    return EventType.LOGIN_PASSWORD_ACCEPTED if second_factor_required(user) else EventType.LOGIN_SUCCEEDED


def login_check(
    *,
    username: str,
    password: str,
    request_id: str = "",
    source_ip: str | None = None,
    request: HttpRequest | None = None,
) -> User:
    """The password step of a login. Raises ``LoginRefused``. A user who must give a second factor
    (``second_factor_required``) is not logged in yet: the row says so, and ``login_second_factor``
    (or a forced TOTP set-up, ``login_enrolled``) finishes the login."""
    return _password_check(
        username=username,
        password=password,
        request_id=request_id,
        source_ip=source_ip,
        request=request,
        success=_login_outcome,
    )


def password_recheck(
    *, user: User, password: str, request_id: str = "", source_ip: str | None = None
) -> None:
    """A signed-in user's password asked again (e.g. the old one when changing it): the same check,
    counted and audited like a login, so it cannot be used to guess the password either."""
    checked = _password_check(
        username=user.get_username(),
        password=password,
        request_id=request_id,
        source_ip=source_ip,
        request=None,
        success=lambda _user: EventType.LOGIN_PASSWORD_ACCEPTED,
    )
    if checked.pk != user.pk:
        raise LoginRefused()


def _login_succeeded(actor: Actor, user: User, second_factor: str) -> None:
    record(
        actor,
        Entry(
            event_type=EventType.LOGIN_SUCCEEDED,
            subject_type="user",
            subject_id=str(user.pk),
            after={"second_factor": second_factor},
        ),
    )


def login_second_factor(
    *, user: User, code: str, request_id: str = "", source_ip: str | None = None
) -> datetime:
    """The code step of a login: the step-up check itself (replay rejection, lockout after 10 wrong
    codes, its own audit rows), then the login's row. Returns the moment of verification, which the
    session keeps as a fresh step-up. Raises StepUpFailed, StepUpLocked or StepUpRequired."""
    actor = Actor.for_user(user, request_id=request_id, source_ip=source_ip)
    at = verify_step_up(actor, code)
    with transaction.atomic():
        _login_succeeded(actor, user, "code")
    return at


def login_enrolled(
    *, user: User, device: TOTPDevice, code: str, request_id: str = "", source_ip: str | None = None
) -> list[str]:
    """The forced set-up of a login (staff without an authenticator): confirm ``device`` with its
    first code, issue backup codes, and log in. Returns the backup codes. Raises ValidationFailed."""
    actor = Actor.for_user(user, request_id=request_id, source_ip=source_ip)
    if not second_factor_required(user) or has_totp(user):
        raise PermissionDenied()
    with transaction.atomic():
        codes = totp_confirm_enrolment(actor=actor, device=device, code=code)
        _login_succeeded(actor, user, "enrolled")
    return codes


# ---------------------------------------------------------------------------------------------
# Users


def user_create(
    *,
    actor: Actor,
    username: str,
    password: str,
    organisation: Organisation,
    role: str,
    email: str = "",
    language: str = "zh-hans",
) -> User:
    actor.require("iam.manage_users")
    if role not in ROLES_BY_ORG_KIND.get(organisation.kind, set()):
        raise ValidationFailed(
            _("Role %(role)s does not fit an organisation of kind %(kind)s.")
            % {"role": role, "kind": organisation.kind}
        )
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationFailed(_("This username is taken."))
    with transaction.atomic():
        user = User(username=username, email=email, organisation=organisation, role=role, language=language)
        user.set_password(password)
        user.save()
        record(
            actor,
            Entry(
                event_type=EventType.USER_CREATED,
                subject_type="user",
                subject_id=str(user.pk),
                after={"username": username, "role": role, "organisation": organisation.pk},
            ),
        )
    return user


# What an edit in /admin/ may change about a user's access, and how it appears in the audit row.
ACCESS_FIELDS = {
    "role": "role",
    "organisation": "organisation_id",
    "is_active": "is_active",
    "is_staff": "is_staff",
    "is_superuser": "is_superuser",
}


def user_access(user: User) -> dict[str, Any]:
    return {name: getattr(user, attribute) for name, attribute in ACCESS_FIELDS.items()}


def user_access_changed(*, actor: Actor, user: User, before: dict[str, Any] | None) -> None:
    """Record an edit of ``user`` made outside these services (the admin site saves the row itself,
    in the same transaction): it needs a fresh step-up, and what it changed in the user's access is
    audited (``before`` is ``user_access`` of the row as it was, None for a new user)."""
    require_fresh_step_up(actor)
    after = user_access(user)
    if before is None:
        entry = Entry(
            event_type=EventType.USER_CREATED, subject_type="user", subject_id=str(user.pk), after=after
        )
    else:
        changed = [name for name in after if after[name] != before.get(name)]
        if not changed:
            return
        entry = Entry(
            event_type=EventType.ROLE_CHANGED,
            subject_type="user",
            subject_id=str(user.pk),
            before={name: before.get(name) for name in changed},
            after={name: after[name] for name in changed},
        )
    record(actor, entry)


# ---------------------------------------------------------------------------------------------
# TOTP enrolment and backup codes


def totp_start_enrolment(*, actor: Actor) -> TOTPDevice:
    """An unconfirmed device whose key is shown as a QR code until the user proves a code.

    Replacing an authenticator that is already set up needs a fresh step-up with the old one (or a
    backup code): otherwise a stolen session could take over the second factor.
    """
    user = actor.require_session()
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        require_fresh_step_up(actor)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def totp_confirm_enrolment(*, actor: Actor, device: TOTPDevice, code: str) -> list[str]:
    """Confirm ``device`` with a first code; replaces older devices; returns fresh backup codes."""
    user = actor.user
    if user is None or device.user_id != user.pk or device.confirmed:
        raise NotFound()
    if not (code.strip().isdigit() and device.verify_token(code.strip())):
        raise ValidationFailed(_("That code does not match. Check the time on your phone and try again."))
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        record(actor, Entry(event_type=EventType.MFA_ENROLLED, subject_type="user", subject_id=str(user.pk)))
        codes = _issue_backup_codes(actor, user)
    return codes


def _issue_backup_codes(actor: Actor, user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    static = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(2)}" for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=static, token=c) for c in codes])
    record(
        actor,
        Entry(
            event_type=EventType.MFA_BACKUP_CODES_ISSUED,
            subject_type="user",
            subject_id=str(user.pk),
            after={"count": len(codes)},
        ),
    )
    return codes


def backup_codes_regenerate(*, actor: Actor) -> list[str]:
    require_fresh_step_up(actor)
    assert actor.user is not None
    with transaction.atomic():
        return _issue_backup_codes(actor, actor.user)


# ---------------------------------------------------------------------------------------------
# Preferences and session end


def user_set_language(*, user: User, language: str) -> None:
    """A display preference (not an access change, so not audited)."""
    if language not in dict(settings.LANGUAGES):
        raise ValidationFailed(_("Unknown language."))
    if user.language != language:
        User.objects.filter(pk=user.pk).update(language=language)
        user.language = language


def logout_record(*, actor: Actor) -> None:
    if actor.user is None:
        return
    with transaction.atomic():
        record(
            actor, Entry(event_type=EventType.LOGGED_OUT, subject_type="user", subject_id=str(actor.user.pk))
        )


# ---------------------------------------------------------------------------------------------
# API tokens


def token_create_check(*, actor: Actor) -> User:
    """Only a signed-in person (a console session) creates API tokens: never a token, a job or the
    shell. The API asks this before it looks at the step-up code, so that a refused call spends no
    code and counts no failure."""
    return actor.require_session(_("Only a signed-in person can create API tokens."))


def token_create(
    *, actor: Actor, name: str, scope: str = ApiToken.Scope.READ, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token for the acting user. Returns the row and the secret, which is never stored."""
    user = token_create_check(actor=actor)
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed(_("Give the token a name of 1 to 100 characters."))
    if scope not in ApiToken.Scope.values:
        raise ValidationFailed(_("Unknown scope."))
    if expires_at is not None and expires_at <= now():
        raise ValidationFailed(_("The expiry must be in the future."))
    require_fresh_step_up(actor)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=raw[:10], digest=hash_token(raw), scope=scope, expires_at=expires_at
        )
        record(
            actor,
            Entry(
                event_type=EventType.TOKEN_CREATED,
                subject_type="api_token",
                subject_id=str(token.pk),
                after={"name": name, "scope": scope},
            ),
        )
    return token, raw


def token_revoke(*, actor: Actor, token_id: int) -> ApiToken:
    if actor.read_only:
        raise PermissionDenied(_("This API token is read-only."))
    user = actor.user
    token = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).first() if user else None
    if token is None:
        raise NotFound()
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now())
        if updated:
            record(
                actor,
                Entry(event_type=EventType.TOKEN_REVOKED, subject_type="api_token", subject_id=str(token.pk)),
            )
    token.refresh_from_db()
    return token


def token_authenticate(raw: str) -> ApiToken | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    rows = (  # the digest is unique: no order to compile (``first()`` would add one)
        ApiToken.objects.select_related("user", "user__organisation")
        .filter(digest=hash_token(raw), revoked_at__isnull=True)
        .order_by()[:1]
    )
    token = next(iter(rows), None)
    if token is None or not token.user.is_active:
        return None
    at = now()
    if token.expires_at is not None and token.expires_at <= at:
        return None
    if token.last_used_at is None or (at - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=at)
    return token
