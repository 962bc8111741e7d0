"""The device command channel of smart terminals (智能POS): credentials, heartbeats and commands.

A smart terminal polls the channel (``/api/v1/device/...``) with its own credential: it reports a
heartbeat, fetches the commands waiting for it and answers each one. People and jobs send the
commands (lock, unlock, wipe, message, update_params); a closure sends a wipe with the key
``"closure:<case>:wipe"``, keeps the device's answer as evidence, and revokes the credential.

Each change runs in one transaction with its audit row and its outbox event (STYLE §6, §7), and a
refusal raises before anything is written. A command's status moves only here, always by
compare-and-set (``UPDATE ... WHERE status = <the status read>``), so a device answering while the
expiry sweep runs leaves exactly one of the two outcomes.

Heartbeats are telemetry, not changes of record: they move ``last_heartbeat_at`` and
``last_location`` and nothing else is written (a fleet polling every 30 seconds would otherwise hold
the audit chain's head for every device, every time); a heartbeat that reports new firmware, or a
position far from the terminal's store (a relocation alert), is a change and is recorded. The device
channel's ``device_heartbeat`` and the ISO 8583 gateway both go through one service,
``fleet/services/health.py``'s ``terminal_heartbeat``.

The device itself acts as ``Actor.system("device <SN>")`` (it holds no user): its credential was
checked by the caller (``device_authenticate``) and it reaches only its own commands.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from posfleet.audit.services import Entry, clean_text, record, record_many
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.events import DeviceCommandChanged, DeviceCredentialChanged
from posfleet.fleet.models import DeviceCommand, DeviceCredential, HeartbeatSource, Terminal
from posfleet.fleet.models import Kind as ModelKind
from posfleet.fleet.rules import device_command_permission
from posfleet.fleet.services.device_input import check_key, check_kind, check_payload, check_result
from posfleet.fleet.services.health import terminal_heartbeat
from posfleet.fleet.services.lifecycle import organisations_of, terminal_lock
from posfleet.iam.stepup import require_fresh_step_up
from posfleet.platform import clock
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    Conflict,
    DomainError,
    GuardFailed,
    NotFound,
    TransitionNotAllowed,
    ValidationFailed,
)
from posfleet.platform.events import publish

CommandKind = DeviceCommand.Kind
State = DeviceCommand.State
RevokeReason = DeviceCredential.RevokeReason

KEY_ID_PREFIX = "dk_"
SECRET_BYTES = 32  # the secret is 32 random bytes, URL-safe base64 (43 characters)
MAX_SECRET = 128

DEFAULT_EXPIRY = timedelta(days=7)
MIN_EXPIRY = timedelta(minutes=1)
MAX_EXPIRY = timedelta(days=90)

# Commands a person sends only with a fresh step-up: they take the device out of its merchant's hands.
STEP_UP_KINDS = frozenset({CommandKind.WIPE, CommandKind.LOCK})
PENDING = (State.QUEUED, State.DELIVERED)
ANSWERED = (State.ACKNOWLEDGED, State.FAILED)

EXPIRE_CHUNK = 500


class CommandKeyReused(DomainError):
    """The key of a send names a command for another terminal, kind or payload."""

    code = "idempotency_key_reused"
    status = 422
    title = gettext_lazy("This key was already used for a different device command.")


# ---------------------------------------------------------------------------------------------
# Credentials


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _device_actor(terminal: Terminal, actor: Actor | None) -> Actor:
    return actor if actor is not None else Actor.system(f"device {terminal.sn}")


def _require_smart(terminal: Terminal) -> None:
    """Only smart terminals poll the device channel: a command for another kind would never arrive."""
    if terminal.model.kind != ModelKind.SMART:
        raise GuardFailed(_("Only smart terminals have a device command channel."), guard="smart_terminal")


def live_credential(terminal: Terminal) -> DeviceCredential | None:
    """The terminal's unrevoked credential, if any (at most one: ``device_credential_one_live``)."""
    return DeviceCredential.objects.filter(terminal=terminal, revoked_at__isnull=True).order_by().first()


def device_credential_issue(*, actor: Actor, sn: str) -> tuple[DeviceCredential, str]:
    """Issue a new credential for terminal ``sn``'s device and return it with its secret.

    The secret is in this answer only (it is stored as its SHA-256); a previous credential is revoked
    (``reissued``) in the same transaction, so the device signs in with the new one from now on. A
    person needs a fresh step-up: it is a key revocation too.
    """
    with transaction.atomic():
        terminal = terminal_lock(actor, sn)
        actor.require("fleet.manage_device_credential", terminal)
        _require_smart(terminal)
        require_fresh_step_up(actor)
        at = clock.now()
        previous = live_credential(terminal)
        if previous is not None:
            DeviceCredential.objects.filter(pk=previous.pk, revoked_at__isnull=True).update(
                revoked_at=at, revoked_reason=RevokeReason.REISSUED
            )
        secret = secrets.token_urlsafe(SECRET_BYTES)
        credential = DeviceCredential.objects.create(
            terminal=terminal,
            key_id=KEY_ID_PREFIX + secrets.token_hex(8),
            secret_hash=_digest(secret),
            issued_at=at,
            issued_by=clean_text(actor.label, 150),
        )
        revoked = previous.key_id if previous is not None else ""
        publish(
            [
                DeviceCredentialChanged(
                    aggregate_id=terminal.sn,
                    organisation_ids=organisations_of(terminal),
                    change="issued",
                    key_id=credential.key_id,
                    revoked_key_id=revoked,
                )
            ],
            occurred_at=at,
        )
        record(
            actor,
            Entry(
                event_type=EventType.DEVICE_CREDENTIAL_ISSUED,
                subject_type="terminal",
                subject_id=terminal.sn,
                before={"key_id": revoked} if revoked else {},
                after={"key_id": credential.key_id},
                occurred_at=at,
            ),
        )
    return credential, secret


def device_credential_revoke(
    *, actor: Actor, sn: str, reason: str, note: str = ""
) -> DeviceCredential | None:
    """Revoke terminal ``sn``'s device credential: the device is refused (401) from its next request.

    ``reason`` is one of ``DeviceCredential.RevokeReason`` (``closure`` at closure; ``other`` needs a
    note). Idempotent: with no live credential nothing is written and None is returned, so a closure
    step may run it again. A person needs a fresh step-up (a key revocation).
    """
    note = clean_text(note)
    allowed = [r for r in RevokeReason.values if r != RevokeReason.REISSUED]
    with transaction.atomic():
        terminal = terminal_lock(actor, sn)
        actor.require("fleet.manage_device_credential", terminal)
        if reason not in allowed:
            raise ValidationFailed(
                _("Unknown reason “%(reason)s”.") % {"reason": reason[:48]}, field="reason", allowed=allowed
            )
        if reason == RevokeReason.OTHER and not note.strip():
            raise ValidationFailed(_("Say in the note what the other reason is."), field="note")
        require_fresh_step_up(actor)
        credential = live_credential(terminal)
        if credential is None:
            return None
        at = clock.now()
        if not DeviceCredential.objects.filter(pk=credential.pk, revoked_at__isnull=True).update(
            revoked_at=at, revoked_reason=reason
        ):
            raise Conflict()
        credential.refresh_from_db()
        publish(
            [
                DeviceCredentialChanged(
                    aggregate_id=terminal.sn,
                    organisation_ids=organisations_of(terminal),
                    change="revoked",
                    key_id=credential.key_id,
                    reason=reason,
                )
            ],
            occurred_at=at,
        )
        record(
            actor,
            Entry(
                event_type=EventType.DEVICE_CREDENTIAL_REVOKED,
                subject_type="terminal",
                subject_id=terminal.sn,
                reason=reason,
                note=note,
                before={"key_id": credential.key_id},
                after={"key_id": credential.key_id, "revoked": True},
                occurred_at=at,
            ),
        )
    return credential


def device_authenticate(key_id: str, secret: str) -> Terminal | None:
    """The terminal whose live credential is ``key_id`` with ``secret``, or None (unknown, revoked or
    wrong: the caller answers all three the same). The secret is compared in constant time."""
    if not key_id or not secret or len(key_id) > 32 or len(secret) > MAX_SECRET:
        return None
    rows = (  # the key id is unique: no order to compile
        DeviceCredential.objects.select_related(
            "terminal",
            "terminal__model",
            "terminal__agent",
            "terminal__agent__organisation",
            "terminal__merchant",
            "terminal__merchant__organisation",
        )
        .filter(key_id=key_id, revoked_at__isnull=True)
        .order_by()[:1]
    )
    credential = next(iter(rows), None)
    digest = _digest(secret)
    if credential is None:
        hmac.compare_digest(digest, digest)  # about the same time as a wrong secret
        return None
    if not hmac.compare_digest(credential.secret_hash, digest):
        return None
    return credential.terminal


# ---------------------------------------------------------------------------------------------
# Heartbeats


def device_heartbeat(
    *,
    terminal: Terminal,
    firmware: str = "",
    location: Mapping[str, Any] | None = None,
    actor: Actor | None = None,
) -> Terminal:
    """The device of ``terminal`` says, over the device channel, that it is alive, with its firmware
    version and (optionally) where it is: ``fleet.services.terminal_heartbeat`` with
    ``source="device_channel"`` (new firmware and a position far from the store are recorded there)."""
    return terminal_heartbeat(
        terminal=terminal,
        firmware=firmware,
        location=location,
        source=HeartbeatSource.DEVICE_CHANNEL,
        actor=_device_actor(terminal, actor),
    ).terminal


# ---------------------------------------------------------------------------------------------
# Commands


def _same_command(existing: DeviceCommand, terminal: Terminal, kind: str, payload: dict[str, Any]) -> bool:
    return existing.terminal_id == terminal.pk and existing.kind == kind and existing.payload == payload


def _command_entry(
    event_type: EventType,
    command: DeviceCommand,
    sn: str,
    *,
    before: str,
    at: datetime,
    **after: Any,
) -> Entry:
    """An audit row of a command's move, on the terminal's timeline. ``command_status`` (never
    ``status``: that key is the terminal's on a timeline)."""
    return Entry(
        event_type=event_type,
        subject_type="terminal",
        subject_id=sn,
        before={"command_status": before} if before else {},
        after={
            "command": command.pk,
            "kind": command.kind,
            "key": command.key or "",
            "command_status": command.status,
            **after,
        },
        occurred_at=at,
    )


def _command_event(command: DeviceCommand, terminal: Terminal) -> DeviceCommandChanged:
    return DeviceCommandChanged(
        aggregate_id=str(command.pk),
        organisation_ids=organisations_of(terminal),
        sn=terminal.sn,
        kind=command.kind,
        status=command.status,
        key=command.key or "",
    )


def device_command_send(
    *,
    actor: Actor,
    sn: str,
    kind: str,
    payload: Mapping[str, Any] | None = None,
    key: str | None = None,
    expires_in: timedelta = DEFAULT_EXPIRY,
) -> DeviceCommand:
    """Queue a command for terminal ``sn``'s device; it is delivered when the device next polls.

    ``key`` makes the send idempotent: a repeat with the same key (same terminal, kind and payload)
    returns the command already sent and records nothing; the same key for anything else is refused
    (``idempotency_key_reused``). Wipe and lock need a fresh step-up from a person (jobs and the
    system pass). The command expires ``expires_in`` from now (1 minute to 90 days) unless answered.
    """
    command_kind = check_kind(kind)
    key = check_key(key)
    if not MIN_EXPIRY <= expires_in <= MAX_EXPIRY:
        raise ValidationFailed(_("A command expires after 1 minute to 90 days."), field="expires_in")
    with transaction.atomic():
        terminal = terminal_lock(actor, sn)
        actor.require(device_command_permission(command_kind), terminal)
        clean = check_payload(command_kind, payload)
        _require_smart(terminal)
        if command_kind in STEP_UP_KINDS:
            require_fresh_step_up(actor)
        if key is not None:
            existing = DeviceCommand.objects.filter(key=key).first()
            if existing is not None:
                if not _same_command(existing, terminal, command_kind, clean):
                    raise CommandKeyReused()
                return existing
        at = clock.now()
        try:
            with transaction.atomic():
                command = DeviceCommand.objects.create(
                    terminal=terminal,
                    kind=command_kind,
                    payload=clean,
                    key=key,
                    created_by=actor.user if not actor.is_system else None,
                    actor_label=clean_text(actor.label, 150),
                    created_at=at,
                    expires_at=at + expires_in,
                )
        except IntegrityError:
            # Another send with the same key committed first (the key is unique): that one stands.
            existing = DeviceCommand.objects.filter(key=key).first()
            if existing is None or not _same_command(existing, terminal, command_kind, clean):
                raise CommandKeyReused() from None
            return existing
        publish([_command_event(command, terminal)], occurred_at=at)
        record(
            actor,
            _command_entry(
                EventType.DEVICE_COMMAND_SENT,
                command,
                terminal.sn,
                before="",
                at=at,
                payload=clean,
                expires_at=command.expires_at.isoformat(),
            ),
        )
    return command


def device_commands_fetch(*, terminal: Terminal, actor: Actor | None = None) -> list[DeviceCommand]:
    """The commands ``terminal``'s device has to carry out, oldest first: the queued ones become
    ``delivered`` (compare-and-set; recorded once, at first delivery) and those delivered before and
    not answered yet come again, so a device that lost an answer gets its commands once more
    (delivery is at least once; an acknowledgement is idempotent). Expired ones are left out."""
    at = clock.now()
    device = _device_actor(terminal, actor)
    with transaction.atomic():
        queued = list(
            DeviceCommand.objects.filter(terminal=terminal, status=State.QUEUED, expires_at__gt=at)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        moved = [
            pk
            for pk in queued
            if DeviceCommand.objects.filter(pk=pk, status=State.QUEUED).update(
                status=State.DELIVERED, delivered_at=at
            )
        ]
        commands = list(
            DeviceCommand.objects.filter(
                terminal=terminal, status=State.DELIVERED, expires_at__gt=at
            ).order_by("pk")
        )
        fresh = [c for c in commands if c.pk in set(moved)]
        if fresh:
            publish([_command_event(c, terminal) for c in fresh], occurred_at=at)
            record_many(
                device,
                [
                    _command_entry(
                        EventType.DEVICE_COMMAND_DELIVERED, c, terminal.sn, before=State.QUEUED, at=at
                    )
                    for c in fresh
                ],
            )
    return commands


def device_command_ack(
    *,
    terminal: Terminal,
    command_id: int,
    ok: bool,
    result: Mapping[str, Any] | None = None,
    actor: Actor | None = None,
) -> DeviceCommand:
    """The device of ``terminal`` answers command ``command_id``: done (``acknowledged``) or not
    (``failed``), with what it reports in ``result`` (kept as the evidence).

    Only the command's own device answers it: another terminal's command is ``NotFound`` and nothing
    changes. A repeated answer returns the command as it is (the first answer stands). A delivered
    command that expired before its answer arrived still takes it (the device did act; expiry only
    means nobody waits any more); a command never delivered cannot be answered (409).
    """
    clean = check_result(result)
    with transaction.atomic():
        command = (
            DeviceCommand.objects.select_for_update()
            .filter(pk=command_id, terminal_id=terminal.pk)
            .order_by()
            .first()
        )
        if command is None:
            raise NotFound()
        if command.status in ANSWERED:
            return command
        late = command.status == State.EXPIRED and command.delivered_at is not None
        if command.status != State.DELIVERED and not late:
            raise TransitionNotAllowed(
                _("This command was not delivered to the device, so it cannot be answered."),
                current_status=command.status,
            )
        before = command.status
        target = State.ACKNOWLEDGED if ok else State.FAILED
        at = clock.now()
        if not DeviceCommand.objects.filter(pk=command.pk, status=before).update(
            status=target, acknowledged_at=at, result=clean
        ):
            raise Conflict()
        command.status, command.acknowledged_at, command.result = target, at, clean
        publish([_command_event(command, terminal)], occurred_at=at)
        event = EventType.DEVICE_COMMAND_ACKNOWLEDGED if ok else EventType.DEVICE_COMMAND_FAILED
        extra: dict[str, Any] = {"result": clean}
        if late:
            extra["late"] = True
        record(
            _device_actor(terminal, actor),
            _command_entry(event, command, terminal.sn, before=before, at=at, **extra),
        )
    return command


def device_commands_expire(now: datetime | None = None, *, actor: Actor | None = None) -> int:
    """Give up on the commands not answered by their ``expires_at`` (queued or delivered → expired),
    in chunks, each one transaction; returns how many. Running it twice changes nothing more."""
    at = now or clock.now()
    who = actor if actor is not None else Actor.job("device_commands_expire")
    due = list(
        DeviceCommand.objects.filter(status__in=PENDING, expires_at__lte=at)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    expired = 0
    for start in range(0, len(due), EXPIRE_CHUNK):
        chunk = due[start : start + EXPIRE_CHUNK]
        with transaction.atomic():
            rows = list(
                DeviceCommand.objects.select_for_update(of=("self",))
                .select_related(
                    "terminal",
                    "terminal__agent",
                    "terminal__agent__organisation",
                    "terminal__merchant",
                    "terminal__merchant__organisation",
                )
                .filter(pk__in=chunk, status__in=PENDING, expires_at__lte=at)
                .order_by("pk")
            )
            moved: list[tuple[DeviceCommand, str]] = []
            for command in rows:
                before = command.status
                if DeviceCommand.objects.filter(pk=command.pk, status=before).update(status=State.EXPIRED):
                    command.status = State.EXPIRED
                    moved.append((command, before))
            if not moved:
                continue
            publish([_command_event(c, c.terminal) for c, _before in moved], occurred_at=at)
            record_many(
                who,
                [
                    _command_entry(EventType.DEVICE_COMMAND_EXPIRED, c, c.terminal.sn, before=before, at=at)
                    for c, before in moved
                ],
            )
            expired += len(moved)
    return expired
