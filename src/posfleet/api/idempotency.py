"""Idempotent POSTs (docs/adr/0003-api-errors-and-idempotency.md).

``execute(request, who, work, key=..., step_up_code=..., step_up_needed=...)`` runs one write:

1. With an ``Idempotency-Key``, claim it for the principal (user) by INSERTing an ``in_progress``
   row in its own committed transaction. The unique (user, key) constraint decides between racing
   duplicates on both databases. A key already there answers without running anything:
   a different request (method, path, body) → 422 ``idempotency_key_reused``; a completed one →
   its stored status and body, byte for byte; one still running → 409 ``idempotency_in_progress``,
   unless its claim is older than the lease (then its effect cannot have committed: see 3) and it
   is taken over.
2. Verify the step-up code, when the operation needs one (its own committed transaction: a wrong
   code is counted, a used code spent). Step-up and authentication refusals are not results of the
   operation: the claim is released and the same key may be retried with a fresh code.
3. In ONE transaction: re-assert the claim, run the service (its atomic block nests inside), store
   the response. A crash anywhere leaves either nothing or the effect with its stored response.
   Domain refusals (404/403/409/422) are stored and replayed too.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from posfleet.api.auth import with_step_up
from posfleet.api.models import IdempotencyRecord
from posfleet.api.problems import (
    JSON_CONTENT_TYPE,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    problem_response,
    render_json,
)
from posfleet.platform.clock import now
from posfleet.platform.compression import keep_uncompressed
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    DomainError,
    StepUpFailed,
    StepUpLocked,
    StepUpRequired,
    ValidationFailed,
)

logger = logging.getLogger("posfleet.api")

REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, no spaces
# Refusals about the caller's credentials, not about the operation: never stored.
_NOT_STORED: tuple[type[DomainError], ...] = (StepUpRequired, StepUpFailed, StepUpLocked)


@dataclass(frozen=True)
class Outcome:
    """What an endpoint answers. ``stored`` replaces ``body`` in the idempotency record when the
    body holds a one-time secret (an API token): the secret is never written to the database."""

    status: int
    body: Any
    stored: Any = None


class _LostClaim(Exception):
    """Our claim was taken over (after the lease) while we ran: our effect must not commit."""


def _render(outcome: Outcome) -> HttpResponse:
    response = HttpResponse(render_json(outcome.body), status=outcome.status, content_type=JSON_CONTENT_TYPE)
    if outcome.stored is not None:
        keep_uncompressed(response)  # it shows a secret once (docs/adr/0032)
    return response


def fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method or "", request.path):
        digest.update(part.encode())
        digest.update(b"\n")
    digest.update(request.body)
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        bytes(record.body or b""), status=record.status_code or 200, content_type=record.content_type
    )
    response[REPLAYED_HEADER] = "true"
    return response


def _claim(request: HttpRequest, user_id: int, key: str) -> IdempotencyRecord | HttpResponse:
    """Our fresh claim on ``key``, or the answer to give instead of running."""
    digest = fingerprint(request)
    lease = settings.POSFLEET["IDEMPOTENCY_LEASE"]
    retention = settings.POSFLEET["IDEMPOTENCY_RETENTION"]
    for _attempt in range(3):
        at = now()
        token = uuid.uuid4().hex
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    user_id=user_id,
                    key=key,
                    method=request.method or "",
                    path=request.path[:255],
                    fingerprint=digest,
                    claim_token=token,
                    claimed_at=at,
                    created_at=at,
                )
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
        if existing is None:
            continue  # released or purged in between: try to claim again
        if existing.created_at < at - retention:
            # Past retention the key is forgotten; whoever deletes the old row claims it afresh.
            IdempotencyRecord.objects.filter(pk=existing.pk, claim_token=existing.claim_token).delete()
            continue
        if existing.fingerprint != digest:
            return problem_response(request, IdempotencyKeyReused())
        if existing.state == IdempotencyRecord.State.COMPLETED:
            return _replay(existing)
        if existing.claimed_at > at - lease:
            return problem_response(request, IdempotencyInProgress())
        # A claim older than the lease: its transaction (effect + response) never committed.
        taken = IdempotencyRecord.objects.filter(
            pk=existing.pk, state=IdempotencyRecord.State.IN_PROGRESS, claim_token=existing.claim_token
        ).update(claim_token=token, claimed_at=at)
        if taken:
            existing.claim_token, existing.claimed_at = token, at
            return existing
    return problem_response(request, IdempotencyInProgress())


def _ours(record: IdempotencyRecord) -> Any:
    return IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyRecord.State.IN_PROGRESS, claim_token=record.claim_token
    )


def _release(record: IdempotencyRecord) -> None:
    with transaction.atomic():
        _ours(record).delete()


def _run(who: Actor, work: Callable[[Actor], Outcome]) -> tuple[Outcome | None, DomainError | None]:
    """Run ``work`` in a savepoint; a domain refusal rolls back all it did and becomes the answer."""
    try:
        with transaction.atomic():
            return work(who), None
    except DomainError as exc:
        return None, exc


def execute(
    request: HttpRequest,
    who: Actor,
    work: Callable[[Actor], Outcome],
    *,
    key: str | None,
    step_up_needed: bool = False,
    step_up_code: str | None = None,
) -> HttpResponse:
    """Run one write endpoint: claim the key, verify step-up, run ``work`` and store its answer."""
    if key is not None and not _KEY.match(key):
        return problem_response(
            request,
            ValidationFailed(
                _("An Idempotency-Key is 1 to 255 visible ASCII characters."), field="Idempotency-Key"
            ),
        )
    record: IdempotencyRecord | None = None
    if key is not None:
        if who.user is None:  # every API actor has a user; the principal of a key is that user
            raise ValidationFailed(_("Idempotency keys need a user."), field="Idempotency-Key")
        claimed = _claim(request, who.user.pk, key)
        if isinstance(claimed, HttpResponse):
            return claimed
        record = claimed
    try:
        if step_up_needed:
            who = with_step_up(who, step_up_code)
    except DomainError as exc:
        if record is not None:
            _release(record)
        return problem_response(request, exc)

    if record is None:
        outcome, refusal = _run(who, work)
        if refusal is not None:
            return problem_response(request, refusal)
        assert outcome is not None
        return _render(outcome)

    try:
        with transaction.atomic():
            if not _ours(record).update(claimed_at=record.claimed_at):  # locks our row (PostgreSQL)
                raise _LostClaim()
            outcome, refusal = _run(who, work)
            if isinstance(refusal, _NOT_STORED):
                raise refusal  # roll back, release below, answer without storing
            if refusal is not None:
                response = problem_response(request, refusal)
                stored = response.content
            else:
                assert outcome is not None
                response = _render(outcome)
                stored = response.content if outcome.stored is None else render_json(outcome.stored)
            done = _ours(record).update(
                state=IdempotencyRecord.State.COMPLETED,
                completed_at=now(),
                status_code=response.status_code,
                content_type=response["Content-Type"],
                body=stored,
            )
            if not done:
                raise _LostClaim()
    except _LostClaim:
        return problem_response(request, IdempotencyInProgress())
    except _NOT_STORED as exc:
        _release(record)
        return problem_response(request, exc)
    except BaseException:
        _release_quietly(record)
        raise
    return response


def _release_quietly(record: IdempotencyRecord) -> None:
    try:
        _release(record)
    except (OperationalError, IntegrityError):  # the lease will free it
        logger.warning("could not release idempotency claim %s", record.pk)


def purge_expired() -> int:
    """Delete completed records past retention (and stale claims); returns how many."""
    cutoff = now() - settings.POSFLEET["IDEMPOTENCY_RETENTION"]
    deleted, _per_model = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
