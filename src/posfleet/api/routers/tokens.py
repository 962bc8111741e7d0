"""/tokens: the caller's own API tokens. The secret is shown once, at creation (which needs step-up)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, StepUpCode, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.iam.selectors import tokens_of
from posfleet.iam.services import token_create, token_create_check, token_revoke
from posfleet.platform.context import Actor

router = Router(tags=["tokens"])


@router.get("/tokens", summary="List my API tokens", response=s.responses({200: s.TokenPage}, s.READ_LIST))
def tokens_list(request: HttpRequest, page: Query[PageQuery]) -> s.TokenPage:
    """The caller's own tokens, newest first (never their secrets)."""
    user = actor(request).user
    assert user is not None
    rows, cursor = keyset(tokens_of(user), list_name="tokens", key="id", page=page, descending=True)
    return s.TokenPage(items=[presenters.token(t) for t in rows], next_cursor=cursor)


@router.post(
    "/tokens",
    summary="Create an API token",
    response=s.responses({201: s.TokenCreatedOut}, (400, 401, 403, 409, 422)),
)
def tokens_create(
    request: HttpRequest, body: s.TokenIn, idempotency_key: IdempotencyKey = None, step_up: StepUpCode = None
) -> HttpResponse:
    """Create a token for the signed-in user (session only; needs X-Step-Up-TOTP). The secret is in
    this answer only; a replay with the same Idempotency-Key answers `secret: null`."""
    who = actor(request)
    # Session only: a token is refused before the key is claimed or the code read (neither spent nor
    # counted), not after the step-up as a refusal of the service would be.
    token_create_check(actor=who)

    def work(who: Actor) -> Outcome:
        token, secret = token_create(actor=who, name=body.name, scope=body.scope, expires_at=body.expires_at)
        return Outcome(
            201,
            presenters.dump(presenters.token_created(token, secret)),
            stored=presenters.dump(presenters.token_created(token, None)),
        )

    return execute(request, who, work, key=idempotency_key, step_up_needed=True, step_up_code=step_up)


@router.delete(
    "/tokens/{token_id}",
    summary="Revoke an API token",
    response=s.responses({200: s.TokenOut}, (401, 403, 404, 422)),
)
def tokens_revoke(request: HttpRequest, token_id: int) -> s.TokenOut:
    """Revoke one of the caller's tokens; it stops working at once."""
    return presenters.token(token_revoke(actor=actor(request), token_id=token_id))
