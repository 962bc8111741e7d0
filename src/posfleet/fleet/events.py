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


@dataclass(frozen=True, kw_only=True)
class TerminalsImported(DomainEvent):
    name = "terminals.imported"
    aggregate_type = "import_batch"

    count: int
