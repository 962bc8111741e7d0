"""The demo's rows in bulk: organisations, agents, merchants and stores (with the days they were
created), the users with their authenticators, the terminals in the state their history left them in,
and their status periods."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import connection

from posfleet.demo import vocabulary as V
from posfleet.demo.fleet.state import MONEY, SYSTEM, DemoState, batch_name
from posfleet.demo.plan import near
from posfleet.fleet.models import StatusPeriod, Terminal, TerminalModel
from posfleet.fleet.states import TRANSITIONS, Status
from posfleet.iam.models import Organisation, OrgKind, Role, User
from posfleet.parties.models import Agent, Merchant, Store
from posfleet.platform.bulk import insert_rows
from posfleet.platform.context import Actor
from posfleet.testing.totp import DEMO_TOTP_SECRET, enrol


class Rows(DemoState):
    """The rows, in bulk (one statement per table or per chunk)."""

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
            Store(
                merchant=merchant,
                code=s.code,
                name=s.name,
                city=s.city,
                address=s.address,
                latitude=s.latitude,
                longitude=s.longitude,
            )
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

    def write_terminals(self) -> None:
        """The terminals in the state their history left them in (one INSERT per 5,000 rows)."""
        rows = []
        locations: dict[str, dict[str, float]] = {}
        for replay in self.replays:
            plan = replay.plan
            held = replay.merchant is not None and plan.merchant is not None
            heartbeat = (
                self.midnight - timedelta(minutes=plan.heartbeat_minutes)
                if plan.heartbeat_minutes is not None
                else None
            )
            store = (
                self.plan.merchants[plan.merchant].stores[plan.store]
                if replay.store is not None and plan.merchant is not None and plan.store is not None
                else None
            )
            # A smart terminal's heartbeat reports where it is: near its store (fleet's device health).
            location = (
                near(store.latitude, store.longitude, plan.sn)
                if heartbeat is not None
                and store is not None
                and store.latitude is not None
                and store.longitude is not None
                and V.TERMINAL_MODELS[plan.model][3] == "smart"
                else None
            )
            if location is not None:
                locations[plan.sn] = location
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
                    batch_name(self.day(plan.lot)),
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
        # The positions apart (insert_rows writes a JSON null, not SQL NULL, for the terminals without).
        Terminal.objects.bulk_update(
            [Terminal(pk=ids[sn], last_location=place) for sn, place in locations.items()],
            ["last_location"],
            batch_size=1000,
        )

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


def _executemany(sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
