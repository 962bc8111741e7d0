"""Events the fleet publishes to the outbox (in the transaction of the change)."""

from __future__ import annotations

from dataclasses import dataclass

from posfleet.platform.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class TerminalStatusChanged(DomainEvent):
    name = "terminal.status_changed"
    aggregate_type = "terminal"

    command: str
    from_status: str
    to_status: str
    reason: str = ""
    tid: str | None = None
    merchant: str | None = None
    agent: str | None = None
    reactivate_until: str = ""  # deactivate: the end of the reactivation window (ISO date and time)


@dataclass(frozen=True, kw_only=True)
class TerminalsImported(DomainEvent):
    name = "terminals.imported"
    aggregate_type = "import_batch"

    count: int


@dataclass(frozen=True, kw_only=True)
class DeviceCredentialChanged(DomainEvent):
    """A smart terminal's device credential was issued (``revoked_key_id``: the one it replaced) or
    revoked (``change`` "revoked", with the reason)."""

    name = "device.credential_changed"
    aggregate_type = "terminal"

    change: str  # "issued" or "revoked"
    key_id: str
    revoked_key_id: str = ""
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class DeviceFirmwareChanged(DomainEvent):
    name = "device.firmware_changed"
    aggregate_type = "terminal"

    from_version: str
    to_version: str


@dataclass(frozen=True, kw_only=True)
class DeviceCommandChanged(DomainEvent):
    """A device command moved: sent (``queued``), fetched by the device (``delivered``), answered
    (``acknowledged`` or ``failed``) or given up on (``expired``). ``key`` is the sender's idempotency
    key ("closure:<case>:wipe"), so a sender finds its own command's answer by it."""

    name = "device.command_changed"
    aggregate_type = "device_command"

    sn: str
    kind: str
    status: str
    key: str = ""


@dataclass(frozen=True, kw_only=True)
class RelocationAlertChanged(DomainEvent):
    """A terminal's relocation alert (移机告警) was raised (``status`` "open": a heartbeat reported a
    position ``distance_m`` from its store) or reviewed (``confirmed_moved`` or ``dismissed``)."""

    name = "device.relocation_alert_changed"
    aggregate_type = "relocation_alert"

    sn: str
    status: str
    distance_m: int
    store: str  # the store's code
    merchant: str | None = None  # MID
    source: str = ""  # device_channel or gateway
