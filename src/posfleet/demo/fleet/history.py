"""The demo's history: every event of the story (people, agents, merchants and stores, deliveries,
each terminal's steps, and the events other parts of the demo add), placed on its day in a slot of its
actor, then built into audit entries in time order.

Times: every event is placed on its day in a slot of its actor (jobs at night, the admin early, the
warehouse in the morning, each agent in its own slice of the afternoon, merchants in the evening), so
sorting by (day, slot) is also sorting by time, and consecutive events of one actor — one call of
``record_many`` — are long runs.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from posfleet.audit.services import Entry
from posfleet.audit.vocabulary import EventType
from posfleet.demo.fleet.replay import TerminalReplay
from posfleet.demo.fleet.state import MONEY, DemoState, batch_name
from posfleet.demo.plan import ACTOR_OF, Plan, TerminalPlan
from posfleet.fleet.services import TID_COUNTER
from posfleet.fleet.states import Command
from posfleet.iam.models import Organisation, Role, User
from posfleet.platform import counters

# ---------------------------------------------------------------------------------------------
# Slots: (order within a day, start in seconds after midnight, width in seconds).


def _slots(plan: Plan) -> dict[tuple[str, ...], tuple[int, int, int]]:
    slots: dict[tuple[str, ...], tuple[int, int, int]] = {
        ("job", "expiry-sweep"): (0, 2 * 3600, 1800),
        ("system",): (1, 7 * 3600, 1800),
        MONEY: (2, 7 * 3600 + 1800, 3600),
        ("admin",): (3, 8 * 3600 + 1800, 5400),
        ("warehouse",): (4, 10 * 3600, 3 * 3600),
    }
    width = 5 * 3600 // len(plan.agents)
    for agent in plan.agents:
        slots[("user", agent.username)] = (10 + agent.index, 13 * 3600 + agent.index * width, width)
    width = 2 * 3600 // max(1, len(plan.merchant_usernames))
    for number, username in enumerate(plan.merchant_usernames):
        slots[("user", username)] = (1000 + number, 19 * 3600 + number * width, width)
    return slots


@dataclass
class _Event:
    ago: int
    order: int
    seq: tuple[int, ...]
    actor: tuple[str, ...]
    make: Callable[[datetime], Entry]  # builds the entry once its time is known
    at: datetime | None = None
    # Built after the rows it names are written (money: contract and deposit ids).
    deferred: bool = False
    entry: Entry | None = None


# An event another part of the demo adds to the history: (days ago, actor, order key, entry maker).
Extra = tuple[int, tuple[str, ...], tuple[int, ...], Callable[[datetime], Entry]]


class History(DemoState):
    """The history, as audit entries in time order."""

    def events(self, extra: Sequence[Extra] = ()) -> list[_Event]:
        """Every event of the history with its time; ``extra`` ones are built after the rows they
        name (``deferred``)."""
        plan = self.plan
        slots = _slots(plan)
        admin, warehouse, system = ("user", "admin"), ("user", "warehouse"), ("system",)
        slots[admin] = slots[("admin",)]
        slots[warehouse] = slots[("warehouse",)]
        events: list[_Event] = []

        def add(
            ago: int,
            actor: tuple[str, ...],
            seq: tuple[int, ...],
            make: Callable[[datetime], Entry],
            deferred: bool = False,
        ) -> None:
            events.append(_Event(ago, slots[actor][0], seq, actor, make, deferred=deferred))

        # Users and two-factor enrolment, on the day their organisation was created.
        for number, (username, role, org, ago) in enumerate(self.people):
            actor = system if role in {Role.ADMIN, Role.REVIEWER, Role.WAREHOUSE} else admin
            user = self.users[username]
            add(ago, actor, (3, number, 0), _user_created(user, role, org))
            add(ago, actor, (3, number, 1), _mfa_enrolled(user))
        for agent in plan.agents:
            parent = plan.agents[agent.parent].code if agent.parent is not None else None
            add(
                agent.created,
                admin,
                (1, agent.index),
                _entry(EventType.AGENT_CREATED, "agent", agent.code, {"name": agent.name, "parent": parent}),
            )
        for merchant in plan.merchants:
            after = {"agent": plan.agents[merchant.agent].code, "kind": merchant.kind, "mcc": merchant.mcc}
            add(
                merchant.created,
                admin,
                (2, merchant.index, 0),
                _entry(EventType.MERCHANT_CREATED, "merchant", merchant.mid, after),
            )
            for n, store in enumerate(merchant.stores, start=1):
                add(
                    merchant.created,
                    admin,
                    (2, merchant.index, n),
                    _entry(
                        EventType.STORE_CREATED,
                        "store",
                        f"{merchant.mid}/{store.code}",
                        {"name": store.name, "city": store.city},
                    ),
                )
        # Deliveries: one import event per lot (as terminals_register_batch writes per chunk).
        by_lot: dict[int, list[TerminalPlan]] = {}
        for terminal in plan.terminals:
            by_lot.setdefault(terminal.lot, []).append(terminal)
        self.lot_members = {lot: sorted(members, key=lambda t: t.sn) for lot, members in by_lot.items()}
        for number, lot in enumerate(plan.lots):
            add(lot, warehouse, (0, number), self._lot_entry(lot))
        # Terminal histories.
        self.replays = [TerminalReplay(t, self) for t in plan.terminals]
        for replay in self.replays:
            for i, step in enumerate(replay.plan.steps):
                who = self._actor_of(replay.plan, step.command, step.reason)
                add(step.ago, who, (5, replay.plan.index, i), _apply(replay, i))
        for ago, doer, seq, make in extra:
            add(ago, doer, (6, *seq), make, deferred=True)
        events.sort(key=lambda e: (-e.ago, e.order, e.seq))
        # Times: spread each (day, actor) run evenly over the actor's slot.
        for (ago, actor), group in itertools.groupby(events, key=lambda e: (e.ago, e.actor)):
            run = list(group)
            _order, start, width = slots[actor]
            spacing = width / (len(run) + 1)
            base = self.day(ago) + timedelta(seconds=start)
            for n, event in enumerate(run, start=1):
                event.at = base + timedelta(microseconds=int(spacing * n * 1_000_000))
        return events

    def _actor_of(self, terminal: TerminalPlan, command: Command, reason: str) -> tuple[str, ...]:
        who = ACTOR_OF[command]
        if command == Command.SUSPEND and reason == "expiry":
            return ("job", "expiry-sweep")
        if who in {"admin", "warehouse"}:
            return ("user", who)
        merchant = self.plan.merchants[terminal.merchant] if terminal.merchant is not None else None
        agent = self.plan.agents[terminal.agent] if terminal.agent is not None else None
        if command == Command.REPORT_LOST:
            bound = any(s.command == Command.BIND for s in terminal.steps)
            if not bound:
                return (
                    ("user", agent.username) if agent is not None and _held(terminal) else ("user", "admin")
                )
        if who == "holder" and merchant is not None and merchant.username:
            return ("user", merchant.username)
        assert agent is not None
        return ("user", agent.username)

    def _lot_entry(self, lot: int) -> Callable[[datetime], Entry]:
        def make(at: datetime) -> Entry:
            members = self.lot_members[lot]
            sns = [t.sn for t in members]
            return Entry(
                event_type=EventType.TERMINALS_IMPORTED,
                subject_type="import_batch",
                subject_id=batch_name(self.day(lot)),
                after={
                    "count": len(sns),
                    "first_sn": sns[0],
                    "last_sn": sns[-1],
                    "sns_sha256": hashlib.sha256("\n".join(sns).encode()).hexdigest(),
                },
                occurred_at=at,
            )

        return make

    def build_entries(self, events: list[_Event], *, deferred: bool) -> None:
        """The entries of the events (in time order, each with its own actor): first the fleet's
        (which also replays every terminal: TIDs, step times), then, once their rows exist, the
        ``deferred`` ones."""
        if not deferred:
            bind_count = sum(1 for t in self.plan.terminals for s in t.steps if s.command == Command.BIND)
            self.tids = iter(counters.next_values(TID_COUNTER, bind_count)) if bind_count else iter(())
            self.lot_times: dict[int, datetime] = {}
        for event in events:
            if event.deferred != deferred:
                continue
            assert event.at is not None
            entry = event.make(event.at)
            if entry.event_type == EventType.TERMINALS_IMPORTED:
                self.lot_times[event.ago] = event.at
            event.entry = replace(entry, actor=self.actors[event.actor])


def _held(terminal: TerminalPlan) -> bool:
    """Whether an agent held the terminal when it was lost (allocated or shipped to it)."""
    held = False
    for step in terminal.steps:
        if step.command == Command.ALLOCATE:
            held = True
        elif step.command in {Command.PULL_BACK, Command.REFURBISH}:
            held = False
    return held


def _entry(
    event_type: EventType, subject_type: str, subject_id: str, after: dict[str, Any]
) -> Callable[[datetime], Entry]:
    def make(at: datetime) -> Entry:
        return Entry(
            event_type=event_type,
            subject_type=subject_type,
            subject_id=subject_id,
            after=after,
            occurred_at=at,
        )

    return make


def _user_created(user: User, role: str, org: Organisation) -> Callable[[datetime], Entry]:
    return _entry(
        EventType.USER_CREATED,
        "user",
        str(user.pk),
        {"username": user.username, "role": str(role), "organisation": org.pk},
    )


def _mfa_enrolled(user: User) -> Callable[[datetime], Entry]:
    return _entry(EventType.MFA_ENROLLED, "user", str(user.pk), {"device": "authenticator"})


def _apply(terminal: TerminalReplay, index: int) -> Callable[[datetime], Entry]:
    return lambda at: terminal.apply(index, at)
