"""Building the acting ``Actor`` from an HTTP request, and what a console session holds: who signed
in, whether they gave their second factor, and the step-up moment.

A session is signed in only by ``sign_in``, after the password (``services.login_check``) and, for
whoever must give one, the second factor (docs/adr/0020); until then the password step waits in the
session as a ``PendingLogin``. The console keeps the moment of the last successful step-up in the
session (the session id is rotated at that moment); the API verifies an ``X-Step-Up-TOTP`` header per
request instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import django_otp
from django import forms
from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from django.utils.dateparse import parse_datetime
from django_otp.models import Device

from posfleet.iam.models import ApiToken, User
from posfleet.iam.stepup import verify_step_up
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import StepUpFailed, StepUpLocked, StepUpRequired
from posfleet.platform.middleware import client_ip

SESSION_KEY = "posfleet_stepped_up_at"


def session_stepped_up_at(request: HttpRequest) -> datetime | None:
    raw = request.session.get(SESSION_KEY)
    at = parse_datetime(raw) if isinstance(raw, str) else None
    if at is None or now() - at > settings.POSFLEET["STEP_UP_WINDOW"]:
        return None
    return at


def actor_from_request(request: HttpRequest) -> Actor:
    """The signed-in console user, with the step-up moment if still fresh."""
    user = request.user
    assert isinstance(user, User), "actor_from_request needs a signed-in user"
    return Actor.for_user(
        user,
        request_id=getattr(request, "request_id", ""),
        source_ip=client_ip(request),
        stepped_up_at=session_stepped_up_at(request) if hasattr(request, "session") else None,
    )


def mark_verified(request: HttpRequest, device: Device) -> None:
    """The one mark of a session whose user gave their second factor: django-otp's, which
    ``OTPMiddleware`` reads back as ``request.user.is_verified()`` on every later request."""
    django_otp.login(request, device)


def remember_step_up(request: HttpRequest, at: datetime) -> None:
    request.session[SESSION_KEY] = at.isoformat()


def sign_in(
    request: HttpRequest, user: User, *, device: Device | None, stepped_up_at: datetime | None
) -> None:
    """The last step of every login: the user in the session (its id rotated), the second factor's
    mark when one was given, and the step-up moment when it was a step-up (a code at login counts as
    one; a first set-up does not). Nothing else makes a session."""
    auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")  # rotates the id
    if device is not None:
        mark_verified(request, device)
    if stepped_up_at is not None:
        remember_step_up(request, stepped_up_at)


# A password step waits this long for its code (or its first authenticator set-up).
PENDING_LOGIN_TTL = timedelta(minutes=10)
PENDING_KEY = "posfleet_login_pending"


@dataclass(frozen=True)
class PendingLogin:
    """Someone who gave the right password and still owes the second factor: not signed in."""

    user: User
    next_url: str


def pending_login_start(request: HttpRequest, user: User, next_url: str) -> None:
    """Remember ``user`` between the password and the code, in a session that is not signed in.
    Whoever was signed in in this browser is signed out first; the session id rotates."""
    if request.user.is_authenticated:
        auth_logout(request)
    else:
        request.session.cycle_key()
    request.session[PENDING_KEY] = {
        "user": user.pk,
        "at": now().isoformat(),
        "next": next_url,
        "hash": user.get_session_auth_hash(),  # a password changed meanwhile ends the pending login
    }


def pending_login(request: HttpRequest) -> PendingLogin | None:
    raw = request.session.get(PENDING_KEY)
    if not isinstance(raw, dict):
        return None
    at = parse_datetime(str(raw.get("at", "")))
    if at is None or not timedelta(0) <= now() - at <= PENDING_LOGIN_TTL:
        request.session.pop(PENDING_KEY, None)
        return None
    user_id = raw.get("user")
    user = (
        User.objects.filter(pk=user_id, is_active=True).select_related("organisation").first()
        if isinstance(user_id, int)
        else None
    )
    if user is None or not constant_time_compare(str(raw.get("hash", "")), user.get_session_auth_hash()):
        request.session.pop(PENDING_KEY, None)
        return None
    return PendingLogin(user=user, next_url=str(raw.get("next") or settings.LOGIN_REDIRECT_URL))


def pending_login_end(request: HttpRequest) -> None:
    request.session.pop(PENDING_KEY, None)


def step_up_in_session(request: HttpRequest, code: str) -> Actor:
    """Verify ``code`` (or raise StepUpFailed/Locked/Required), remember it, rotate the session id."""
    actor = actor_from_request(request)
    at = verify_step_up(actor, code)
    request.session.cycle_key()
    remember_step_up(request, at)
    return actor.with_step_up(at)


def actor_from_form(request: HttpRequest, form: forms.Form, field: str = "totp") -> Actor | None:
    """The acting user for a validated console form; when the form carries a step-up code in ``field``,
    verified with it first. A wrong, reused or locked code becomes an error on that field and the
    answer is None: the caller then does nothing but show the form again."""
    code = form.cleaned_data.get(field, "") if field in form.fields else ""
    if not code:
        return actor_from_request(request)
    try:
        return step_up_in_session(request, code)
    except (StepUpFailed, StepUpLocked, StepUpRequired) as exc:
        form.add_error(field, str(exc.detail))
        return None


def step_up_remaining_seconds(request: HttpRequest) -> int:
    at = session_stepped_up_at(request)
    if at is None:
        return 0
    return max(0, int((settings.POSFLEET["STEP_UP_WINDOW"] - (now() - at)).total_seconds()))


def actor_from_token(request: HttpRequest, token: ApiToken) -> Actor:
    """An API client acting with ``token`` (as its user, limited to the token's scope)."""
    return Actor(
        kind="token",
        user=token.user,
        token_id=token.pk,
        label=f"{token.user.get_username()} via token {token.prefix}…",
        request_id=getattr(request, "request_id", ""),
        source_ip=client_ip(request),
        read_only=token.scope == ApiToken.Scope.READ,
    )
