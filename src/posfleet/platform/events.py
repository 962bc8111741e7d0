"""Domain events and the outbox writer.

Events are small frozen dataclasses named in the past tense (``TerminalDeactivated``). ``publish`` must
be called inside the transaction of the change; the explicit registry lists every event type so the
notification and webhook contexts can subscribe by name.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from django.db import connection, transaction

from posfleet.platform.clock import now

REGISTRY: dict[str, type[DomainEvent]] = {}


@dataclasses.dataclass(frozen=True, kw_only=True)
class DomainEvent:
    name: ClassVar[str] = ""
    aggregate_type: ClassVar[str] = ""

    aggregate_id: str
    organisation_ids: tuple[int, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
                raise RuntimeError(f"duplicate event name {cls.name}")
            REGISTRY[cls.name] = cls

    def payload(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("organisation_ids", None)
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


def publish(events: Iterable[DomainEvent], *, occurred_at: datetime | None = None) -> None:
    from posfleet.platform.models import OutboxMessage

    if not connection.in_atomic_block:
        raise RuntimeError("publish() must run inside the transaction of the change")
    at = occurred_at or now()
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                event_id=uuid.uuid4(),
                event_type=e.name,
                aggregate_type=e.aggregate_type,
                aggregate_id=e.aggregate_id,
                organisation_ids=sorted(set(e.organisation_ids)),
                payload=e.payload(),
                occurred_at=at,
            )
            for e in events
        ]
    )
    # After commit, ask for a dispatch (once per transaction); the scheduler's sweep is the safety net.
    if not any(entry[1] is request_dispatch for entry in connection.run_on_commit):
        transaction.on_commit(request_dispatch, robust=True)


def request_dispatch() -> None:
    """Enqueue one run of the outbox dispatcher (a task: the worker runs it)."""
    from posfleet.platform.tasks import dispatch_outbox_task

    dispatch_outbox_task.enqueue()


def on_commit(func: Any) -> None:
    """Run ``func`` after the current transaction commits (effects after commit)."""
    transaction.on_commit(func)
