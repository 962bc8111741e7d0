"""Building the acting ``Actor`` from an HTTP request, and the console's step-up session state.

The console keeps the moment of the last successful step-up in the session (the session id is
rotated at that moment); the API verifies an ``X-Step-Up-TOTP`` header per request instead.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.conf import settings
from django.http import HttpRequest
from django.utils.dateparse import parse_datetime

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


def step_up_in_session(request: HttpRequest, code: str) -> Actor:
    """Verify ``code`` (or raise StepUpFailed/Locked/Required), remember it, rotate the session id."""
    actor = actor_from_request(request)
    at = verify_step_up(actor, code)
    request.session.cycle_key()
    request.session[SESSION_KEY] = at.isoformat()
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
