#!/usr/bin/env python3
"""Closure cases (注销) run to their certificate by the real step runner, against the same number of bare
terminal deactivations measured in the same run.

    python bench/closure.py                        # 10,000 cases, SQLite
    python bench/closure.py --cases 1000           # a quick look
    python bench/closure.py --cases 1000,10000     # memory flat in the number of cases?
    python bench/closure.py --postgres             # also PostgreSQL at 127.0.0.1:5432

Setup (a child, untimed, on a template database copied for every phase): the provider, an agent, and
N merchants with one active smart terminal each (an active status period, a TID, a service contract
without deposit on the standard plan), two payment-channel bindings per terminal (Alipay, WeChat Pay)
and a device credential per terminal; the people who act (``admin`` asks, ``reviewer`` approves,
``warehouse`` receives and grades) — fixtures in bulk, not the code measured.

**ours** (a child, on the simulated clock: time-machine, ticking): for every case, through the real
services and the real runner (``closure.runner.advance`` called in-process, one case after the other —
not ``posfleet worker`` processes; the wake-up tasks they enqueue after commit are written to the
database queue as usual and left there):

1. request — ``closure_quote`` + ``closure_request`` (the terminal deactivated), as ``admin``;
2. approve — ``closure_decide`` as ``reviewer`` + ``advance``: contract ended and the terminal
   deregistered, both channels unbound through the channel simulator (``parties.channels.simulator``,
   started in the child on loopback, answering at once), the final settlement waiting;
3. the stop day's T+1 ``settlement_run`` once for all cases (03:00 the next day), then per case
   ``advance``: settlement done, data backup, wipe queued and waiting for the device;
4. the device: ``device_commands_fetch`` + ``device_command_ack`` right after (as the device would),
   the clock moved past the runner's one-minute look, ``advance``: credential revoked, return waiting;
5. the warehouse: ``closure_receive`` + ``closure_inspect`` (grade A, refurbish), ``advance``:
   inspected, deposit step, certificate, case completed.

**bare** (a child, a fresh copy): ``fleet.services.terminal_deactivate`` of the same N terminals as
``admin`` with a fresh step-up — the single transition a closure starts with.

Output: one JSON line per phase, then a Markdown table: cases/s, bare deactivations/s, the ratio
(goal ≥ 0.1), the time of each step's handler (median, and the share of the total time), peak memory
(``ru_maxrss``, and its growth over the RSS before the timed work).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from harness import bench_parties, child_env, each_engine, rss_kb, run_child, spread  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
STOP_DAY = date(2026, 12, 7)
SINCE = datetime(2026, 1, 1, tzinfo=SH)
SECRET = "bench-device-secret"  # noqa: S105 (a fixture: the devices are the bench itself)
GOAL = 0.1


def _setup_django() -> None:
    import django

    django.setup()


# -- setup (child) ------------------------------------------------------------------------------


def phase_setup(cases: int) -> dict[str, object]:
    _setup_django()
    import hashlib

    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", verbosity=0, skip_checks=True)
    from posfleet.billing.defaults import ensure_standard_plan
    from posfleet.billing.models import PlanAssignment, ServiceContract
    from posfleet.fleet.models import DeviceCredential, StatusPeriod, Terminal
    from posfleet.iam.models import Organisation, OrgKind, Role, User
    from posfleet.parties.models import ChannelBinding

    started = time.perf_counter()
    with transaction.atomic():
        agent, model, shops = bench_parties(cases)
        plan = ensure_standard_plan()
        terminals = Terminal.objects.bulk_create(
            [
                Terminal(
                    sn=f"CLB{m:08d}",
                    model=model,
                    status="active",
                    tid=f"C{m:07d}",
                    agent=agent,
                    merchant=shop,
                    status_changed_at=SINCE,
                )
                for m, shop in enumerate(shops)
            ],
            batch_size=5000,
        )
        StatusPeriod.objects.bulk_create(
            [StatusPeriod(terminal=t, status="active", started_at=SINCE) for t in terminals], batch_size=5000
        )
        PlanAssignment.objects.bulk_create(
            [PlanAssignment(merchant=shop, plan=plan, effective_from=SINCE.date()) for shop in shops],
            batch_size=5000,
        )
        ServiceContract.objects.bulk_create(
            [
                ServiceContract(
                    terminal=t,
                    merchant=shop,
                    plan=plan,
                    status="active",
                    starts_on=SINCE.date(),
                    annual_fee_fen=0,
                )
                for shop, t in zip(shops, terminals, strict=True)
            ],
            batch_size=5000,
        )
        ChannelBinding.objects.bulk_create(
            [
                ChannelBinding(
                    merchant=shop,
                    terminal=t,
                    channel=channel,
                    channel_merchant_id=f"{prefix}{m:010d}",
                    status="bound",
                    bound_at=SINCE,
                )
                for m, (shop, t) in enumerate(zip(shops, terminals, strict=True))
                for channel, prefix in (("alipay", "2088"), ("wechat_pay", "19"))
            ],
            batch_size=5000,
        )
        digest = hashlib.sha256(SECRET.encode()).hexdigest()
        DeviceCredential.objects.bulk_create(
            [
                DeviceCredential(terminal=t, key_id=f"dk_{m:014x}", secret_hash=digest, issued_at=SINCE)
                for m, t in enumerate(terminals)
            ],
            batch_size=5000,
        )
        provider = Organisation.objects.get(kind=OrgKind.PROVIDER)
        for name, role in (("admin", Role.ADMIN), ("reviewer", Role.REVIEWER), ("warehouse", Role.WAREHOUSE)):
            User.objects.create_user(username=name, password=None, role=role, organisation=provider)
    return {"phase": "setup", "cases": cases, "setup_seconds": round(time.perf_counter() - started, 1)}


# -- ours (child) -------------------------------------------------------------------------------


def phase_ours(cases: int) -> dict[str, object]:
    _setup_django()
    import time_machine
    from django.conf import settings
    from django.db import connection

    from posfleet.billing.services.settlement import settlement_run
    from posfleet.closure import runner
    from posfleet.closure.models import ClosureCase
    from posfleet.closure.services import (
        closure_decide,
        closure_inspect,
        closure_quote,
        closure_receive,
        closure_request,
    )
    from posfleet.fleet.models import Terminal
    from posfleet.fleet.services import device_command_ack, device_commands_fetch
    from posfleet.iam.models import User
    from posfleet.platform.clock import now
    from posfleet.platform.context import Actor
    from posfleet.testing.servers import channel_simulator

    users = {u.username: u for u in User.objects.filter(username__in=["admin", "reviewer", "warehouse"])}

    def person(name: str) -> Actor:
        return Actor.for_user(users[name]).with_step_up(now())

    spent: dict[str, list[float]] = defaultdict(list)  # step -> seconds of each handler call
    for name, handler in list(runner.HANDLERS.items()):

        def timed(step, handler=handler, name=name):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return handler(step)
            finally:
                spent[name.value].append(time.perf_counter() - t)

        runner.HANDLERS[name] = timed
    phases: dict[str, float] = defaultdict(float)
    sns = list(Terminal.objects.order_by("sn").values_list("sn", flat=True)[:cases])
    ids: list[int] = []
    baseline = rss_kb()
    with (
        channel_simulator(delay=1.0) as simulator,
        time_machine.travel(
            datetime.combine(STOP_DAY, datetime.min.time(), SH) + timedelta(hours=10), tick=True
        ) as clock,
    ):
        settings.POSFLEET_CHANNELS_URL = simulator.url
        started = time.perf_counter()

        def phase(name: str, t: float) -> None:
            phases[name] += time.perf_counter() - t

        for sn in sns:
            t = time.perf_counter()
            admin = person("admin")
            quote = closure_quote(actor=admin, sns=[sn]).quote
            case = closure_request(actor=admin, sns=[sn], reason="shop_closed", quote_digest=quote.digest)
            phase("request", t)
            t = time.perf_counter()
            closure_decide(actor=person("reviewer"), number=case.number, decision="approve")
            runner.advance(case.pk)
            phase("approve + advance", t)
            ids.append(case.pk)
        clock.move_to(
            datetime.combine(STOP_DAY + timedelta(days=1), datetime.min.time(), SH) + timedelta(hours=3)
        )
        t = time.perf_counter()
        settlement_run(actor=Actor.job("settle_yesterday"), business_date=STOP_DAY)
        phase("settlement run (once)", t)
        for case_id in ids:
            t = time.perf_counter()
            runner.advance(case_id)
            phase("advance after settlement", t)
            t = time.perf_counter()
            terminal = Terminal.objects.select_related("model").get(closure_entries__case_id=case_id)
            for command in device_commands_fetch(terminal=terminal):
                device_command_ack(terminal=terminal, command_id=command.pk, ok=True, result={"wiped": True})
            phase("device fetch + ack", t)
        clock.shift(timedelta(minutes=2))
        for case_id in ids:
            t = time.perf_counter()
            runner.advance(case_id)
            phase("advance after the wipe", t)
            t = time.perf_counter()
            sn = Terminal.objects.filter(closure_entries__case_id=case_id).values_list("sn", flat=True).get()
            closure_receive(actor=person("warehouse"), sn=sn)
            closure_inspect(actor=person("warehouse"), sn=sn, grade="A", disposal="refurbish")
            phase("warehouse receive + inspect", t)
            t = time.perf_counter()
            runner.advance(case_id)
            phase("advance to the certificate", t)
        seconds = time.perf_counter() - started
    completed = ClosureCase.objects.filter(pk__in=ids, status="completed").count()
    if completed != cases:
        raise SystemExit(f"only {completed} of {cases} cases completed")
    total = sum(sum(v) for v in spent.values())
    return {
        "phase": "ours",
        "engine": connection.vendor,
        "cases": cases,
        "seconds": seconds,
        "per_s": cases / seconds,
        "step_median_ms": {k: statistics.median(v) * 1000 for k, v in spent.items()},
        "step_share_of_total": {k: sum(v) / seconds for k, v in spent.items()},
        "handlers_share": total / seconds,
        "phases_s": dict(phases),
        "unbinds_done": len(simulator.effects),
        "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "baseline_kb": baseline,
    }


# -- bare (child) -------------------------------------------------------------------------------


def phase_bare(cases: int) -> dict[str, object]:
    _setup_django()
    from posfleet.fleet.models import Terminal
    from posfleet.fleet.services import terminal_deactivate
    from posfleet.iam.models import User
    from posfleet.platform.clock import now
    from posfleet.platform.context import Actor

    admin = User.objects.get(username="admin")
    sns = list(Terminal.objects.order_by("sn").values_list("sn", flat=True)[:cases])
    baseline = rss_kb()
    started = time.perf_counter()
    for sn in sns:
        terminal_deactivate(actor=Actor.for_user(admin).with_step_up(now()), sn=sn, reason="business_change")
    seconds = time.perf_counter() - started
    if Terminal.objects.filter(sn__in=sns, status="deactivated").count() != cases:
        raise SystemExit("not every terminal was deactivated")
    return {
        "phase": "bare",
        "cases": cases,
        "seconds": seconds,
        "per_s": cases / seconds,
        "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "baseline_kb": baseline,
    }


# -- the run ------------------------------------------------------------------------------------


def bench_engine(engine, args: argparse.Namespace, work: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    template = engine.create("template")
    most = max(args.case_counts)
    setup = run_child(__file__, ["--phase", "setup", "--cases", str(most)], child_env(template, work))
    print(json.dumps({**setup, "engine": engine.name}), flush=True)
    rows = []
    for n, cases in enumerate(args.case_counts):
        pair = {}
        for variant in ("bare", "ours"):
            url = engine.create(f"{variant}{n}", template)
            try:
                result = run_child(
                    __file__, ["--phase", variant, "--cases", str(cases)], child_env(url, work)
                )
            finally:
                engine.drop(url)
            result["engine"] = engine.name
            print(json.dumps(result), flush=True)
            pair[variant] = result
        rows.append(pair)
    engine.drop(template)
    return {"engine": engine.name, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="10000", help="cases per run, comma-separated (e.g. 1000,10000)")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--phase", choices=["setup", "ours", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        cases = int(args.cases)
        result = {"setup": phase_setup, "ours": phase_ours, "bare": phase_bare}[args.phase](cases)
        print(json.dumps(result))
        return
    args.case_counts = [int(c) for c in args.cases.split(",")]
    summaries = each_engine("closure", args, bench_engine)
    print()
    print(
        "Driven by closure.runner.advance in-process (not posfleet worker processes); the channel "
        "simulator on loopback answering at once; each wipe acknowledged through device_command_ack "
        "right after it is queued; one settlement run for the stop day."
    )
    print()
    print(
        "| engine | cases | ours cases/s | bare deactivations/s | **ratio** (goal ≥ 0.1) | ours peak RSS "
        "(+growth) | bare peak RSS (+growth) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s in summaries:
        for pair in s["rows"]:
            ours, bare = pair["ours"], pair["bare"]
            ratio = ours["per_s"] / bare["per_s"]
            mark = "met" if ratio >= GOAL else "not met"

            def mem(r):  # type: ignore[no-untyped-def]
                return f"{r['peak_kb'] / 1024:,.0f} MB (+{(r['peak_kb'] - r['baseline_kb']) / 1024:,.0f})"

            print(
                f"| {s['engine']} | {ours['cases']:,} | {ours['per_s']:,.1f} | {bare['per_s']:,.1f} | "
                f"**{ratio:.3f}** ({mark}) | {mem(ours)} | {mem(bare)} |"
            )
    for s in summaries:
        ours = s["rows"][-1]["ours"]
        print()
        print(
            f"**{s['engine']}, {ours['cases']:,} cases**: each step's handler, median ms and share of "
            "the total time"
        )
        print()
        print("| step | median ms | share of total |")
        print("|---|---:|---:|")
        for step, ms in ours["step_median_ms"].items():
            print(f"| {step} | {ms:.2f} | {ours['step_share_of_total'][step]:.1%} |")
        print(f"| (all handlers) | | {ours['handlers_share']:.1%} |")
        print()
        print("| phase of the run | seconds | share |")
        print("|---|---:|---:|")
        for name, secs in ours["phases_s"].items():
            print(f"| {name} | {secs:.1f} | {secs / ours['seconds']:.1%} |")
    _ = spread  # the harness' helper, for symmetry with the other benchmarks


if __name__ == "__main__":
    main()
