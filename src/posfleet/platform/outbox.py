"""The outbox dispatcher: hands every committed domain event to the contexts that react to it.

``publish`` (platform/events.py) writes events in the transaction of the change; after commit it asks
for a dispatch (a task). ``dispatch_outbox`` then takes the pending messages in id order and, per
message, in one database transaction: runs every registered handler (the notifications context turns
the event into deliveries) and marks the message ``sent``. A handler that raises rolls back its own
work for that message only; the message is retried later with exponential backoff and, after
``OUTBOX_MAX_ATTEMPTS``, becomes ``dead`` (shown in the console, resent by hand). Handlers must be
idempotent: a message is handed over at least once.

Several dispatchers may run at once (several workers, the scheduler's safety net): on PostgreSQL a
message is claimed with ``FOR UPDATE SKIP LOCKED``; SQLite's IMMEDIATE transactions serialise them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from posfleet.platform.clock import now
from posfleet.platform.models import OutboxMessage

log = logging.getLogger(__name__)

Handler = Callable[[OutboxMessage], None]
HANDLERS: dict[str, Handler] = {}

PENDING, SENT, FAILED, DEAD = (
    OutboxMessage.Status.PENDING,
    OutboxMessage.Status.SENT,
    OutboxMessage.Status.FAILED,
    OutboxMessage.Status.DEAD,
)


def register_handler(name: str, handler: Handler) -> None:
    """Register ``handler`` (called with each message, inside its transaction) under a unique name."""
    HANDLERS[name] = handler


def backoff(attempts: int, *, base: timedelta | None = None, cap: timedelta | None = None) -> timedelta:
    """Wait before attempt ``attempts + 1``: base × 2^(attempts − 1), at most ``cap`` (30 s, 1 min …)."""
    policy = settings.POSFLEET_NOTIFY
    base = base or policy["BACKOFF_BASE"]
    cap = cap or policy["BACKOFF_MAX"]
    return min(base * (2 ** max(0, attempts - 1)), cap)


@dataclass
class DispatchResult:
    sent: int = 0
    failed: int = 0
    dead: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.dead


def due() -> Q:
    return Q(status__in=[PENDING, FAILED]) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now()))


def dispatch_outbox(*, limit: int = 1000) -> DispatchResult:
    """Hand up to ``limit`` due messages to the handlers; returns how many went which way."""
    result = DispatchResult()
    ids = list(OutboxMessage.objects.filter(due()).order_by("id").values_list("id", flat=True)[:limit])
    for pk in ids:
        outcome = _dispatch_one(pk)
        if outcome == SENT:
            result.sent += 1
        elif outcome == FAILED:
            result.failed += 1
        elif outcome == DEAD:
            result.dead += 1
    return result


def _dispatch_one(pk: int) -> str | None:
    with transaction.atomic():
        qs = OutboxMessage.objects.filter(due(), pk=pk)
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        message = qs.first()
        if message is None:  # taken by another dispatcher, or no longer due
            return None
        try:
            with transaction.atomic():
                for handler in HANDLERS.values():
                    handler(message)
        except Exception as exc:
            attempts = message.attempts + 1
            dead = attempts >= settings.POSFLEET_NOTIFY["OUTBOX_MAX_ATTEMPTS"]
            OutboxMessage.objects.filter(pk=pk).update(
                attempts=attempts,
                status=DEAD if dead else FAILED,
                next_attempt_at=None if dead else now() + backoff(attempts),
            )
            log.warning(
                "outbox message %s (%s) failed in a handler: %s", pk, message.event_type, type(exc).__name__
            )
            return DEAD if dead else FAILED
        OutboxMessage.objects.filter(pk=pk).update(
            status=SENT, attempts=message.attempts + 1, next_attempt_at=None
        )
        return SENT


def resend(pk: int) -> bool:
    """Make a failed or dead message due again now (console: resend). False when it was not."""
    return bool(
        OutboxMessage.objects.filter(pk=pk, status__in=[FAILED, DEAD]).update(
            status=PENDING, attempts=0, next_attempt_at=None
        )
    )
