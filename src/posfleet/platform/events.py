"""Domain events and the outbox writer.

Events are small frozen dataclasses named in the past tense (``TerminalDeactivated``). ``publish`` must
be called inside the transaction of the change; the explicit registry lists every event type so the
notification and webhook contexts can subscribe by name.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

from django.db import connection, transaction

from posfleet.platform import wake
from posfleet.platform.bulk import insert_rows
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
        """The event's fields as JSON values (flat: events carry scalars, not nested objects)."""
        out: dict[str, Any] = {}
        for name in _payload_fields(type(self)):
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


_FIELDS: dict[str, tuple[str, ...]] = {}


def _payload_fields(cls: type[DomainEvent]) -> tuple[str, ...]:
    key = f"{cls.__module__}.{cls.__qualname__}"
    if key not in _FIELDS:
        _FIELDS[key] = tuple(f.name for f in dataclasses.fields(cls) if f.name != "organisation_ids")
    return _FIELDS[key]


def publish(events: Iterable[DomainEvent], *, occurred_at: datetime | None = None) -> None:
    """Write ``events`` to the outbox, in the caller's transaction."""
    _write(
        ((e.name, e.aggregate_type, e.aggregate_id, e.organisation_ids, e.payload()) for e in events),
        occurred_at,
    )


def publish_many(
    cls: type[DomainEvent],
    items: Iterable[tuple[str, Sequence[int], dict[str, Any]]],
    *,
    occurred_at: datetime | None = None,
) -> None:
    """``publish`` for sweeps that announce thousands of events of one type: (aggregate id,
    organisation ids, payload) triples, the payload's keys exactly the event's fields (checked), so
    no event object is built per row."""
    expected = set(_payload_fields(cls)) - {"aggregate_id"}
    name, aggregate_type = cls.name, cls.aggregate_type

    def rows() -> Iterator[tuple[str, str, str, Sequence[int], dict[str, Any]]]:
        for aggregate_id, organisation_ids, payload in items:
            if payload.keys() != expected:
                raise ValueError(f"{name}: payload fields {sorted(payload)} are not {sorted(expected)}")
            yield (
                name,
                aggregate_type,
                aggregate_id,
                organisation_ids,
                {"aggregate_id": aggregate_id, **payload},
            )

    _write(rows(), occurred_at)


def _write(
    events: Iterable[tuple[str, str, str, Sequence[int], dict[str, Any]]], occurred_at: datetime | None
) -> None:
    from posfleet.platform.models import OutboxMessage

    if not connection.in_atomic_block:
        raise RuntimeError("publish() must run inside the transaction of the change")
    at = occurred_at or now()
    rows = [
        (event_id, name, aggregate_type, aggregate_id, sorted(set(organisation_ids)), payload)
        for (name, aggregate_type, aggregate_id, organisation_ids, payload), event_id in zip(
            events, _event_ids(), strict=False
        )
    ]
    if not rows:
        return
    insert_rows(  # COPY / executemany: sweeps publish thousands of events in one transaction
        OutboxMessage,
        ("event_id", "event_type", "aggregate_type", "aggregate_id", "organisation_ids", "payload"),
        rows,
        occurred_at=at,
    )
    # Ask for a dispatch, seen by the worker once this commits (once per transaction, and not at all
    # when a dispatch not started yet will see it); the scheduler's sweep is the safety net.
    wake.after_commit("outbox.dispatch", once=True, coalesce=True)


def _event_ids(batch: int = 1024) -> Iterator[str]:
    """Random (version 4) UUIDs as 32 hex digits, the form both databases store and accept, drawn
    from the OS in blocks: ``uuid.uuid4()`` costs more than the insert of its row in a large sweep."""
    while True:
        block = os.urandom(16 * batch)
        for i in range(0, len(block), 16):
            raw = bytearray(block[i : i + 16])
            raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
            raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
            yield raw.hex()


def on_commit(func: Any) -> None:
    """Run ``func`` after the current transaction commits (effects after commit)."""
    transaction.on_commit(func)
