"""Writing the demo fleet: rows in bulk, history as audit entries in time order.

Nothing here calls the per-terminal services (50,000 calls would take minutes); instead the rows are
written with ``bulk_create`` in the state the services would have left them in, and the history is
appended with ``audit.services.record_many`` — the same event types, reasons and before/after
snapshots the services write, in time order, so ``posfleet audit verify`` and the terminal timeline
work on demo data. ``build.py`` appends the entries to the chain, between the money the services
write at their moments (``money/``), all in one transaction: a failure leaves the database empty.

Times: every event is placed on its day in a slot of its actor (jobs at night, the admin early, the
warehouse in the morning, each agent in its own slice of the afternoon, merchants in the evening), so
sorting by (day, slot) is also sorting by time, and consecutive events of one actor — one call of
``record_many`` — are long runs.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection

from posfleet.audit.services import Entry
from posfleet.audit.vocabulary import EventType
from posfleet.demo import vocabulary as V
from posfleet.demo.plan import ACTOR_OF, Plan, TerminalPlan
from posfleet.fleet.models import StatusPeriod, Terminal, TerminalModel
from posfleet.fleet.services import EVENT_OF, TID_COUNTER, TID_START
from posfleet.fleet.states import TRANSITIONS, Command, Status
from posfleet.iam.models import Organisation, OrgKind, Role, User
from posfleet.parties.models import Agent, Merchant, Store
from posfleet.platform import counters
from posfleet.platform.bulk import insert_rows
from posfleet.platform.context import Actor
from posfleet.testing.totp import DEMO_TOTP_SECRET, enrol

# The actor of the events the demo itself stands for (and the caller of record_many).
SYSTEM = Actor.system("demo")


# ---------------------------------------------------------------------------------------------
# Slots: (order within a day, start in seconds after midnight, width in seconds).


MONEY = ("system", "money")  # contracts, deposits: the system's morning run (see money/contracts.py)


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


class _Terminal:
    """A terminal replayed through its history, changing fields exactly as fleet.services does."""

    def __init__(self, plan: TerminalPlan, demo: _Demo) -> None:
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


class _Demo:
    def __init__(self, plan: Plan, write: Callable[[str], None]) -> None:
        self.plan = plan
        self.write = write
        self.zone = ZoneInfo(settings.TIME_ZONE)
        self.midnight = datetime.combine(plan.today, time(0), self.zone)
        self.tids: Iterator[int] = iter(())
        self.actors: dict[tuple[str, ...], Actor] = {}
        self.users: dict[str, User] = {}
        self.organisations: dict[str, Organisation] = {}
        self.agents: list[Agent] = []
        self.merchants: list[Merchant] = []
        self.stores: list[list[Store]] = []
        self.model_ids: list[int] = []

    # -- helpers ---------------------------------------------------------------------------------

    def day(self, ago: int) -> datetime:
        return self.midnight - timedelta(days=ago)

    def next_tid(self) -> str:
        return f"{TID_START + next(self.tids):08d}"

    # -- rows ------------------------------------------------------------------------------------

    def write_parties(self) -> None:
        plan = self.plan
        provider = Organisation(kind=OrgKind.PROVIDER, name=V.PROVIDER_NAME)
        provider.save()
        self.organisations["provider"] = provider
        self.model_ids = [
            m.pk
            for m in TerminalModel.objects.bulk_create(
                [
                    TerminalModel(code=code, maker=maker, name=name, kind=kind, capabilities=list(caps))
                    for code, maker, name, kind, caps, *_rest in V.TERMINAL_MODELS
                ]
            )
        ]
        # Agents: organisations first (top level, then their sub-agents), then the agent rows.
        orgs = [Organisation(kind=OrgKind.AGENT, name=a.name, parent=provider) for a in plan.agents]
        Organisation.objects.bulk_create(
            [o for a, o in zip(plan.agents, orgs, strict=True) if a.parent is None]
        )
        for agent, org in zip(plan.agents, orgs, strict=True):
            if agent.parent is not None:
                org.parent = orgs[agent.parent]
        Organisation.objects.bulk_create(
            [o for a, o in zip(plan.agents, orgs, strict=True) if a.parent is not None]
        )
        for agent, org in zip(plan.agents, orgs, strict=True):
            parent_path = provider.path if agent.parent is None else orgs[agent.parent].path
            org.path = f"{parent_path}{org.pk}/"
        self.agents = Agent.objects.bulk_create(
            [
                Agent(
                    organisation=org,
                    code=a.code,
                    name=a.name,
                    contact_name=a.contact_name,
                    contact_phone=a.contact_phone,
                )
                for a, org in zip(plan.agents, orgs, strict=True)
            ]
        )
        # Merchants and their stores.
        morgs = [
            Organisation(kind=OrgKind.MERCHANT, name=m.name, parent=orgs[m.agent]) for m in plan.merchants
        ]
        Organisation.objects.bulk_create(morgs, batch_size=1000)
        for merchant, org in zip(plan.merchants, morgs, strict=True):
            org.path = f"{orgs[merchant.agent].path}{org.pk}/"
        self._update_paths(orgs + morgs)
        self.merchants = Merchant.objects.bulk_create(
            [
                Merchant(
                    organisation=org,
                    mid=m.mid,
                    kind=m.kind,
                    name=m.name,
                    legal_name=m.legal_name,
                    mcc=m.mcc,
                    agent=self.agents[m.agent],
                    contact_name=m.contact_name,
                    contact_phone=m.contact_phone,
                    contact_email=m.contact_email,
                )
                for m, org in zip(plan.merchants, morgs, strict=True)
            ],
            batch_size=1000,
        )
        stores = [
            Store(merchant=merchant, code=s.code, name=s.name, city=s.city, address=s.address)
            for m, merchant in zip(plan.merchants, self.merchants, strict=True)
            for s in m.stores
        ]
        Store.objects.bulk_create(stores, batch_size=1000)
        it = iter(stores)
        self.stores = [[next(it) for _ in m.stores] for m in plan.merchants]
        self.write(f"  {len(orgs)} agents, {len(morgs)} merchants, {len(stores)} stores")

        # When each was created (auto_now_add fields are set afterwards, in bulk).
        stamp: list[tuple[str, str, list[tuple[Any, int]]]] = []
        org_times = [(self.day(a.created), org.pk) for a, org in zip(plan.agents, orgs, strict=True)]
        org_times += [(self.day(m.created), org.pk) for m, org in zip(plan.merchants, morgs, strict=True)]
        stamp.append((Organisation._meta.db_table, "created_at", org_times))
        stamp.append(
            (
                Agent._meta.db_table,
                "created_at",
                [(self.day(a.created), row.pk) for a, row in zip(plan.agents, self.agents, strict=True)],
            )
        )
        stamp.append(
            (
                Merchant._meta.db_table,
                "created_at",
                [
                    (self.day(m.created), row.pk)
                    for m, row in zip(plan.merchants, self.merchants, strict=True)
                ],
            )
        )
        stamp.append(
            (
                Store._meta.db_table,
                "created_at",
                [
                    (self.day(m.created), store.pk)
                    for m, rows in zip(plan.merchants, self.stores, strict=True)
                    for store in rows
                ],
            )
        )
        self._stamp(stamp)

    def _update_paths(self, orgs: Sequence[Organisation]) -> None:
        _executemany(
            f"UPDATE {connection.ops.quote_name(Organisation._meta.db_table)} SET path = %s WHERE id = %s",  # noqa: S608
            [(org.path, org.pk) for org in orgs],
        )

    def _stamp(self, updates: list[tuple[str, str, list[tuple[Any, int]]]]) -> None:
        field = Organisation._meta.get_field("created_at")
        for table, column, rows in updates:
            quote = connection.ops.quote_name
            _executemany(
                f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE id = %s",  # noqa: S608
                [(field.get_db_prep_value(at, connection), pk) for at, pk in rows],
            )

    def write_users(self) -> None:
        plan = self.plan
        password = make_password(V.PASSWORD)  # hashed once: PBKDF2 per user would cost seconds
        provider = self.organisations["provider"]
        people: list[tuple[str, Role, Organisation, int]] = [
            ("admin", Role.ADMIN, provider, 730),
            ("reviewer", Role.REVIEWER, provider, 730),
            ("warehouse", Role.WAREHOUSE, provider, 730),
        ]
        people += [
            (a.username, Role.AGENT, row.organisation, a.created)
            for a, row in zip(plan.agents, self.agents, strict=True)
        ]
        merchant_users = sorted(
            ((m, row) for m, row in zip(plan.merchants, self.merchants, strict=True) if m.username),
            key=lambda pair: int(str(pair[0].username).removeprefix("merchant")),
        )
        people += [(str(m.username), Role.MERCHANT, row.organisation, m.created) for m, row in merchant_users]
        users = [
            User(
                username=name,
                password=password,
                organisation=org,
                role=role,
                language="zh-hans",
                is_staff=role == Role.ADMIN,
                is_superuser=role == Role.ADMIN,
                date_joined=self.day(ago),
            )
            for name, role, org, ago in people
        ]
        User.objects.bulk_create(users)
        for user in users:
            enrol(user, DEMO_TOTP_SECRET)
            self.users[user.username] = user
            self.actors[("user", user.username)] = Actor.for_user(user, request_id="demo")
        self.actors[("system",)] = SYSTEM
        self.actors[MONEY] = SYSTEM
        self.actors[("job", "expiry-sweep")] = Actor.job("expiry-sweep")
        self.people = people

    # -- history ---------------------------------------------------------------------------------

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
        self.replays = [_Terminal(t, self) for t in plan.terminals]
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
                subject_id=_batch(self.day(lot)),
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

    def write_terminals(self) -> None:
        """The terminals in the state their history left them in (one INSERT per 5,000 rows)."""
        rows = []
        for replay in self.replays:
            plan = replay.plan
            held = replay.merchant is not None and plan.merchant is not None
            heartbeat = (
                self.midnight - timedelta(minutes=plan.heartbeat_minutes)
                if plan.heartbeat_minutes is not None
                else None
            )
            rows.append(
                (
                    plan.sn,
                    self.model_ids[plan.model],
                    replay.status.value,
                    replay.tid,
                    self.agents[plan.agent].pk
                    if replay.agent is not None and plan.agent is not None
                    else None,
                    self.merchants[plan.merchant].pk if held and plan.merchant is not None else None,
                    self.stores[plan.merchant][plan.store].pk
                    if replay.store is not None and plan.merchant is not None and plan.store is not None
                    else None,
                    plan.iccid,
                    plan.expires_on,
                    plan.firmware,
                    heartbeat,
                    replay.status_reason,
                    replay.changed_at,
                    replay.deactivated_at,
                    _batch(self.day(plan.lot)),
                    self.lot_times[plan.lot],
                )
            )
        columns = (
            "sn",
            "model",
            "status",
            "tid",
            "agent",
            "merchant",
            "store",
            "sim_iccid",
            "service_expires_on",
            "firmware_version",
            "last_heartbeat_at",
            "status_reason",
            "status_changed_at",
            "deactivated_at",
            "import_batch",
            "registered_at",
        )
        insert_rows(Terminal, columns, rows)
        ids = dict(Terminal.objects.values_list("sn", "pk"))
        self.terminal_ids = [ids[replay.plan.sn] for replay in self.replays]

    def write_periods(self) -> int:
        """One status period per step of each terminal's history, as the fleet services write them:
        from the step's time to the next step's, the last one open (in stock since registration
        needs no row)."""
        rows = []
        for replay, terminal_id in zip(self.replays, self.terminal_ids, strict=True):
            state = Status.IN_STOCK
            for i, (step, started) in enumerate(zip(replay.plan.steps, replay.times, strict=True)):
                state = TRANSITIONS[(state, step.command)]
                ended = replay.times[i + 1] if i + 1 < len(replay.times) else None
                rows.append((terminal_id, state.value, started, ended))
        return insert_rows(StatusPeriod, ("terminal", "status", "started_at", "ended_at"), rows)


def _held(terminal: TerminalPlan) -> bool:
    """Whether an agent held the terminal when it was lost (allocated or shipped to it)."""
    held = False
    for step in terminal.steps:
        if step.command == Command.ALLOCATE:
            held = True
        elif step.command in {Command.PULL_BACK, Command.REFURBISH}:
            held = False
    return held


def _batch(day: datetime) -> str:
    return f"DEMO-{day:%Y%m%d}"


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


def _apply(terminal: _Terminal, index: int) -> Callable[[datetime], Entry]:
    return lambda at: terminal.apply(index, at)


def _executemany(sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
