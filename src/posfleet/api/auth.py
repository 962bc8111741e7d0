"""Who is calling: a bearer API token or a console session (with CSRF). Both give an ``Actor``.

- ``Authorization: Bearer pf_...``: the token's user, limited to the token's scope. A header that is
  present but wrong answers 401 at once (it never falls back to a session cookie).
- The console session: the signed-in user; unsafe methods must carry the CSRF token.
- A read-only token may not use an unsafe method at all (403 before anything runs, so no TOTP code
  is spent and no idempotency key is claimed).

Step-up is per request over the API: the ``X-Step-Up-TOTP`` header, verified by ``step_up``.
"""

from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest
from django.utils import translation
from ninja import Header
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from posfleet.api.problems import CsrfFailed, NotAuthenticated, TokenReadOnly
from posfleet.iam.models import User
from posfleet.iam.services import token_authenticate
from posfleet.iam.stepup import verify_step_up
from posfleet.iam.web import actor_from_token
from posfleet.platform.context import Actor
from posfleet.platform.middleware import client_ip

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STEP_UP_HEADER = "X-Step-Up-TOTP"
IDEMPOTENCY_HEADER = "Idempotency-Key"

# Header parameters of write operations (declared per operation, so they show in the OpenAPI schema).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        description="Send the same key to retry safely: the first result is replayed, byte for byte.",
    ),
]
StepUpCode = Annotated[
    str | None,
    Header(
        alias=STEP_UP_HEADER,
        description="A fresh TOTP (or backup) code, for destructive operations (deactivate, deregister, "
        "scrap, report_lost, token creation).",
    ),
]


def _activate_language(language: str) -> None:
    from django.conf import settings

    if language in {code for code, _name in settings.LANGUAGES}:
        translation.activate(language)


class TokenAuth(HttpBearer):
    """``Authorization: Bearer pf_...`` (iam.services.token_authenticate)."""

    def authenticate(self, request: HttpRequest, token: str) -> Actor:
        api_token = token_authenticate(token.strip())
        if api_token is None:
            raise NotAuthenticated()
        _activate_language(api_token.user.language)  # answers (and refusals) in the token user's language
        actor = actor_from_token(request, api_token)
        if actor.read_only and request.method not in SAFE_METHODS:
            raise TokenReadOnly()
        return actor


class SessionAuth(APIKeyCookie):
    """The console's session cookie. CSRF is enforced for unsafe methods (cookies ride along)."""

    def __init__(self) -> None:
        from django.conf import settings

        self.param_name = settings.SESSION_COOKIE_NAME
        super().__init__(csrf=True)

    def __call__(self, request: HttpRequest) -> Actor | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None  # anonymous: 401, not a CSRF complaint
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise CsrfFailed()
        return self.authenticate(request, None)

    def authenticate(self, request: HttpRequest, key: str | None) -> Actor:
        # The API asks for the TOTP per request (X-Step-Up-TOTP); the console's step-up window in
        # the session does not carry over, so a destructive call always shows its own proof.
        user = request.user
        assert isinstance(user, User)
        return Actor.for_user(
            user, request_id=getattr(request, "request_id", ""), source_ip=client_ip(request)
        )


def actor(request: HttpRequest) -> Actor:
    """The authenticated actor of this request (set by ninja from TokenAuth or SessionAuth)."""
    auth: Any = getattr(request, "auth", None)
    if not isinstance(auth, Actor):
        raise NotAuthenticated()
    return auth


def with_step_up(who: Actor, code: str | None) -> Actor:
    """Verify the ``X-Step-Up-TOTP`` code once and return the actor stepped up at that moment.

    Without a code the actor is returned as is, and the service refuses with ``step_up_required``
    after its own checks (404 before 403 before 409...). A wrong or reused code raises
    ``step_up_failed``; after 10 wrong codes ``step_up_locked``.
    """
    if not code:
        return who
    return who.with_step_up(verify_step_up(who, code))


AUTH = [TokenAuth(), SessionAuth()]
