"""A prototype of the audit chain in *lanes* (per-shard chains), measured by ``bench/transitions.py``.

Not part of the app: ``src/posfleet/audit`` is unchanged. Import this module only after
``django.setup()``; ``create_tables()`` makes its two tables in the current database.

Today (``audit/services.py``) every audited write locks the one chain head row from the moment it
appends until its transaction commits, so audited transactions queue behind each other, commit and
all. Here the chain is split into K lanes:

- ``LaneHead`` — K rows (lane, last lane_seq, last hash). A writer locks one lane head — its own lane
  (pid mod K) if free, else any free one (``FOR UPDATE SKIP LOCKED``), and waits only when every lane
  is taken — and keeps that lane for the rest of its transaction (so it never holds two: no
  deadlocks between lanes).
- ``LaneEvent`` — the event with the same content as ``AuditEvent`` plus ``lane`` and ``lane_seq``
  (gapless inside its lane, unique together); ``prev_hash`` is the previous event *of its lane*.
  ``seq`` stays a global, unique, increasing number (a PostgreSQL sequence; on SQLite, whose writers
  are serialised by the database lock anyway, max + 1) used for ordering timelines; it can have gaps
  (a rolled-back transaction) and is covered by the HMAC like everything else.
- ``hash = HMAC-SHA256(key, prev_hash ‖ canonical(content + lane + lane_seq))``, the same key and
  canonical JSON as today.
- Periodic anchor: ``record_anchor()`` appends an ``audit.anchor`` event whose content lists every
  lane's head (lane_seq, hash); the external anchor is that event's ``seq:hash``, like today's
  ``posfleet audit head``. ``verify(expect=...)`` then proves every lane still contains what it
  contained at the anchor.

``verify()`` walks each lane in lane_seq order and checks: lane_seq consecutive from 1 (a deleted
event leaves a gap: named by lane and position), each ``prev_hash`` is the previous event's hash
(swaps, insertions, moving an event into another lane), each HMAC (edits; a rewrite needs the key),
each lane's end against its head row (a truncated tail), and no events in a lane without a head.
``tamper_checks()`` runs each kind of tampering on the current database inside a transaction that it
rolls back, and reports whether verify caught it and what it named.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction

from posfleet.audit.chain import GENESIS_HASH, HASHED_FIELDS, _normalise
from posfleet.audit.services import Entry, clean_text
from posfleet.platform.clock import now
from posfleet.platform.context import Actor

LANE_FIELDS = (*HASHED_FIELDS, "lane", "lane_seq")
SEQUENCE = "bench_lane_seq"


class LaneEvent(models.Model):
    seq = models.BigIntegerField(unique=True)
    lane = models.SmallIntegerField()
    lane_seq = models.BigIntegerField()
    occurred_at = models.DateTimeField(db_index=True)
    event_type = models.CharField(max_length=48)
    actor_kind = models.CharField(max_length=8)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=150, blank=True)
    organisation_id = models.BigIntegerField(null=True, blank=True)
    subject_type = models.CharField(max_length=32)
    subject_id = models.CharField(max_length=64)
    reason = models.CharField(max_length=48, blank=True)
    note = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, default="success")
    request_id = models.CharField(max_length=64, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        app_label = "audit"
        db_table = "bench_lane_event"
        managed = False
        constraints = [models.UniqueConstraint(fields=["lane", "lane_seq"], name="bench_lane_position")]
        indexes = [
            models.Index(fields=["subject_type", "subject_id", "seq"], name="bench_lane_subject_idx"),
            models.Index(fields=["event_type", "occurred_at"], name="bench_lane_type_time_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} lane {self.lane} #{self.lane_seq}"


class LaneHead(models.Model):
    lane = models.PositiveSmallIntegerField(primary_key=True)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        app_label = "audit"
        db_table = "bench_lane_head"
        managed = False

    def __str__(self) -> str:
        return f"lane {self.lane} #{self.last_seq}"


def create_tables(lanes: int) -> None:
    with connection.schema_editor() as editor:
        editor.create_model(LaneEvent)
        editor.create_model(LaneHead)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SEQUENCE {SEQUENCE}")
    LaneHead.objects.bulk_create([LaneHead(lane=n) for n in range(lanes)])


def lane_hash(prev_hash: str, content: dict[str, Any], key: bytes) -> str:
    doc = {f: _normalise(f, content.get(f)) for f in LANE_FIELDS}
    mac = hmac.new(key, prev_hash.encode("ascii") + b"\n", hashlib.sha256)
    mac.update(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    return mac.hexdigest()


# -- writing ------------------------------------------------------------------------------------

_held: tuple[object, LaneHead] | None = None  # (outermost atomic block, the lane it holds)


def _take_lane(lanes: int) -> LaneHead:
    global _held
    outer = connection.atomic_blocks[0]
    if _held is not None and _held[0] is outer:
        return LaneHead.objects.get(lane=_held[1].lane)  # already locked by this transaction
    locking = LaneHead.objects.select_for_update
    if lanes == 1:
        head = locking().get(lane=0)
    else:
        own = os.getpid() % lanes
        head = (
            locking(skip_locked=True).filter(lane=own).first()
            or locking(skip_locked=True).order_by("?").first()
            or locking().get(lane=own)  # every lane busy: wait for ours
        )
    _held = (outer, head)
    return head


def _next_seqs(n: int) -> list[int]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT nextval('{SEQUENCE}') FROM generate_series(1, %s)", [n])
            return [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT COALESCE(MAX(seq), 0) FROM bench_lane_event")
        last = cursor.fetchone()[0]
        return list(range(last + 1, last + n + 1))


def record_many(actor: Actor, entries: Sequence[Entry], *, lanes: int) -> list[LaneEvent]:
    """``audit.services.record_many`` with lanes: the same content, one lane head locked."""
    if not entries:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("audit events must be written inside the transaction of the change")
    key = settings.POSFLEET_AUDIT_KEY.encode()
    with transaction.atomic():
        head = _take_lane(lanes)
        lane_seq, prev = head.last_seq, head.last_hash
        stamp = now()
        rows: list[LaneEvent] = []
        for entry, seq in zip(entries, _next_seqs(len(entries)), strict=True):
            lane_seq += 1
            who = entry.actor or actor
            content = {
                "seq": seq,
                "lane": head.lane,
                "lane_seq": lane_seq,
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
            digest = lane_hash(prev, content, key)
            rows.append(LaneEvent(**content, prev_hash=prev, hash=digest))
            prev = digest
        LaneEvent.objects.bulk_create(rows, batch_size=500)
        LaneHead.objects.filter(lane=head.lane).update(last_seq=lane_seq, last_hash=prev)
    return rows


def record(actor: Actor, entry: Entry, *, lanes: int) -> LaneEvent:
    return record_many(actor, [entry], lanes=lanes)[0]


def record_anchor(actor: Actor, *, lanes: int) -> str:
    """Append an anchor event listing every lane's head; return its ``seq:hash`` (keep it elsewhere)."""
    from posfleet.audit.vocabulary import EventType

    with transaction.atomic():
        heads = {h.lane: [h.last_seq, h.last_hash] for h in LaneHead.objects.order_by("lane")}
        event = record(
            actor,
            Entry(
                event_type=EventType.TERMINAL_ACTIVATED,  # stands in for a new type "audit.anchor"
                subject_type="audit_anchor",
                subject_id="lanes",
                after={"lanes": {str(k): v for k, v in heads.items()}},
            ),
            lanes=lanes,
        )
    return f"{event.seq}:{event.hash}"


def backfill(*, lanes: int, chunk: int = 5000) -> int:
    """Append a copy of every event of today's chain to the lanes, round-robin (to time ``verify`` on
    as many rows as ``verify_chain`` walks). A fixture, not a migration path."""
    from posfleet.audit.models import AuditEvent

    key = settings.POSFLEET_AUDIT_KEY.encode()
    heads = {h.lane: [h.last_seq, h.last_hash] for h in LaneHead.objects.all()}
    with transaction.atomic():
        seqs = _next_seqs(AuditEvent.objects.count())
        source = AuditEvent.objects.order_by("seq").values_list(*HASHED_FIELDS).iterator(chunk_size=chunk)
        batch: list[LaneEvent] = []
        for n, (row, seq) in enumerate(zip(source, seqs, strict=True)):
            content = dict(zip(HASHED_FIELDS, row, strict=True))
            lane = n % lanes
            heads[lane][0] += 1
            content.update(seq=seq, lane=lane, lane_seq=heads[lane][0])
            digest = lane_hash(heads[lane][1], content, key)
            batch.append(LaneEvent(**content, prev_hash=heads[lane][1], hash=digest))
            heads[lane][1] = digest
            if len(batch) == chunk:
                LaneEvent.objects.bulk_create(batch, batch_size=500)
                batch.clear()
        LaneEvent.objects.bulk_create(batch, batch_size=500)
        for lane, (last_seq, last_hash) in heads.items():
            LaneHead.objects.filter(lane=lane).update(last_seq=last_seq, last_hash=last_hash)
    return len(seqs)


# -- verifying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    problem: str = ""
    lane: int | None = None
    lane_seq: int | None = None


def verify(*, expect: str | None = None, chunk: int = 5000) -> Verdict:
    key = settings.POSFLEET_AUDIT_KEY.encode()
    heads = {h.lane: (h.last_seq, h.last_hash) for h in LaneHead.objects.all()}
    columns = (*LANE_FIELDS, "prev_hash", "hash")
    rows = LaneEvent.objects.order_by("lane", "lane_seq").values_list(*columns).iterator(chunk_size=chunk)
    lane, expected, prev, checked = None, 1, GENESIS_HASH, 0
    seen: set[int] = set()

    def end_of_lane(n: int, last: int, last_hash: str) -> Verdict | None:
        if n not in heads:
            return Verdict(False, checked, f"lane {n} has events but no head (forged lane)", n, 1)
        head_seq, head_hash = heads[n]
        if head_seq > last:
            return Verdict(
                False,
                checked,
                f"lane {n} ends at #{last} but its head records #{head_seq}: cut off",
                n,
                last + 1,
            )
        if (head_seq, head_hash) != (last, last_hash):
            return Verdict(False, checked, f"lane {n}: the head does not match the last event", n, last)
        return None

    for row in rows:
        content = dict(zip(columns, row, strict=True))
        if content["lane"] != lane:
            if lane is not None and (bad := end_of_lane(lane, expected - 1, prev)):
                return bad
            lane, expected, prev = content["lane"], 1, GENESIS_HASH
            seen.add(lane)
        position = content["lane_seq"]
        if position != expected:
            what = "is missing (deleted)" if position > expected else "is out of order"
            return Verdict(False, checked, f"lane {lane} event #{expected} {what}", lane, expected)
        if content["prev_hash"] != prev:
            return Verdict(
                False,
                checked,
                f"lane {lane} event #{position} (seq {content['seq']}) does not link",
                lane,
                position,
            )
        if lane_hash(prev, content, key) != content["hash"]:
            return Verdict(
                False,
                checked,
                f"lane {lane} event #{position} (seq {content['seq']}) was altered",
                lane,
                position,
            )
        prev = content["hash"]
        expected += 1
        checked += 1
    if lane is not None and (bad := end_of_lane(lane, expected - 1, prev)):
        return bad
    for n, (head_seq, _hash) in heads.items():
        if n not in seen and head_seq:
            return Verdict(False, checked, f"lane {n} is empty but its head records #{head_seq}", n, 1)
    if expect:
        seq_text, _sep, digest = expect.partition(":")
        anchor = LaneEvent.objects.filter(seq=int(seq_text)).values_list("hash", "after").first()
        if anchor is None or anchor[0] != digest:
            return Verdict(False, checked, f"the anchor #{seq_text} is not in the chain (rewritten)")
        for n, (lane_seq, lane_hash_at) in anchor[1]["lanes"].items():
            held = LaneEvent.objects.filter(lane=int(n), lane_seq=lane_seq, hash=lane_hash_at)
            if lane_seq and not held.exists():
                return Verdict(
                    False, checked, f"lane {n} no longer holds #{lane_seq} of the anchor", int(n), lane_seq
                )
    return Verdict(True, checked)


def tamper_checks(actor: Actor, *, lanes: int) -> list[dict[str, object]]:
    """Each kind of tampering, done with raw SQL as an attacker with database rights would, inside a
    transaction rolled back afterwards; whether ``verify`` caught it and what it named."""
    results: list[dict[str, object]] = []
    anchor = record_anchor(actor, lanes=lanes)  # kept "elsewhere" (committed before the tampering)
    busiest = LaneEvent.objects.values("lane").annotate(n=models.Count("id")).order_by("-n", "lane").first()
    if busiest is None or busiest["n"] < 6:
        raise RuntimeError("too few events to tamper with")
    lane, n = busiest["lane"], busiest["n"]
    other = (lane + 1) % lanes if lanes > 1 else None
    mid = n // 2

    def sql(statement: str, params: Sequence[object] = ()) -> None:
        with connection.cursor() as cursor:
            cursor.execute(statement, list(params))

    def head_of(number: int) -> tuple[int, str]:
        h = LaneHead.objects.get(lane=number)
        return h.last_seq, h.last_hash

    def edit() -> None:
        sql(
            "UPDATE bench_lane_event SET note = 'nothing happened' WHERE lane = %s AND lane_seq = %s",
            [lane, mid],
        )

    def delete() -> None:
        sql("DELETE FROM bench_lane_event WHERE lane = %s AND lane_seq = %s", [lane, mid])

    def swap() -> None:
        sql("UPDATE bench_lane_event SET lane_seq = -1 WHERE lane = %s AND lane_seq = %s", [lane, mid])
        sql(
            "UPDATE bench_lane_event SET lane_seq = %s WHERE lane = %s AND lane_seq = %s",
            [mid, lane, mid + 1],
        )
        sql("UPDATE bench_lane_event SET lane_seq = %s WHERE lane = %s AND lane_seq = -1", [mid + 1, lane])

    def truncate() -> None:
        sql("DELETE FROM bench_lane_event WHERE lane = %s AND lane_seq > %s", [lane, n - 2])

    def rewrite() -> None:  # edit and re-hash the rest of the lane under a guessed key
        rows = list(LaneEvent.objects.filter(lane=lane, lane_seq__gte=mid).order_by("lane_seq"))
        prev = rows[0].prev_hash
        for i, event in enumerate(rows):
            content = {f: getattr(event, f) for f in LANE_FIELDS}
            if i == 0:
                content["note"] = "forged"
            digest = lane_hash(prev, content, b"a-guessed-key")
            sql(
                "UPDATE bench_lane_event SET note = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [content["note"], prev, digest, event.pk],
            )
            prev = digest
        sql("UPDATE bench_lane_head SET last_hash = %s WHERE lane = %s", [prev, lane])

    def move() -> None:  # the last event of one lane re-labelled as the next of another
        if other is None:
            sql("UPDATE bench_lane_event SET lane = 99 WHERE lane = %s AND lane_seq = %s", [lane, n])
            return
        other_seq, _h = head_of(other)
        sql(
            "UPDATE bench_lane_event SET lane = %s, lane_seq = %s WHERE lane = %s AND lane_seq = %s",
            [other, other_seq + 1, lane, n],
        )

    def truncate_and_fix_head() -> None:
        last = LaneEvent.objects.get(lane=lane, lane_seq=n - 2)
        sql("DELETE FROM bench_lane_event WHERE lane = %s AND lane_seq > %s", [lane, n - 2])
        sql(
            "UPDATE bench_lane_head SET last_seq = %s, last_hash = %s WHERE lane = %s",
            [n - 2, last.hash, lane],
        )

    cases = [
        ("intact", None, None),
        ("edit a field", edit, None),
        ("delete an event", delete, None),
        ("swap two events", swap, None),
        ("truncate a lane's tail", truncate, None),
        ("rewrite under a guessed key", rewrite, None),
        ("move an event to another lane", move, None),
        ("truncate and rewrite the head", truncate_and_fix_head, None),
        ("truncate and rewrite the head, with the saved anchor", truncate_and_fix_head, anchor),
    ]
    for name, tamper, expect in cases:
        with transaction.atomic():
            if tamper is not None:
                tamper()
            verdict = verify(expect=expect)
            transaction.set_rollback(True)
        results.append({"case": name, "detected": not verdict.ok, "named": verdict.problem})
    return results
