"""A terminal replayed through its planned history, changing its fields exactly as fleet.services does
and returning the audit entry of each step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from posfleet.audit.services import Entry
from posfleet.demo.fleet.state import DemoState
from posfleet.demo.plan import TerminalPlan
from posfleet.fleet.services import EVENT_OF
from posfleet.fleet.states import TRANSITIONS, Command, Status


class TerminalReplay:
    """A terminal replayed through its history, changing fields exactly as fleet.services does."""

    def __init__(self, plan: TerminalPlan, demo: DemoState) -> None:
        self.plan = plan
        self.status = Status.IN_STOCK
        self.agent: str | None = None
        self.merchant: str | None = None
        self.store: str | None = None
        self.tid: str | None = None
        self.status_reason = ""
        self.changed_at: datetime | None = None
        self.deactivated_at: datetime | None = None
        self.times: list[datetime] = []  # of each step, as applied
        self.demo = demo

    def snapshot(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "agent": self.agent,
            "merchant": self.merchant,
            "store": self.store,
            "tid": self.tid,
        }

    def apply(self, step_index: int, at: datetime) -> Entry:
        step = self.plan.steps[step_index]
        command = step.command
        before = self.snapshot()
        demo = self.demo
        if command == Command.ALLOCATE:
            assert self.plan.agent is not None
            self.agent = demo.plan.agents[self.plan.agent].code
        elif command == Command.PULL_BACK:
            self.agent = None
        elif command == Command.BIND:
            assert self.plan.merchant is not None
            assert self.plan.store is not None
            merchant = demo.plan.merchants[self.plan.merchant]
            self.merchant = merchant.mid
            self.store = merchant.stores[self.plan.store].code
            self.tid = demo.next_tid()
        elif command == Command.REFURBISH:
            self.agent = self.merchant = self.store = self.tid = None
        self.status = TRANSITIONS[(self.status, command)]
        self.status_reason = step.reason
        self.changed_at = at
        self.times.append(at)
        if command == Command.DEACTIVATE:
            self.deactivated_at = at
        elif command in {Command.REACTIVATE, Command.DEREGISTER}:
            self.deactivated_at = None
        return Entry(
            event_type=EVENT_OF[command],
            subject_type="terminal",
            subject_id=self.plan.sn,
            reason=step.reason,
            note=step.note,
            before=before,
            after={**self.snapshot(), **step.extra},
            occurred_at=at,
        )
