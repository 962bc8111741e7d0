#!/usr/bin/env python3
"""Closure cases (注销) run to their certificate by real ``posfleet worker`` processes, against the same
number of bare terminal deactivations made by as many processes, in the same run.

    python bench/closure.py                        # 10,000 cases, SQLite, 2 workers
    python bench/closure.py --cases 1000           # a quick look
    python bench/closure.py --cases 1000,10000     # memory flat in the number of cases?
    python bench/closure.py --postgres             # also PostgreSQL at 127.0.0.1:5432
    python bench/closure.py --workers 1            # one worker (and one bare process)

Setup (a child, untimed, on a template database copied for every phase): the provider, an agent, and
N merchants with one active smart terminal each (an active status period, a TID, a service contract
without deposit on the standard plan), two payment-channel bindings per terminal (Alipay, WeChat Pay)
and a device credential per terminal; the people who act (``admin`` asks, ``reviewer`` approves,
``warehouse`` receives and grades) — fixtures in bulk, not the code measured.

**ours** (a child): ``--workers`` ``posfleet worker`` processes (the database task queue, polling every
50 ms) are started and idle before the clock starts; the payment-channel simulator runs on loopback in
the child, answering at once. Then, timed until the last case is completed:

1. the staff, in the child, for every terminal: ``closure_quote`` + ``closure_request`` as ``admin``
   (the terminal deactivated), ``closure_decide`` (approve) as ``reviewer`` — each approval wakes the
   case's runner in a worker after commit: contract ended and the terminal deregistered, both channels
   unbound through the simulator, the final settlement (no sale waits), the data backup, the wipe queued;
2. the devices, played by the child between requests: every queued wipe fetched
   (``device_commands_fetch``) and acknowledged (``device_command_ack``) — the acknowledgement's
   outbox event wakes the case in a worker, which revokes the credential and gives return instructions;
3. the warehouse, played by the child: every device whose return is awaited received
   (``closure_receive``) and graded A, refurbished (``closure_inspect``) — the case's runner, woken
   again, charges nothing, settles the deposit step and issues the certificate.

The workers also dispatch the outbox (notices written to ``var/mail``), as they would in production.

**bare** (a child, a fresh copy): ``fleet.services.terminal_deactivate`` of the same N terminals as
``admin`` with a fresh step-up — the single transition a closure starts with — split over ``--workers``
processes started before the clock starts.

Output: one JSON line per phase, then a Markdown table: cases/s, bare deactivations/s, the ratio
(goal ≥ 0.1), each step's time from claim to done (median and 95th percentile, waits included), the
queries per case, and peak memory (the child and each worker, ``VmHWM``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from harness import bench_parties, child_env, each_engine, rss_kb, run_child, spread  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
SINCE = datetime(2026, 1, 1, tzinfo=SH)
SECRET = "bench-device-secret"  # noqa: S105 (a fixture: the devices are the bench itself)
GOAL = 0.1


def _setup_django() -> None:
    import django

    django.setup()
    from django.db import connection

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        setattr(connection, "bench_queries", getattr(connection, "bench_queries", 0) + 1)  # noqa: B010
        return execute(sql, params, many, context)

    connection.execute_wrappers.append(count)


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


# -- helpers ----------------------------------------------------------------------------------


def _hwm_kb(pid: int) -> int:
    """A live process's peak resident memory (``VmHWM``), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _started(command: list[str], env: dict[str, str], ready: str) -> subprocess.Popen[str]:
    """A child process whose stdout is read by us, once it printed a line starting with ``ready``."""
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(ready):
        process.kill()
        raise SystemExit(f"{command[1:3]} did not start: {line!r}")
    return process


def _worker(posfleet: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A ``posfleet worker`` writing to ``log``, once it says it polls (its Django is set up)."""
    process = subprocess.Popen(
        [posfleet, "worker", "--interval", "0.05"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while "worker: polling" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("a worker did not start:\n" + log.read_text(errors="replace")[-2000:])
        time.sleep(0.05)
    return process


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


# -- ours (child) -------------------------------------------------------------------------------


def phase_ours(cases: int, workers: int) -> dict[str, object]:
    _setup_django()
    from django.db import connection

    from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
    from posfleet.closure.services import (
        closure_decide,
        closure_inspect,
        closure_quote,
        closure_receive,
        closure_request,
    )
    from posfleet.closure.states import StepName, StepState
    from posfleet.fleet.models import DeviceCommand, Terminal
    from posfleet.fleet.services import device_command_ack, device_commands_fetch
    from posfleet.iam.models import User
    from posfleet.platform.clock import now
    from posfleet.platform.context import Actor
    from posfleet.testing.servers import channel_simulator

    users = {u.username: u for u in User.objects.filter(username__in=["admin", "reviewer", "warehouse"])}

    def person(name: str) -> Actor:
        return Actor.for_user(users[name]).with_step_up(now())

    def play_devices() -> int:
        """Every queued wipe fetched and acknowledged, as the device would."""
        terminal_ids = set(
            DeviceCommand.objects.filter(kind="wipe", status="queued").values_list("terminal_id", flat=True)
        )
        for terminal in Terminal.objects.select_related("model").filter(pk__in=terminal_ids):
            for command in device_commands_fetch(terminal=terminal):
                device_command_ack(terminal=terminal, command_id=command.pk, ok=True, result={"wiped": True})
        return len(terminal_ids)

    def play_warehouse() -> int:
        """Every device whose return is awaited received, graded A and refurbished."""
        waiting = CaseStep.objects.filter(name=StepName.RETURN, state=StepState.WAITING).values("case_id")
        sns = list(
            CaseTerminal.objects.filter(case_id__in=waiting, received_at__isnull=True).values_list(
                "terminal__sn", flat=True
            )
        )
        for sn in sns:
            closure_receive(actor=person("warehouse"), sn=sn)
            closure_inspect(actor=person("warehouse"), sn=sn, grade="A", disposal="refurbish")
        return len(sns)

    sns = list(Terminal.objects.order_by("sn").values_list("sn", flat=True)[:cases])
    posfleet = str(Path(sys.executable).with_name("posfleet"))
    baseline = rss_kb()
    with channel_simulator(delay=1.0) as simulator:
        env = {**os.environ, "POSFLEET_CHANNELS_URL": simulator.url}
        logs = Path(os.environ["POSFLEET_VAR_DIR"])  # child_env sets it
        pool = [_worker(posfleet, env, logs / f"bench-worker-{i}.log") for i in range(workers)]
        try:
            queries_before = _queries_total(connection)
            started = time.perf_counter()
            requested_by = 0.0
            completed = 0
            pending = list(reversed(sns))
            while True:
                for _ in range(min(25, len(pending))):  # the staff: a few requests, then the others
                    sn = pending.pop()
                    admin = person("admin")
                    quote = closure_quote(actor=admin, sns=[sn]).quote
                    case = closure_request(
                        actor=admin, sns=[sn], reason="shop_closed", quote_digest=quote.digest
                    )
                    closure_decide(actor=person("reviewer"), number=case.number, decision="approve")
                    if not pending:
                        requested_by = time.perf_counter() - started
                acted = play_devices() + play_warehouse()
                if not pending:
                    completed = ClosureCase.objects.filter(status="completed").count()
                    if completed >= cases:
                        break
                    if not acted:
                        time.sleep(0.02)
                if time.perf_counter() - started > 4 * 3600:
                    raise SystemExit(f"only {completed} of {cases} cases completed after 4 hours")
            seconds = time.perf_counter() - started
            worker_kb = [_hwm_kb(p.pid) for p in pool]
        finally:
            for process in pool:
                process.terminate()
            for process in pool:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        unbinds = len(simulator.effects)
    spent: dict[str, list[float]] = defaultdict(list)
    for name, began, ended in CaseStep.objects.filter(state__in=["done", "skipped"]).values_list(
        "name", "started_at", "finished_at"
    ):
        if began and ended:
            spent[name].append((ended - began).total_seconds())
    from django.db.models import Count
    from django_tasks_db.models import DBTaskResult

    runs = {
        row["task_path"].rsplit(".", 1)[-1]: row["n"]
        for row in DBTaskResult.objects.values("task_path").annotate(n=Count("id"))
    }
    if unbinds != 2 * cases:
        raise SystemExit(f"{unbinds} channel unbinds for {cases} cases (2 each expected)")
    return {
        "phase": "ours",
        "engine": connection.vendor,
        "cases": cases,
        "workers": workers,
        "seconds": seconds,
        "requests_seconds": requested_by,
        "per_s": cases / seconds,
        "step_ms": {
            name: {"median": statistics.median(v) * 1000, "p95": _percentile(v, 0.95) * 1000}
            for name, v in spent.items()
        },
        "task_runs_per_case": {name: n / cases for name, n in sorted(runs.items())},
        "child_queries_per_case": (_queries_total(connection) - queries_before) / cases,
        "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "baseline_kb": baseline,
        "worker_peak_kb": worker_kb,
    }


def _queries_total(connection) -> int:  # type: ignore[no-untyped-def]
    """Queries this process sent (counted by a wrapper installed at setup)."""
    return getattr(connection, "bench_queries", 0)


# -- bare (child) -------------------------------------------------------------------------------


def phase_bare(cases: int, workers: int) -> dict[str, object]:
    """The parent of ``workers`` slice processes: each sets up, says ready, waits for a line, deactivates
    its share of the terminals; timed from the line to the last exit."""
    _setup_django()
    from posfleet.fleet.models import Terminal

    env = dict(os.environ)
    baseline = rss_kb()
    pool = [
        _started(
            [
                sys.executable,
                __file__,
                "--phase",
                "bare_slice",
                "--cases",
                str(cases),
                "--slice",
                f"{i}/{workers}",
            ],
            env,
            "ready",
        )
        for i in range(workers)
    ]
    started = time.perf_counter()
    for process in pool:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process in pool:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"a bare slice failed with exit code {process.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    seconds = time.perf_counter() - started
    sns = list(Terminal.objects.order_by("sn").values_list("sn", flat=True)[:cases])
    if Terminal.objects.filter(sn__in=sns, status="deactivated").count() != cases:
        raise SystemExit("not every terminal was deactivated")
    return {
        "phase": "bare",
        "cases": cases,
        "workers": workers,
        "seconds": seconds,
        "per_s": cases / seconds,
        "peak_kb": max(int(r["peak_kb"]) for r in results),
        "baseline_kb": baseline,
    }


def phase_bare_slice(cases: int, part: str) -> dict[str, object]:
    _setup_django()
    from posfleet.fleet.models import Terminal
    from posfleet.fleet.services import terminal_deactivate
    from posfleet.iam.models import User
    from posfleet.platform.clock import now
    from posfleet.platform.context import Actor

    index, count = (int(x) for x in part.split("/"))
    admin = User.objects.get(username="admin")
    sns = list(Terminal.objects.order_by("sn").values_list("sn", flat=True)[:cases])[index::count]
    print("ready", flush=True)
    sys.stdin.readline()
    for sn in sns:
        terminal_deactivate(actor=Actor.for_user(admin).with_step_up(now()), sn=sn, reason="business_change")
    return {
        "phase": "bare_slice",
        "done": len(sns),
        "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
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
                    __file__,
                    ["--phase", variant, "--cases", str(cases), "--workers", str(args.workers)],
                    child_env(url, work),
                )
            finally:
                engine.drop(url)
            result["engine"] = engine.name
            print(json.dumps(result), flush=True)
            pair[variant] = result
        rows.append(pair)
    engine.drop(template)
    return {"engine": engine.name, "rows": rows}


def _report(summaries: list[dict[str, object]], workers: int) -> None:
    print()
    print(
        f"{workers} `posfleet worker` process(es) on the database queue, the channel simulator on loopback "
        "answering at once, each wipe acknowledged by the bench as soon as it is queued, each device "
        f"received and graded as soon as its return is awaited; bare: {workers} process(es) deactivating."
    )
    print()
    print(
        "| engine | cases | ours cases/s | bare deactivations/s | **ratio** (goal ≥ 0.1) | queries per case "
        "(staff side) | child peak RSS (+growth) | workers' peak RSS |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in summaries:
        for pair in s["rows"]:  # type: ignore[attr-defined]
            ours, bare = pair["ours"], pair["bare"]
            ratio = ours["per_s"] / bare["per_s"]
            mark = "met" if ratio >= GOAL else "not met"
            grew = (ours["peak_kb"] - ours["baseline_kb"]) / 1024
            print(
                f"| {s['engine']} | {ours['cases']:,} | {ours['per_s']:,.1f} | {bare['per_s']:,.1f} | "
                f"**{ratio:.3f}** ({mark}) | {ours['child_queries_per_case']:.0f} | "
                f"{ours['peak_kb'] / 1024:,.0f} MB (+{grew:,.0f}) | "
                f"{', '.join(f'{k / 1024:,.0f} MB' for k in ours['worker_peak_kb'])} |"
            )
    for s in summaries:
        ours = s["rows"][-1]["ours"]  # type: ignore[index]
        print()
        print(
            f"**{s['engine']}, {ours['cases']:,} cases**: each step from its first claim to done, "
            "waits included"
        )
        print()
        print("| step | median ms | p95 ms |")
        print("|---|---:|---:|")
        for step, ms in ours["step_ms"].items():
            print(f"| {step} | {ms['median']:.1f} | {ms['p95']:.1f} |")
        runs = ", ".join(f"{name} {n:.2f}" for name, n in ours["task_runs_per_case"].items())
        print(f"\nworker task runs per case: {runs}")
        print(
            f"\nrequests and approvals all made after {ours['requests_seconds']:.1f} s "
            f"of {ours['seconds']:.1f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="10000", help="cases per run, comma-separated (e.g. 1000,10000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (and bare processes)")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--phase", choices=["setup", "ours", "bare", "bare_slice"], help=argparse.SUPPRESS)
    parser.add_argument("--slice", default="0/1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        cases = int(args.cases)
        if args.phase == "setup":
            result = phase_setup(cases)
        elif args.phase == "bare_slice":
            result = phase_bare_slice(cases, args.slice)
        else:
            result = {"ours": phase_ours, "bare": phase_bare}[args.phase](cases, args.workers)
        print(json.dumps(result))
        return
    args.case_counts = [int(c) for c in args.cases.split(",")]
    summaries = each_engine("closure", args, bench_engine)
    _report(summaries, args.workers)
    _ = spread  # the harness' helper, for symmetry with the other benchmarks


if __name__ == "__main__":
    main()
