"""The audit chain detects every kind of tampering and names the first bad event.

Tampering is done the way an attacker with database rights would: with raw SQL, after dropping the
append-only triggers (the test transaction rolls all of it back)."""

from __future__ import annotations

import importlib

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from posfleet.audit.chain import HASHED_FIELDS, compute_hash
from posfleet.audit.models import AuditChainHead, AuditEvent
from posfleet.audit.services import Entry, record, record_many
from posfleet.audit.verify import verify_chain
from posfleet.audit.vocabulary import EventType
from posfleet.platform.bulk import COPY_FROM
from posfleet.platform.context import Actor

ACTOR = Actor.system("chain-test")


@pytest.fixture
def chain(db):
    """Ten events, seq 1..10."""
    with transaction.atomic():
        record_many(
            ACTOR,
            [
                Entry(
                    event_type=EventType.TERMINAL_ACTIVATED,
                    subject_type="terminal",
                    subject_id=f"SN{i:04d}",
                    reason="",
                    note=f"event {i}",
                    before={"status": "bound"},
                    after={"status": "active"},
                )
                for i in range(1, 11)
            ],
        )
    return list(AuditEvent.objects.order_by("seq"))


def raw(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
            cursor.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
        cursor.execute(sql, params or [])


def test_intact_chain_verifies(chain):
    result = verify_chain()
    assert (result.ok, result.checked, result.last_seq, result.bad_seq) == (True, 10, 10, None)


def test_empty_chain_verifies(db):
    assert verify_chain().ok


def test_edited_field_is_detected(chain):
    raw("UPDATE audit_auditevent SET note = %s WHERE seq = 4", ["nothing happened here"])
    result = verify_chain()
    assert (result.ok, result.bad_seq, result.checked) == (False, 4, 3)
    assert "altered" in result.problem


def test_edited_json_value_is_detected(chain):
    raw("UPDATE audit_auditevent SET after = %s WHERE seq = 7", ['{"status": "deactivated"}'])
    assert verify_chain().bad_seq == 7


def test_edit_with_rehash_under_a_guessed_key_is_detected(chain):
    event = chain[5]  # seq 6
    content = {f: getattr(event, f) for f in HASHED_FIELDS}
    content["note"] = "forged"
    forged = compute_hash(event.prev_hash, content, key=b"not-the-key")
    raw("UPDATE audit_auditevent SET note = %s, hash = %s WHERE seq = 6", ["forged", forged])
    result = verify_chain()
    assert (result.ok, result.bad_seq) == (False, 6)


def test_deleted_event_is_detected(chain):
    raw("DELETE FROM audit_auditevent WHERE seq = 5")
    result = verify_chain()
    assert (result.ok, result.bad_seq) == (False, 5)
    assert "missing" in result.problem


def test_swapped_events_are_detected(chain):
    raw("UPDATE audit_auditevent SET seq = -3 WHERE seq = 3")
    raw("UPDATE audit_auditevent SET seq = 3 WHERE seq = 8")
    raw("UPDATE audit_auditevent SET seq = 8 WHERE seq = -3")
    result = verify_chain()
    assert (result.ok, result.bad_seq) == (False, 3)


def test_truncated_tail_is_detected(chain):
    raw("DELETE FROM audit_auditevent WHERE seq >= 9")
    result = verify_chain()
    assert (result.ok, result.bad_seq) == (False, 9)
    assert "cut off" in result.problem


def test_appended_forgery_is_detected(chain):
    last = chain[-1]
    raw(
        "INSERT INTO audit_auditevent (seq, occurred_at, event_type, actor_kind, actor_label, subject_type,"
        " subject_id, reason, note, outcome, request_id, before, after, prev_hash, hash)"
        " VALUES (11, %s, 'terminal.deactivated', 'system', 'x', 'terminal', 'SN0001', 'cost', '', 'success',"
        " '', '{}', '{}', %s, %s)",
        [last.occurred_at, last.hash, "f" * 64],
    )
    result = verify_chain()
    assert (result.ok, result.bad_seq) == (False, 11)


def test_rewritten_head_after_truncation_is_caught_by_a_saved_anchor(chain, capsys):
    call_command("audit", "head")
    anchor = capsys.readouterr().out.strip()
    assert anchor == f"10:{chain[-1].hash}"
    raw("DELETE FROM audit_auditevent WHERE seq >= 9")
    AuditChainHead.objects.filter(pk=1).update(last_seq=8, last_hash=chain[7].hash)
    assert verify_chain().ok  # a consistent truncation is invisible without an anchor...
    with pytest.raises(CommandError, match="anchor #10"):
        call_command("audit", "verify", "--expect-head", anchor)  # ...and caught with one


def test_orm_and_database_refuse_updates_and_deletes(chain):
    guard = importlib.import_module("posfleet.audit.migrations.0002_chain_head_and_append_only")
    with connection.cursor() as cursor:
        guard.install_guard(cursor.execute, connection.vendor)  # rolled back with the test
    event = chain[0]
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(seq=1).update(note="x")
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET note = 'x' WHERE seq = 1")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 2")
    assert verify_chain().ok


def test_cli_verify_exit_codes(chain, capsys):
    call_command("audit", "verify")
    assert "audit chain intact: 10 events, last #10" in capsys.readouterr().out
    raw("UPDATE audit_auditevent SET actor_label = 'someone else' WHERE seq = 2")
    with pytest.raises(CommandError, match=r"BROKEN at event #2") as broken:
        call_command("audit", "verify")
    assert broken.value.returncode == 1


@pytest.mark.parametrize(
    "note",
    [
        "line one\r\nforged line: admin deleted everything",
        "\x1b[31mred\x1b[0m and \"quotes\" and 'single' and \\backslash",
        "零宽\u200b字符 and emoji 🧾 and RTL \u202egnirts",
        "长" * 5000,
    ],
)
def test_hostile_notes_are_stored_faithfully_and_chain_still_verifies(db, note):
    with transaction.atomic():
        event = record(
            ACTOR,
            Entry(
                event_type=EventType.TERMINAL_DEACTIVATED,
                subject_type="terminal",
                subject_id="SN-X",
                reason="other",
                note=note,
            ),
        )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.note == note[:2000]
    assert verify_chain().ok


@pytest.mark.parametrize("n", [3, COPY_FROM + 1], ids=["a few events", "a COPY-sized append"])
def test_an_append_stores_each_event_as_given_under_the_id_it_returns(world, n):
    """``record_many`` writes through ``platform.bulk`` (one INSERT, or COPY on PostgreSQL for a large
    append): each event is stored as given — tabs, newlines, backslashes, JSON, an address — under the
    id the returned event carries, and the head and the chain agree."""
    person = Actor.for_user(world.user("reviewer"), request_id="req-7", source_ip="10.0.0.7")
    entries = [
        Entry(
            event_type=EventType.TERMINAL_DEACTIVATED,
            subject_type="terminal",
            subject_id=f"SN{i:04d}",
            note=f"line {i}\tcolumn\nnext \\ 备注",
            after={"status": "deactivated", "by": {"name": "王", "n": i}},
            actor=person if i % 2 else None,
        )
        for i in range(n)
    ]
    before = AuditEvent.objects.count()  # the world's own events
    with transaction.atomic():
        events = record_many(ACTOR, entries)

    stored = {e.pk: e for e in AuditEvent.objects.filter(seq__gt=before)}
    assert sorted(stored) == sorted(e.pk for e in events)
    for entry, event in zip(entries, events, strict=True):
        row = stored[event.pk]
        assert (row.seq, row.hash, row.subject_id, row.note, row.after) == (
            event.seq,
            event.hash,
            entry.subject_id,
            entry.note,
            entry.after,
        )
        assert (row.actor_id, row.source_ip, row.request_id) == (
            (person.user.pk, "10.0.0.7", "req-7") if entry.actor else (None, None, "")
        )
    head = AuditChainHead.objects.get(pk=1)
    assert (head.last_seq, head.last_hash) == (events[-1].seq, events[-1].hash)
    result = verify_chain()
    assert (result.ok, result.checked) == (True, before + n)


def test_nul_bytes_are_dropped_not_fatal(db):
    with transaction.atomic():
        record(
            ACTOR,
            Entry(
                event_type=EventType.TERMINAL_DEACTIVATED,
                subject_type="terminal",
                subject_id="SN-\x00X",
                note="a\x00b",
            ),
        )
    stored = AuditEvent.objects.get()
    assert (stored.note, stored.subject_id) == ("ab", "SN-X")
    assert verify_chain().ok


def test_writing_outside_a_transaction_is_refused(transactional_db):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        record(
            ACTOR, Entry(event_type=EventType.TERMINAL_DEACTIVATED, subject_type="terminal", subject_id="X")
        )
    assert AuditEvent.objects.count() == 0
