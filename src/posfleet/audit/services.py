"""Writing to the audit chain. Call inside the transaction of the change being recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from posfleet.audit.chain import compute_hash
from posfleet.audit.models import AuditChainHead, AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.platform.bulk import insert_returning
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.exports import ExportRecord, Recorder
from posfleet.platform.prepared import Prepared

MAX_NOTE = 2000


def clean_text(value: str, limit: int = MAX_NOTE) -> str:
    """Notes and labels come from users: drop NUL (PostgreSQL rejects it) and cap the length."""
    return value.replace("\x00", "")[:limit]


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One event to append. ``before``/``after`` hold JSON-native values only (no floats for money)."""

    event_type: EventType
    subject_type: str
    subject_id: str
    reason: str = ""
    note: str = ""
    outcome: str = "success"
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    # Who did it, when not the caller of record_many: lets a bulk writer (the demo, a history
    # import) append many actors' events in one call. None: the caller's actor.
    actor: Actor | None = None


# Taken by every audited change (the gateway's groups of approvals too): compiled once per connection.
_HEAD_FIELDS = ("id", "last_seq", "last_hash")
_HEAD = Prepared(lambda: AuditChainHead.objects.select_for_update().filter(pk=1).values_list(*_HEAD_FIELDS))


def _locked_head() -> AuditChainHead:
    found = _HEAD.objects()
    head: AuditChainHead | None = found[0] if found else None
    if head is None:
        # Seeded by migration 0002; recreated only while the chain is empty (e.g. a flushed test
        # database). Events without a head mean someone removed it: refuse to write on a broken chain.
        if AuditEvent.objects.exists():
            raise RuntimeError("the audit chain head is missing; run `posfleet audit verify`")
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head


def record(actor: Actor, entry: Entry) -> AuditEvent:
    return record_many(actor, [entry])[0]


def record_many(actor: Actor, entries: Sequence[Entry]) -> list[AuditEvent]:
    """Append ``entries`` in order. Locks the chain head, so concurrent writers queue up."""
    if not entries:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("audit events must be written inside the transaction of the change")
    # No savepoint of its own: an audit row that fails to be written fails the change with it (the
    # caller cannot catch the error and commit without it), and the group of approvals the gateway
    # writes many times a second saves two round trips.
    with transaction.atomic(savepoint=False):
        head = _locked_head()
        seq, prev = head.last_seq, head.last_hash
        stamp = now()
        rows: list[AuditEvent] = []
        for entry in entries:
            seq += 1
            who = entry.actor or actor
            content = {
                "seq": seq,
                "occurred_at": entry.occurred_at or stamp,
                "event_type": str(entry.event_type),
                "actor_kind": who.kind,
                "actor_id": (who.user.pk if who.user is not None else None),
                "actor_label": clean_text(who.label, 150),
                "organisation_id": who.organisation_id,
                "subject_type": entry.subject_type,
                "subject_id": clean_text(entry.subject_id, 64),
                "reason": entry.reason,
                "note": clean_text(entry.note),
                "outcome": entry.outcome,
                "request_id": who.request_id,
                "source_ip": who.source_ip,
                "before": dict(entry.before),
                "after": dict(entry.after),
            }
            digest = compute_hash(prev, content)
            rows.append(AuditEvent(**content, prev_hash=prev, hash=digest))
            prev = digest
        ids = insert_returning(AuditEvent, _EVENT_COLUMNS, (_values(row) for row in rows), ("seq",))
        for row in rows:  # as ``bulk_create`` leaves them: saved, with their ids
            row.pk = ids[(row.seq,)]
            row._state.adding, row._state.db = False, connection.alias
        with connection.cursor() as cursor:
            cursor.execute(_MOVE_HEAD, [seq, prev])
    return rows


# The events' columns, written by ``platform.bulk`` (the ORM's bulk_create built its INSERT anew for
# every call: most of an append's time on SQLite, a third on PostgreSQL), and the head moved by one plain
# statement.
_EVENT_COLUMNS = tuple(f.name for f in AuditEvent._meta.concrete_fields if not f.primary_key)
_MOVE_HEAD = "UPDATE {table} SET {seq} = %s, {hash} = %s WHERE {pk} = 1".format(  # noqa: S608 (names)
    table=AuditChainHead._meta.db_table,
    seq=AuditChainHead._meta.get_field("last_seq").column,
    hash=AuditChainHead._meta.get_field("last_hash").column,
    pk=AuditChainHead._meta.pk.column,
)


def _values(row: AuditEvent) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in _EVENT_COLUMNS)


def export_recorder(actor: Actor, event_type: EventType) -> Recorder:
    """The audit row of an export (``platform.exports``): written once, when it ends, with who, the
    export, its outcome, its format, filters, scope and rows."""

    def write(export: ExportRecord) -> None:
        with transaction.atomic():
            record(
                actor,
                Entry(
                    event_type=event_type,
                    subject_type="export",
                    subject_id=export.export_id,
                    outcome=export.outcome,
                    after=export.after(),
                ),
            )

    return write
