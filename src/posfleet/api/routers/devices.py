"""The device command channel of smart terminals, and its staff side.

- ``/device/...``: the device itself, signed in ONLY with its own credential
  (``Authorization: Device <key_id>:<secret>``, issued by ``POST /terminals/{sn}/device-credential``):
  a heartbeat, the commands waiting for it, and its answer to each. A missing, wrong or revoked
  credential answers 401 ``not_authenticated``; another device's command is 404. API tokens and
  sessions are not accepted here, and a device's credential is accepted nowhere else.
- ``/terminals/{sn}/commands`` and ``/terminals/{sn}/device-credential``: people and integrators, scoped
  like every terminal endpoint (another tenant's terminal is 404). Wipe and lock, and issuing or
  revoking a credential, need ``X-Step-Up-TOTP`` (403 ``step_up_required`` without it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema
from ninja.security.http import HttpAuthBase

from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, StepUpCode, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.api.problems import NotAuthenticated
from posfleet.fleet.selectors import (
    DeviceCommand,
    DeviceCredential,
    Terminal,
    device_command_by_key,
    device_commands_of,
    device_commands_waiting,
)
from posfleet.fleet.services import (
    device_authenticate,
    device_command_ack,
    device_command_send,
    device_commands_fetch,
    device_credential_issue,
    device_credential_revoke,
    device_heartbeat,
)
from posfleet.fleet.services.devices import DEFAULT_EXPIRY, STEP_UP_KINDS
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.middleware import client_ip

DEVICE_SCHEME = "device"

# ---------------------------------------------------------------------------------------------
# Who is calling: the device, by its own credential.


class DeviceAuth(HttpAuthBase):
    """``Authorization: Device <key_id>:<secret>``. A header of another scheme is no device's: 401
    (a bearer token or a session never reaches a device endpoint). The secret is never logged or
    echoed; every refusal answers the same."""

    openapi_scheme = DEVICE_SCHEME

    def __call__(self, request: HttpRequest) -> Terminal:
        scheme, _space, credentials = request.headers.get("Authorization", "").strip().partition(" ")
        key_id, colon, secret = credentials.strip().partition(":")
        terminal = device_authenticate(key_id, secret) if scheme.lower() == DEVICE_SCHEME and colon else None
        if terminal is None:
            raise NotAuthenticated(
                _("Send the device's own credential: Authorization: Device <key_id>:<secret>.")
            )
        return terminal


def _device(request: HttpRequest) -> tuple[Terminal, Actor]:
    """The signed-in device's terminal, and the actor its changes are recorded as."""
    terminal = getattr(request, "auth", None)
    if not isinstance(terminal, Terminal):
        raise NotAuthenticated()
    return terminal, Actor(
        kind="system",
        label=f"device {terminal.sn}",
        request_id=getattr(request, "request_id", ""),
        source_ip=client_ip(request),
    )


# ---------------------------------------------------------------------------------------------
# Bodies


class LocationIn(Schema):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="Radius of the fix, in metres.")


class HeartbeatIn(Schema):
    firmware: str = Field("", max_length=32, description="The firmware version the device runs.")
    location: LocationIn | None = None


class HeartbeatOut(Schema):
    sn: str
    server_time: datetime
    commands_waiting: int = Field(description="Commands to fetch (GET /device/commands) or answer.")


class DeviceCommandForDevice(Schema):
    id: int
    kind: DeviceCommand.Kind
    payload: dict[str, Any]
    status: DeviceCommand.State
    created_at: datetime
    expires_at: datetime


class DeviceCommandList(Schema):
    items: list[DeviceCommandForDevice]


class AckIn(Schema):
    ok: bool = Field(description="True: done. False: the device could not do it (say why in result).")
    result: dict[str, Any] = Field(default_factory=dict, description="What the device reports (kept).")


class DeviceCommandIn(Schema):
    kind: DeviceCommand.Kind
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description='message: {"text"}; lock: optional {"text"}; update_params: {"params": {...}}; '
        "unlock and wipe: {}.",
    )
    key: str | None = Field(
        None,
        max_length=128,
        description="Idempotency key of the command: a repeat with the same key returns the same command.",
    )
    expires_in_minutes: int = Field(
        int(DEFAULT_EXPIRY.total_seconds() // 60),
        ge=1,
        le=90 * 24 * 60,
        description="Expires unless answered within this many minutes.",
    )


class DeviceCommandOut(Schema):
    id: int
    sn: str
    kind: DeviceCommand.Kind
    kind_label: str
    payload: dict[str, Any]
    status: DeviceCommand.State
    status_label: str
    key: str | None
    sent_by: str
    created_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    expires_at: datetime
    result: dict[str, Any] | None = Field(description="What the device reported with its answer.")


class DeviceCommandPage(Schema):
    items: list[DeviceCommandOut]
    next_cursor: str | None


class DeviceCredentialOut(Schema):
    sn: str
    key_id: str
    issued_at: datetime
    revoked_at: datetime | None
    revoked_reason: str


class DeviceCredentialCreatedOut(DeviceCredentialOut):
    secret: str | None = Field(
        description="The secret, shown once: the device sends `Authorization: Device <key_id>:<secret>`. "
        "A replay (same Idempotency-Key) answers null: it is not stored."
    )


class CredentialRevokeIn(Schema):
    reason: DeviceCredential.RevokeReason = Field(description="Not `reissued`: issuing a new one says that.")
    note: str = Field("", max_length=2000)


class CredentialRevokedOut(Schema):
    revoked: bool = Field(description="False when the terminal had no live credential (nothing changed).")
    credential: DeviceCredentialOut | None


def _for_device(c: DeviceCommand) -> DeviceCommandForDevice:
    return DeviceCommandForDevice(
        id=c.pk,
        kind=DeviceCommand.Kind(c.kind),
        payload=dict(c.payload or {}),
        status=DeviceCommand.State(c.status),
        created_at=c.created_at,
        expires_at=c.expires_at,
    )


def _command(c: DeviceCommand, sn: str) -> DeviceCommandOut:
    kind, state = DeviceCommand.Kind(c.kind), DeviceCommand.State(c.status)
    return DeviceCommandOut(
        id=c.pk,
        sn=sn,
        kind=kind,
        kind_label=str(kind.label),
        payload=dict(c.payload or {}),
        status=state,
        status_label=str(state.label),
        key=c.key,
        sent_by=c.actor_label,
        created_at=c.created_at,
        delivered_at=c.delivered_at,
        acknowledged_at=c.acknowledged_at,
        expires_at=c.expires_at,
        result=c.result,
    )


def _credential(c: DeviceCredential, sn: str, secret: str | None = None) -> DeviceCredentialCreatedOut:
    return DeviceCredentialCreatedOut(
        sn=sn,
        key_id=c.key_id,
        issued_at=c.issued_at,
        revoked_at=c.revoked_at,
        revoked_reason=c.revoked_reason,
        secret=secret,
    )


# ---------------------------------------------------------------------------------------------
# The device's side

device_router = Router(tags=["device channel"], auth=[DeviceAuth()])


@device_router.post(
    "/device/heartbeat",
    summary="Device: heartbeat",
    response=s.responses({200: HeartbeatOut}, (400, 401, 422)),
)
def device_heartbeat_create(request: HttpRequest, body: HeartbeatIn) -> HeartbeatOut:
    """The device is alive: its firmware version and, when it has a fix, where it is. The answer says
    how many commands wait for it."""
    terminal, device = _device(request)
    location = body.location.model_dump(exclude_none=True) if body.location is not None else None
    device_heartbeat(terminal=terminal, firmware=body.firmware, location=location, actor=device)
    at = now()
    return HeartbeatOut(
        sn=terminal.sn, server_time=at, commands_waiting=device_commands_waiting(terminal, at)
    )


@device_router.get(
    "/device/commands",
    summary="Device: fetch my commands",
    response=s.responses({200: DeviceCommandList}, (401, 422)),
)
def device_commands_list(request: HttpRequest) -> DeviceCommandList:
    """The commands to carry out, oldest first; they are now `delivered`. A command not answered yet
    comes again on the next fetch (answer each with POST /device/commands/{id}/ack)."""
    terminal, device = _device(request)
    return DeviceCommandList(
        items=[_for_device(c) for c in device_commands_fetch(terminal=terminal, actor=device)]
    )


@device_router.post(
    "/device/commands/{command_id}/ack",
    summary="Device: answer a command",
    response=s.responses({200: DeviceCommandForDevice}, (400, 401, 404, 409, 422)),
)
def device_command_ack_create(request: HttpRequest, command_id: int, body: AckIn) -> DeviceCommandForDevice:
    """Done (`ok: true` → acknowledged) or not (`ok: false` → failed), with what the device reports.
    Answering again changes nothing (the first answer stands); another device's command is 404."""
    terminal, device = _device(request)
    command = device_command_ack(
        terminal=terminal, command_id=command_id, ok=body.ok, result=body.result, actor=device
    )
    return _for_device(command)


# ---------------------------------------------------------------------------------------------
# People and integrators

router = Router(tags=["device commands"])


@router.get(
    "/terminals/{sn}/commands",
    summary="A terminal's device commands",
    response=s.responses({200: DeviceCommandPage}, s.READ_ONE),
)
def terminal_commands_list(request: HttpRequest, sn: str, page: Query[PageQuery]) -> DeviceCommandPage:
    """The commands sent to the terminal's device, newest first, with their status and the device's
    answer."""
    who = actor(request)
    assert who.user is not None
    terminal, commands = device_commands_of(who.user, sn)
    rows, cursor = keyset(commands, list_name=f"commands:{terminal.sn}", key="id", page=page, descending=True)
    return DeviceCommandPage(items=[_command(c, terminal.sn) for c in rows], next_cursor=cursor)


@router.post(
    "/terminals/{sn}/commands",
    summary="Send a command to a terminal's device",
    response=s.responses({200: DeviceCommandOut, 201: DeviceCommandOut}, s.WRITE),
)
def terminal_commands_create(
    request: HttpRequest,
    sn: str,
    body: DeviceCommandIn,
    idempotency_key: IdempotencyKey = None,
    step_up: StepUpCode = None,
) -> HttpResponse:
    """Queue a command (lock, unlock, wipe, message, update_params) for the device: 201. With a `key`
    already used for the same command, that command is answered (200) and nothing is sent again.
    Wipe and lock need X-Step-Up-TOTP."""

    def work(who: Actor) -> Outcome:
        existed = body.key is not None and device_command_by_key(body.key) is not None
        command = device_command_send(
            actor=who,
            sn=sn,
            kind=body.kind,
            payload=body.payload,
            key=body.key,
            expires_in=timedelta(minutes=body.expires_in_minutes),
        )
        return Outcome(200 if existed else 201, presenters.dump(_command(command, command.terminal.sn)))

    return execute(
        request,
        actor(request),
        work,
        key=idempotency_key,
        step_up_needed=body.kind in STEP_UP_KINDS,
        step_up_code=step_up,
    )


@router.post(
    "/terminals/{sn}/device-credential",
    summary="Issue a device credential",
    response=s.responses({201: DeviceCredentialCreatedOut}, s.WRITE),
)
def terminal_device_credential_create(
    request: HttpRequest, sn: str, idempotency_key: IdempotencyKey = None, step_up: StepUpCode = None
) -> HttpResponse:
    """Issue the credential the terminal's device signs in to the device channel with; the previous
    one stops working at once. The secret is in this answer only (a replay answers `secret: null`).
    Needs X-Step-Up-TOTP."""

    def work(who: Actor) -> Outcome:
        credential, secret = device_credential_issue(actor=who, sn=sn)
        return Outcome(
            201,
            presenters.dump(_credential(credential, credential.terminal.sn, secret)),
            stored=presenters.dump(_credential(credential, credential.terminal.sn)),
        )

    return execute(
        request, actor(request), work, key=idempotency_key, step_up_needed=True, step_up_code=step_up
    )


@router.post(
    "/terminals/{sn}/device-credential/revoke",
    summary="Revoke the device credential",
    response=s.responses({200: CredentialRevokedOut}, s.WRITE),
)
def terminal_device_credential_revoke(
    request: HttpRequest,
    sn: str,
    body: CredentialRevokeIn,
    idempotency_key: IdempotencyKey = None,
    step_up: StepUpCode = None,
) -> HttpResponse:
    """Revoke the terminal's live device credential: the device is refused from its next request.
    Revoking when there is none changes nothing (`revoked: false`). Needs X-Step-Up-TOTP."""

    def work(who: Actor) -> Outcome:
        credential = device_credential_revoke(actor=who, sn=sn, reason=body.reason, note=body.note)
        out = None
        if credential is not None:
            out = DeviceCredentialOut(
                **_credential(credential, credential.terminal.sn).model_dump(exclude={"secret"})
            )
        return Outcome(200, presenters.dump(CredentialRevokedOut(revoked=out is not None, credential=out)))

    return execute(
        request, actor(request), work, key=idempotency_key, step_up_needed=True, step_up_code=step_up
    )
