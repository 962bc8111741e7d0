"""The device command channel at the service level: credentials, heartbeats, the command lifecycle
(queued → delivered → acknowledged / failed / expired), idempotent sends, a device reaching only its
own commands, step-up for wipe and lock, and who may send what (the expected table written by hand)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import DeviceCommand, DeviceCredential, Terminal, TerminalModel
from posfleet.fleet.selectors import device_command_by_key, device_commands_of
from posfleet.fleet.services import (
    CommandKeyReused,
    device_authenticate,
    device_command_ack,
    device_command_send,
    device_commands_expire,
    device_commands_fetch,
    device_credential_issue,
    device_credential_revoke,
    device_heartbeat,
)
from posfleet.fleet.states import Status
from posfleet.fleet.tasks import device_commands_expire_task
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    DomainError,
    GuardFailed,
    NotFound,
    StepUpRequired,
    TransitionNotAllowed,
    ValidationFailed,
)
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.refusals import assert_nothing_recorded

SN_A = "SN-DEV-A-001"  # merchant A (agent A), smart, active
SN_B = "SN-DEV-B-001"  # merchant B (agent B), smart, active
CLOSURE = Actor.job("closure")
PERSONAS = ["admin", "reviewer", "warehouse", "agent_a", "agent_a1", "agent_b", "merchant_a", "merchant_b"]


@pytest.fixture
def smart(world) -> dict[str, Terminal]:
    return {
        SN_A: make_terminal(world, SN_A, Status.ACTIVE, merchant=world.merchant_a),
        SN_B: make_terminal(world, SN_B, Status.ACTIVE, merchant=world.merchant_b),
    }


def fresh(sn: str) -> Terminal:
    """The terminal as the device channel reads it (device_authenticate's joins)."""
    return Terminal.objects.select_related("model", "agent__organisation", "merchant__organisation").get(
        sn=sn
    )


def events_since(seq: int) -> list[str]:
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("event_type", flat=True))


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


# ---------------------------------------------------------------------------------------------
# Credentials


def test_a_credential_is_shown_once_stored_hashed_and_authenticates(smart):
    credential, secret = device_credential_issue(actor=SYSTEM, sn=SN_A)
    assert credential.key_id.startswith("dk_")
    assert len(secret) >= 43  # 32 random bytes
    row = DeviceCredential.objects.values().get(pk=credential.pk)
    assert secret not in str(row)
    assert len(row["secret_hash"]) == 64
    assert device_authenticate(credential.key_id, secret) == smart[SN_A]
    assert device_authenticate(credential.key_id, secret + "x") is None
    assert device_authenticate(credential.key_id, "") is None
    assert device_authenticate("dk_unknown", secret) is None
    audit = AuditEvent.objects.filter(event_type=EventType.DEVICE_CREDENTIAL_ISSUED).get()
    assert (audit.subject_type, audit.subject_id, audit.after) == (
        "terminal",
        SN_A,
        {"key_id": credential.key_id},
    )
    assert secret not in str(AuditEvent.objects.values_list("before", "after", "note"))
    assert secret not in str(OutboxMessage.objects.values_list("payload"))


def test_issuing_again_revokes_the_previous_credential(smart):
    old, old_secret = device_credential_issue(actor=SYSTEM, sn=SN_A)
    new, new_secret = device_credential_issue(actor=SYSTEM, sn=SN_A)
    old.refresh_from_db()
    assert (old.revoked_at is not None, old.revoked_reason) == (True, "reissued")
    assert device_authenticate(old.key_id, old_secret) is None
    assert device_authenticate(new.key_id, new_secret) == smart[SN_A]
    assert DeviceCredential.objects.filter(terminal=smart[SN_A], revoked_at__isnull=True).count() == 1
    second = AuditEvent.objects.filter(event_type=EventType.DEVICE_CREDENTIAL_ISSUED).order_by("-seq").first()
    assert (second.before, second.after) == ({"key_id": old.key_id}, {"key_id": new.key_id})


def test_the_database_keeps_one_live_credential_per_terminal(smart):
    device_credential_issue(actor=SYSTEM, sn=SN_A)
    with pytest.raises(IntegrityError), transaction.atomic():
        DeviceCredential.objects.create(
            terminal=smart[SN_A], key_id="dk_second", secret_hash="0" * 64, issued_at=now()
        )


def test_a_revoked_credential_no_longer_authenticates_and_revoking_again_changes_nothing(smart):
    credential, secret = device_credential_issue(actor=SYSTEM, sn=SN_A)
    revoked = device_credential_revoke(actor=CLOSURE, sn=SN_A, reason="closure")
    assert revoked is not None
    assert revoked.pk == credential.pk
    assert (revoked.revoked_reason, revoked.revoked_at is not None) == ("closure", True)
    assert device_authenticate(credential.key_id, secret) is None
    audit = AuditEvent.objects.filter(event_type=EventType.DEVICE_CREDENTIAL_REVOKED).get()
    assert (audit.reason, audit.actor_kind, audit.actor_label) == ("closure", "job", "closure")
    event = OutboxMessage.objects.filter(event_type="device.credential_changed").order_by("-id").first()
    assert (event.payload["change"], event.payload["reason"]) == ("revoked", "closure")
    with assert_nothing_recorded(revoked):
        assert device_credential_revoke(actor=CLOSURE, sn=SN_A, reason="closure") is None


@pytest.mark.parametrize(("reason", "note"), [("", ""), ("reissued", ""), ("bored", ""), ("other", " ")])
def test_a_revocation_names_a_reason(smart, reason, note):
    credential, _secret = device_credential_issue(actor=SYSTEM, sn=SN_A)
    with assert_nothing_recorded(credential), pytest.raises(ValidationFailed):
        device_credential_revoke(actor=CLOSURE, sn=SN_A, reason=reason, note=note)


def test_issuing_and_revoking_need_a_fresh_step_up_from_a_person(smart, world, actor_of):
    admin = actor_of(world.user("admin"))
    with assert_nothing_recorded(smart[SN_A]), pytest.raises(StepUpRequired):
        device_credential_issue(actor=admin, sn=SN_A)
    credential, _secret = device_credential_issue(
        actor=actor_of(world.user("admin"), stepped_up=True), sn=SN_A
    )
    with assert_nothing_recorded(credential), pytest.raises(StepUpRequired):
        device_credential_revoke(actor=admin, sn=SN_A, reason="compromised")


def test_only_smart_terminals_have_a_device_channel(world):
    model = TerminalModel.objects.create(code="classic", maker="Old", name="Classic", kind="traditional")
    classic = make_terminal(world, "SN-DEV-OLD-1", Status.ACTIVE, model=model)
    with assert_nothing_recorded(classic), pytest.raises(GuardFailed) as refused:
        device_command_send(actor=SYSTEM, sn=classic.sn, kind="wipe")
    assert refused.value.params == {"guard": "smart_terminal"}
    with assert_nothing_recorded(classic), pytest.raises(GuardFailed):
        device_credential_issue(actor=SYSTEM, sn=classic.sn)


# ---------------------------------------------------------------------------------------------
# Heartbeats


def test_a_heartbeat_updates_the_device_facts_and_records_only_new_firmware(smart):
    terminal = fresh(SN_A)
    seq = last_seq()
    device_heartbeat(terminal=terminal, firmware="2.0.1", location={"lat": 31.23, "lon": 121.47})
    row = Terminal.objects.get(sn=SN_A)
    assert row.firmware_version == "2.0.1"
    assert row.last_location == {"lat": 31.23, "lon": 121.47}
    assert row.last_heartbeat_at is not None
    assert events_since(seq) == [EventType.DEVICE_FIRMWARE_REPORTED]
    audit = AuditEvent.objects.get(seq__gt=seq)
    assert (audit.actor_kind, audit.actor_label, audit.before, audit.after) == (
        "system",
        f"device {SN_A}",
        {"firmware": ""},
        {"firmware": "2.0.1"},
    )
    outbox = OutboxMessage.objects.count()
    device_heartbeat(terminal=fresh(SN_A), firmware="2.0.1")  # the same firmware: telemetry only
    device_heartbeat(terminal=fresh(SN_A))
    assert events_since(seq) == [EventType.DEVICE_FIRMWARE_REPORTED]
    assert OutboxMessage.objects.count() == outbox
    assert Terminal.objects.get(sn=SN_A).last_location == {"lat": 31.23, "lon": 121.47}  # kept when not sent


@pytest.mark.parametrize(
    ("firmware", "location"),
    [
        ("x" * 33, None),
        ("1.0\nbeta", None),
        ("", {"lat": 91, "lon": 0}),
        ("", {"lat": 0}),
        ("", {"lat": "31", "lon": 121}),
        ("", {"lat": True, "lon": 121}),
        ("", {"lat": float("nan"), "lon": 121}),
        ("", {"lat": 0, "lon": 0, "accuracy_m": -1}),
    ],
)
def test_a_heartbeat_with_bad_facts_is_refused(smart, firmware, location):
    with assert_nothing_recorded(smart[SN_A]), pytest.raises(ValidationFailed):
        device_heartbeat(terminal=fresh(SN_A), firmware=firmware, location=location)


# ---------------------------------------------------------------------------------------------
# The command lifecycle


def test_queued_delivered_acknowledged(smart):
    seq = last_seq()
    command = device_command_send(actor=CLOSURE, sn=SN_A, kind="wipe", key="closure:7:wipe")
    assert (command.status, command.payload, command.key, command.actor_label) == (
        "queued",
        {},
        "closure:7:wipe",
        "closure",
    )
    assert command.expires_at == command.created_at + timedelta(days=7)

    fetched = device_commands_fetch(terminal=fresh(SN_A))
    assert [(c.pk, c.status) for c in fetched] == [(command.pk, "delivered")]
    # Not answered yet: it comes again (at least once), recorded once.
    again = device_commands_fetch(terminal=fresh(SN_A))
    assert [(c.pk, c.status) for c in again] == [(command.pk, "delivered")]

    answered = device_command_ack(
        terminal=fresh(SN_A),
        command_id=command.pk,
        ok=True,
        result={"wiped": True, "at": "2026-01-01T00:00:00Z"},
    )
    assert (answered.status, answered.result) == (
        "acknowledged",
        {"wiped": True, "at": "2026-01-01T00:00:00Z"},
    )
    row = DeviceCommand.objects.get(pk=command.pk)
    assert row.delivered_at is not None
    assert row.acknowledged_at is not None
    assert device_commands_fetch(terminal=fresh(SN_A)) == []

    assert events_since(seq) == [
        EventType.DEVICE_COMMAND_SENT,
        EventType.DEVICE_COMMAND_DELIVERED,
        EventType.DEVICE_COMMAND_ACKNOWLEDGED,
    ]
    acked = AuditEvent.objects.filter(event_type=EventType.DEVICE_COMMAND_ACKNOWLEDGED).get()
    assert acked.subject_id == SN_A
    assert acked.before == {"command_status": "delivered"}
    assert acked.after["command_status"] == "acknowledged"
    assert acked.after["result"] == {"wiped": True, "at": "2026-01-01T00:00:00Z"}
    statuses = list(
        OutboxMessage.objects.filter(event_type="device.command_changed")
        .order_by("id")
        .values_list("payload__status", "payload__key")
    )
    assert statuses == [
        ("queued", "closure:7:wipe"),
        ("delivered", "closure:7:wipe"),
        ("acknowledged", "closure:7:wipe"),
    ]
    # What the closure reads back by its key.
    evidence = device_command_by_key("closure:7:wipe")
    assert (evidence.status, evidence.result["wiped"]) == ("acknowledged", True)
    assert verify_chain().ok


def test_a_repeated_answer_changes_nothing(smart):
    command = device_command_send(actor=SYSTEM, sn=SN_A, kind="lock")
    device_commands_fetch(terminal=fresh(SN_A))
    device_command_ack(terminal=fresh(SN_A), command_id=command.pk, ok=True, result={"locked": True})
    command.refresh_from_db()
    with assert_nothing_recorded(command):
        again = device_command_ack(terminal=fresh(SN_A), command_id=command.pk, ok=False, result={"no": 1})
    assert (again.status, again.result) == ("acknowledged", {"locked": True})


def test_queued_delivered_failed(smart):
    command = device_command_send(actor=SYSTEM, sn=SN_A, kind="message", payload={"text": " Hello "})
    assert command.payload == {"text": "Hello"}
    device_commands_fetch(terminal=fresh(SN_A))
    failed = device_command_ack(
        terminal=fresh(SN_A), command_id=command.pk, ok=False, result={"error": "screen"}
    )
    assert (failed.status, failed.result) == ("failed", {"error": "screen"})
    assert AuditEvent.objects.filter(event_type=EventType.DEVICE_COMMAND_FAILED).count() == 1


def test_a_command_not_delivered_cannot_be_answered(smart):
    command = device_command_send(actor=SYSTEM, sn=SN_A, kind="unlock")
    with assert_nothing_recorded(command), pytest.raises(TransitionNotAllowed):
        device_command_ack(terminal=fresh(SN_A), command_id=command.pk, ok=True)


def test_unanswered_commands_expire_and_a_late_answer_still_counts(smart):
    start = now()
    queued = device_command_send(actor=SYSTEM, sn=SN_A, kind="message", payload={"text": "hi"})
    delivered = device_command_send(actor=SYSTEM, sn=SN_A, kind="wipe", expires_in=timedelta(hours=1))
    later = device_command_send(actor=SYSTEM, sn=SN_A, kind="lock", expires_in=timedelta(days=30))
    # All three are fetched (the message is then put back as never fetched); the device goes quiet.
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        device_commands_fetch(terminal=fresh(SN_A))
    delivered.refresh_from_db()
    assert delivered.status == "delivered"
    DeviceCommand.objects.filter(pk=queued.pk).update(status="queued", delivered_at=None)  # never fetched
    seq = last_seq()
    at = start + timedelta(days=8)
    with time_machine.travel(at, tick=False):
        assert device_commands_fetch(terminal=fresh(SN_A)) == [DeviceCommand.objects.get(pk=later.pk)]
        assert device_commands_expire() == 2
        assert device_commands_expire() == 0  # twice is harmless
        assert device_commands_expire_task.call() == {"expired": 0}
    statuses = dict(DeviceCommand.objects.values_list("pk", "status"))
    assert (statuses[queued.pk], statuses[delivered.pk], statuses[later.pk]) == (
        "expired",
        "expired",
        "delivered",
    )
    # The lock came again, unanswered (delivered before: not recorded again); two expired.
    assert events_since(seq) == [EventType.DEVICE_COMMAND_EXPIRED, EventType.DEVICE_COMMAND_EXPIRED]
    expired = AuditEvent.objects.filter(event_type=EventType.DEVICE_COMMAND_EXPIRED).order_by("seq").first()
    assert (expired.actor_kind, expired.before) == ("job", {"command_status": "queued"})
    # The wipe was delivered: its late answer is kept (the device did it).
    late = device_command_ack(terminal=fresh(SN_A), command_id=delivered.pk, ok=True, result={"wiped": True})
    assert late.status == "acknowledged"
    assert (
        AuditEvent.objects.filter(event_type=EventType.DEVICE_COMMAND_ACKNOWLEDGED).get().after["late"]
        is True
    )
    # The never-delivered one cannot be answered.
    with assert_nothing_recorded(queued), pytest.raises(TransitionNotAllowed):
        device_command_ack(terminal=fresh(SN_A), command_id=queued.pk, ok=True)


# ---------------------------------------------------------------------------------------------
# Idempotent sends


def test_a_send_with_the_same_key_returns_the_same_command(smart):
    first = device_command_send(actor=CLOSURE, sn=SN_A, kind="wipe", key="closure:9:wipe")
    seq, outbox = last_seq(), OutboxMessage.objects.count()
    again = device_command_send(actor=CLOSURE, sn=SN_A, kind="wipe", key="closure:9:wipe")
    assert again.pk == first.pk
    assert DeviceCommand.objects.filter(key="closure:9:wipe").count() == 1
    assert (events_since(seq), OutboxMessage.objects.count()) == ([], outbox)


@pytest.mark.parametrize(
    ("sn", "kind", "payload"),
    [(SN_A, "lock", None), (SN_B, "wipe", None), (SN_A, "message", {"text": "x"})],
)
def test_the_same_key_for_another_command_is_refused(smart, sn, kind, payload):
    first = device_command_send(actor=CLOSURE, sn=SN_A, kind="wipe", key="closure:9:wipe")
    with (
        assert_nothing_recorded(first, DeviceCommand.objects.all()),
        pytest.raises(CommandKeyReused) as refused,
    ):
        device_command_send(actor=CLOSURE, sn=sn, kind=kind, payload=payload, key="closure:9:wipe")
    assert refused.value.code == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("kind", "payload", "key", "expires_in"),
    [
        ("reboot", None, None, timedelta(days=1)),
        ("message", None, None, timedelta(days=1)),
        ("message", {"text": ""}, None, timedelta(days=1)),
        ("message", {"text": "x" * 501}, None, timedelta(days=1)),
        ("wipe", {"text": "bye"}, None, timedelta(days=1)),
        ("update_params", {"params": {}}, None, timedelta(days=1)),
        ("update_params", {"params": {"volume": 1.5}}, None, timedelta(days=1)),
        ("lock", None, "has space", timedelta(days=1)),
        ("lock", None, "k" * 129, timedelta(days=1)),
        ("lock", None, None, timedelta(seconds=30)),
        ("lock", None, None, timedelta(days=91)),
    ],
)
def test_a_malformed_send_is_refused(smart, kind, payload, key, expires_in):
    with assert_nothing_recorded(DeviceCommand.objects.all()), pytest.raises(ValidationFailed):
        device_command_send(actor=SYSTEM, sn=SN_A, kind=kind, payload=payload, key=key, expires_in=expires_in)


# ---------------------------------------------------------------------------------------------
# A device reaches only its own commands


def test_a_device_neither_reads_nor_answers_another_devices_commands(smart):
    mine = device_command_send(actor=SYSTEM, sn=SN_A, kind="wipe")
    assert device_commands_fetch(terminal=fresh(SN_B)) == []
    mine.refresh_from_db()
    assert mine.status == "queued"
    device_commands_fetch(terminal=fresh(SN_A))
    mine.refresh_from_db()
    with assert_nothing_recorded(mine), pytest.raises(NotFound):
        device_command_ack(terminal=fresh(SN_B), command_id=mine.pk, ok=True, result={"wiped": True})
    with assert_nothing_recorded(mine), pytest.raises(NotFound):
        device_command_ack(terminal=fresh(SN_B), command_id=mine.pk + 1000, ok=True)


# ---------------------------------------------------------------------------------------------
# Step-up and who may send what


@pytest.mark.parametrize("kind", ["wipe", "lock"])
def test_wipe_and_lock_need_a_fresh_step_up_from_a_person(smart, world, actor_of, kind):
    with assert_nothing_recorded(smart[SN_A], DeviceCommand.objects.all()), pytest.raises(StepUpRequired):
        device_command_send(actor=actor_of(world.user("admin")), sn=SN_A, kind=kind)
    command = device_command_send(actor=actor_of(world.user("admin"), stepped_up=True), sn=SN_A, kind=kind)
    assert command.created_by == world.user("admin")
    # Jobs and the system act on the provider's authority: no step-up.
    assert device_command_send(actor=CLOSURE, sn=SN_A, kind=kind).status == "queued"


def test_unlock_and_message_need_no_step_up(smart, world, actor_of):
    admin = actor_of(world.user("admin"))
    assert device_command_send(actor=admin, sn=SN_A, kind="unlock").status == "queued"
    assert (
        device_command_send(actor=admin, sn=SN_A, kind="message", payload={"text": "hi"}).status == "queued"
    )


# kind: {persona: expected} on merchant A's terminal (agent A). ok = sent; 404 = not visible to this
# persona; 403 = visible but not this role's command.
MATRIX: dict[str, dict[str, str]] = {
    "lock": {
        "admin": "ok",
        "reviewer": "403",
        "warehouse": "ok",
        "agent_a": "ok",
        "agent_a1": "404",
        "agent_b": "404",
        "merchant_a": "ok",  # a merchant locks its own device (as it may report it lost)
        "merchant_b": "404",
    },
    "unlock": {
        "admin": "ok",
        "reviewer": "403",
        "warehouse": "ok",
        "agent_a": "ok",
        "agent_a1": "404",
        "agent_b": "404",
        "merchant_a": "403",  # never: the lock may be the provider's
        "merchant_b": "404",
    },
    "wipe": {
        "admin": "ok",
        "reviewer": "403",
        "warehouse": "ok",
        "agent_a": "403",
        "agent_a1": "404",
        "agent_b": "404",
        "merchant_a": "403",
        "merchant_b": "404",
    },
    "message": {
        "admin": "ok",
        "reviewer": "403",
        "warehouse": "ok",
        "agent_a": "ok",
        "agent_a1": "404",
        "agent_b": "404",
        "merchant_a": "ok",
        "merchant_b": "404",
    },
    "update_params": {
        "admin": "ok",
        "reviewer": "403",
        "warehouse": "ok",
        "agent_a": "403",
        "agent_a1": "404",
        "agent_b": "404",
        "merchant_a": "403",
        "merchant_b": "404",
    },
}
PAYLOADS = {"message": {"text": "hello"}, "update_params": {"params": {"volume": 3}}}
CREDENTIALS = {
    "admin": "ok",
    "reviewer": "403",
    "warehouse": "ok",
    "agent_a": "403",
    "agent_a1": "404",
    "agent_b": "404",
    "merchant_a": "403",
    "merchant_b": "404",
}


def _outcome(call) -> str:
    try:
        call()
    except DomainError as exc:
        return str(exc.status)
    return "ok"


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("kind", list(MATRIX))
def test_who_may_send_which_command(smart, world, actor_of, persona, kind):
    actor = actor_of(world.user(persona), stepped_up=True)
    expected = MATRIX[kind][persona]

    def send() -> None:
        device_command_send(actor=actor, sn=SN_A, kind=kind, payload=PAYLOADS.get(kind))

    if expected == "ok":
        assert _outcome(send) == "ok"
        assert DeviceCommand.objects.filter(terminal=smart[SN_A], kind=kind).count() == 1
    else:
        with assert_nothing_recorded(smart[SN_A], DeviceCommand.objects.all()):
            assert _outcome(send) == expected


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_issue_and_revoke_device_credentials(smart, world, actor_of, persona):
    actor = actor_of(world.user(persona), stepped_up=True)
    expected = CREDENTIALS[persona]
    if expected == "ok":
        assert _outcome(lambda: device_credential_issue(actor=actor, sn=SN_A)) == "ok"
        assert _outcome(lambda: device_credential_revoke(actor=actor, sn=SN_A, reason="compromised")) == "ok"
        assert not DeviceCredential.objects.filter(terminal=smart[SN_A], revoked_at__isnull=True).exists()
        return
    credential, _secret = device_credential_issue(actor=SYSTEM, sn=SN_A)
    with assert_nothing_recorded(credential, DeviceCredential.objects.all()):
        assert _outcome(lambda: device_credential_issue(actor=actor, sn=SN_A)) == expected
        assert (
            _outcome(lambda: device_credential_revoke(actor=actor, sn=SN_A, reason="compromised")) == expected
        )


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_sees_a_terminals_commands(smart, world, persona):
    device_command_send(actor=SYSTEM, sn=SN_A, kind="message", payload={"text": "hi"})
    user = world.user(persona)
    if MATRIX["message"][persona] == "404":
        with pytest.raises(NotFound):
            device_commands_of(user, SN_A)
    else:
        terminal, commands = device_commands_of(user, SN_A)
        assert (terminal.sn, [c.kind for c in commands]) == (SN_A, ["message"])


def test_a_read_only_token_never_sends(smart, world):
    token = Actor(kind="token", user=world.user("admin"), label="ro", read_only=True)
    with assert_nothing_recorded(DeviceCommand.objects.all()), pytest.raises(DomainError) as refused:
        device_command_send(actor=token, sn=SN_A, kind="message", payload={"text": "hi"})
    assert refused.value.status == 403
