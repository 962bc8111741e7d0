"""``build_demo``: the demo fleet with two years of history and, for the last weeks, its money.

The story is written in time order, in one transaction (a failure leaves the database empty):

1. the fleet's rows in bulk (``fleet.py``): organisations, merchants, users, terminals in their
   present state and every terminal's status periods; plan assignments, contracts, fees due and
   deposits (``money/contracts.py``);
2. the history as audit entries in time order, appended to the chain between
3. the calls of the real money services at their moments (``money/timeline.py``), each on the
   simulated clock (``clock.py``): plans, service fees, daily ingest, T+1 settlement; and between them
   the payment-channel bindings, device credentials and closure cases (``closures.py``), with the
   payment channels simulated in this process;
4. a master key for every terminal active at the end (``fleet.services.keys_issue_missing``), so the
   terminal simulator of ``posfleet run`` can sign on to the gateway.

So ``posfleet audit verify`` and ``posfleet ledger verify`` pass, and the chain reads in time order.
"""

from __future__ import annotations

import bisect
import time as clock
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from django.db import transaction

from posfleet.audit.models import AuditEvent
from posfleet.audit.services import Entry, record_many
from posfleet.demo import clock as simulated
from posfleet.demo import vocabulary as V
from posfleet.demo.closures import MONEY_DAYS_NEEDED, DemoClosures, channel_simulator_for_the_demo
from posfleet.demo.fleet import SYSTEM, _Demo
from posfleet.demo.health import relocation_ops
from posfleet.demo.money.timeline import Money, Op
from posfleet.demo.plan import make_plan
from posfleet.fleet.devices.simulator import Device, save_credentials
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import keys_issue_missing
from posfleet.fleet.states import Status
from posfleet.iam.models import Organisation, User
from posfleet.iam.selectors import provider
from posfleet.reports.days import day_end_close
from posfleet.reports.month_end import month_end_close

DEFAULT_SEED = 20261122
# Days of transactions and settlements up to yesterday (0: no money at all), and the average number
# of sales a day of an active terminal. Measured on SQLite: see docs/adr/0011-demo-money.md.
DEFAULT_MONEY_DAYS = 90
DEFAULT_SALES_PER_DAY = 0.5
RECORD_CHUNK = 2000


class NotEmpty(Exception):
    pass


@dataclass
class Summary:
    counts: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (username, role, organisation)
    expiring_30_days: int = 0
    audit_events: int = 0
    status_periods: int = 0
    money: list[tuple[str, str]] = field(default_factory=list)  # (what, how much), for people
    seconds: float = 0.0
    money_seconds: float = 0.0
    expiry_notices: dict[str, int] = field(default_factory=dict)  # milestone -> terminals told today
    # Processor seconds by part of the work (rows, history, plans, fees, ingest, settlement).
    cpu: dict[str, float] = field(default_factory=dict)
    closures: dict[str, str] = field(default_factory=dict)  # stage -> case number
    devices: int = 0  # device credentials live (written to ``devices_file``)
    keys: int = 0  # terminal master keys issued (every terminal active at the end)


def database_is_empty() -> bool:
    return not (Terminal.objects.exists() or Organisation.objects.exists())


def build_demo(
    *,
    agents: int = 20,
    merchants: int = 2000,
    terminals: int = 10_000,
    seed: int = DEFAULT_SEED,
    today: date | None = None,
    money_days: int = DEFAULT_MONEY_DAYS,
    sales_per_day: float = DEFAULT_SALES_PER_DAY,
    write: Callable[[str], None] = lambda line: None,
    devices_file: Path | None = None,
) -> Summary:
    """Create the demo fleet (and its money, channel bindings, device credentials and closure cases) in
    an empty database and return what was created. The live device credentials are written to
    ``devices_file`` (owner-only) when it is given."""
    from posfleet.platform.clock import today as local_today

    started = clock.perf_counter()
    if money_days < 0 or sales_per_day <= 0:
        raise ValueError("the money window is 0 days or more, and sales a day more than 0")
    taken = [u for u in ("admin", "reviewer", "warehouse") if User.objects.filter(username=u).exists()]
    if not database_is_empty() or taken:
        raise NotEmpty("the database is not empty (organisations, terminals or demo users exist)")
    plan = make_plan(
        agents=agents, merchants=merchants, terminals=terminals, seed=seed, today=today or local_today()
    )
    commands = sum(len(t.steps) for t in plan.terminals)
    write(f"  planned {len(plan.terminals):,} terminals with {commands:,} commands")
    demo = _Demo(plan, write)
    summary = Summary()
    cpu = clock.process_time()
    with transaction.atomic():
        demo.write_parties()
        demo.write_users()
        money = Money(plan, days=money_days, per_day=sales_per_day, zone=demo.zone) if money_days else None
        events = demo.events(money.extra_events() if money else ())
        demo.build_entries(events, deferred=False)
        demo.write_terminals()
        summary.status_periods = demo.write_periods()
        ops: list[Op] = []
        closures: DemoClosures | None = None
        if money is not None:
            root = provider()
            assert root is not None
            times = {e.seq: e.at for e in events if e.deferred and e.at is not None}
            money.write_history(
                times=times, merchants=demo.merchants, terminal_ids=demo.terminal_ids, provider_id=root.pk
            )
            demo.build_entries(events, deferred=True)
            if money_days >= MONEY_DAYS_NEEDED:
                closures = DemoClosures(plan, demo.zone, {c.terminal: c for c in money.contracts})
                left_out = closures.choose()
                if left_out:
                    write(f"  closure cases left out (no suitable terminal): {', '.join(left_out)}")
                money.pauses = closures.pauses()
            else:
                write(f"  no closure cases: they need {MONEY_DAYS_NEEDED} days of money or more")
            ops = money.ops(demo.replays)
        cased = {case.terminal.index for case in closures.cases} if closures is not None else set()
        ops = sorted(ops + relocation_ops(demo, exclude=cased))
        write(f"  {summary.status_periods:,} status periods; history and money in time order…")
        summary.cpu["rows"] = clock.process_time() - cpu
        money_started = clock.perf_counter()
        entries = [e.entry for e in events if e.entry is not None]
        if closures is not None:
            with channel_simulator_for_the_demo() as simulator:
                _tell(entries, sorted(ops + closures.ops(demo, simulator)), write, summary.cpu)
        else:
            _tell(entries, ops, write, summary.cpu)
        summary.money_seconds = clock.perf_counter() - money_started
        if money is not None:
            summary.money = money.summary()
        # The terminals active today get their master keys (the fixtures above are bulk rows, never
        # activated through the service that issues one), so `posfleet simulate terminals` can sign on.
        started_keys = clock.process_time()
        summary.keys = keys_issue_missing(by="demo")
        summary.cpu["keys"] = clock.process_time() - started_keys
        # The reports' figures of the months and the dashboards' of the days that ended, as the
        # scheduler stores them every night.
        month_end_close(plan.today)
        day_end_close(plan.today)
    summary.audit_events = AuditEvent.objects.count()
    if closures is not None:
        summary.closures = dict(closures.made)
        live = closures.live_devices()
        summary.devices = len(live)
        if devices_file is not None:
            devices_file.parent.mkdir(parents=True, exist_ok=True)
            save_credentials([Device(sn=sn, key_id=k, secret=s) for sn, k, s in live], devices_file)
    statuses = Counter(Terminal.objects.values_list("status", flat=True))
    summary.statuses = {s.value: statuses.get(s.value, 0) for s in Status}
    summary.counts = {
        "provider": 1,
        "agents (top level)": sum(1 for a in plan.agents if a.parent is None),
        "agents (sub-agents)": sum(1 for a in plan.agents if a.parent is not None),
        "merchants (individual)": sum(1 for m in plan.merchants if m.kind == "individual"),
        "merchants (enterprise)": sum(1 for m in plan.merchants if m.kind == "enterprise"),
        "stores": sum(len(m.stores) for m in plan.merchants),
        "terminal models": len(V.TERMINAL_MODELS),
        "terminals": len(plan.terminals),
        "deliveries (import batches)": len(plan.lots),
        "users": len(demo.users),
    }
    horizon = plan.today + timedelta(days=30)
    summary.expiring_30_days = sum(
        1
        for r in demo.replays
        if r.status in {Status.ACTIVE, Status.BOUND} and plan.today <= r.plan.expires_on <= horizon
    )
    summary.logins = [(name, str(role), org.name) for name, role, org, _ago in demo.people]
    summary.seconds = clock.perf_counter() - started
    return summary


def _tell(
    entries: Sequence[Entry], ops: Sequence[Op], write: Callable[[str], None], cpu: dict[str, float]
) -> None:
    """Append the history's entries to the audit chain, and run each money call when its time comes:
    the entries up to its moment first, then the call on the simulated clock."""
    times: list[datetime] = []
    for entry in entries:
        assert entry.occurred_at is not None
        times.append(entry.occurred_at)
    done = 0
    for n, op in enumerate(ops):
        upto = bisect.bisect_right(times, op.at, lo=done)
        started = clock.process_time()
        _append(entries[done:upto])
        done = upto
        middle = clock.process_time()
        with simulated.at(op.at):
            op.run()
        cpu["history"] = cpu.get("history", 0.0) + middle - started
        cpu[op.kind] = cpu.get(op.kind, 0.0) + clock.process_time() - middle
        if op.kind == "ingest" and (n == len(ops) - 1 or op.at.day == 1):
            write(f"  money: {op.label}")
    started = clock.process_time()
    _append(entries[done:])
    cpu["history"] = cpu.get("history", 0.0) + clock.process_time() - started


def _append(entries: Sequence[Entry]) -> None:
    for i in range(0, len(entries), RECORD_CHUNK):
        record_many(SYSTEM, entries[i : i + RECORD_CHUNK])
