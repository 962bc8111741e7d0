#!/usr/bin/env python3
"""Lifecycle transitions through posfleet's real service, 1 and 8 concurrent workers, against durable
single-row UPDATEs on the same engine, with the same concurrency; and a prototype audit chain in lanes.

    python bench/transitions.py                    # SQLite, 3 rounds of 5 s per phase (~5 min)
    python bench/transitions.py --postgres         # also PostgreSQL at 127.0.0.1:5432
    python bench/transitions.py --breakdown        # + instrumented phases: where the time goes
    python bench/transitions.py --check-lanes      # + tampering against the lanes prototype's verify
    python bench/transitions.py --workers 1,4,8 --variants ours,raw --duration 3 --repeat 1
    python bench/transitions.py --src /path/to/src # measure another source tree

Setup (a child process): migrate a template database and build the demo fleet through the real
services (``posfleet demo --terminals 10000 --money-days 0``: 6,000 active terminals, 47,000 audit
events); the tables of the lanes prototype (``audit_lanes.py``, 16 lane heads). Every phase runs on
its own copy of the template (SQLite file copy; PostgreSQL ``CREATE DATABASE … TEMPLATE``), dropped
afterwards, also on failure.

Each phase starts W worker processes, each with its own database connection and its own 50 active
terminals; they load Django, say they are ready, start together and run for D seconds:

- **ours** — ``fleet.services.terminal_transition`` as the demo ``admin`` (a person: permission
  checks run), suspend (reason ``risk``) then resume, terminal after terminal: lock the row, check
  scope, permission, transition and reason, compare-and-set the status, close and open the status
  period, append the audit event (hash chain: the head row locked until commit), publish the outbox
  event, commit.
- **lanes1 / lanes16** — the same service with its audit write replaced by the prototype
  (``audit_lanes.record``) with 1 lane (today's design in the prototype's code: the control) and
  16 lanes (no shared lock between writers of different lanes).
- **raw** — ``UPDATE fleet_terminal SET status = ? WHERE id = ?`` on the same terminals, each
  committed on its own, through a DB-API connection: SQLite with the project's settings (WAL,
  synchronous=NORMAL, ``BEGIN IMMEDIATE``, busy_timeout), PostgreSQL with psycopg 3 (durable commit).

Phases alternate (every variant at every concurrency, round after round) after a warm-up round.
Output: one JSON line per phase, then Markdown tables: transitions/s, ratio to raw at the same
concurrency (goal ≥ 0.3), the breakdown per transition (``--breakdown``), the tamper checks.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from harness import child_env, each_engine, spread  # noqa: E402

TODAY = date(2026, 12, 6)
PER_WORKER = 50
LANES = 16
VARIANTS = ("ours", "lanes1", "lanes16", "raw")


def env_for(db_url: str, work: Path, src: Path | None) -> dict[str, str]:
    env = child_env(db_url, work)
    paths = [str(BENCH)] + ([str(src)] if src else [])
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_child(args: list[str], env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"phase {args[:2]} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- setup (child) ------------------------------------------------------------------------------


def phase_setup(terminals: int, targets: Path) -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate", verbosity=0, skip_checks=True)
    with open(os.devnull, "w") as quiet:
        call_command("demo", terminals=terminals, money_days=0, today=TODAY, stdout=quiet, skip_checks=True)
    import audit_lanes

    from posfleet.audit.models import AuditEvent
    from posfleet.fleet.models import Terminal

    audit_lanes.create_tables(LANES)
    active = list(Terminal.objects.filter(status="active").order_by("sn").values_list("sn", "pk"))
    targets.write_text(json.dumps(active))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if connection.vendor == "postgresql" else "PRAGMA optimize")
    return {
        "terminals": terminals,
        "active": len(active),
        "audit_events": AuditEvent.objects.count(),
        "setup_seconds": round(time.perf_counter() - started, 1),
    }


# -- a worker (child) ---------------------------------------------------------------------------

# (statement starts with, mentions, bucket): the first that matches names a statement's bucket.
BUCKETS = (
    ("select", 'from "fleet_terminal"', "terminal: fetch and lock"),
    ("update", '"fleet_terminal"', "terminal: update (compare-and-set)"),
    ("select", "bench_lane_seq", "audit: next seq"),
    ("select", "from bench_lane_event", "audit: next seq"),
    ("select", "auditchainhead", "audit head: lock (and wait)"),
    ("select", "bench_lane_head", "audit head: lock (and wait)"),
    ("update", "auditchainhead", "audit head: update"),
    ("update", "bench_lane_head", "audit head: update"),
    ("insert", "audit_auditevent", "audit event: insert"),
    ("insert", "bench_lane_event", "audit event: insert"),
    ("", "fleet_statusperiod", "status periods"),
    ("", "platform_outboxmessage", "outbox: insert"),
)


def classify(sql: str) -> str:
    low = sql.lstrip().lower()
    if low.startswith("begin"):
        return "begin (SQLite: waiting for the database write lock)"
    if low.startswith(("savepoint", "release savepoint", "rollback to savepoint")):
        return "savepoints"
    for verb, mentions, bucket in BUCKETS:
        if low.startswith(verb) and mentions in low:
            return bucket
    return "other SQL"


def ready_and_wait() -> None:
    print("ready", flush=True)
    sys.stdin.readline()  # "go": every worker starts at the same moment


def worker_raw(url: str, terminals: list[tuple[str, int]], duration: float) -> dict[str, object]:
    if url.startswith("postgres"):
        import psycopg

        conn = psycopg.connect(url)
        sql = "UPDATE fleet_terminal SET status = %s WHERE id = %s"

        def one(status: str, pk: int) -> None:
            conn.execute(sql, (status, pk))
            conn.commit()
    else:
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=20, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=20000", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")

        def one(status: str, pk: int) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE fleet_terminal SET status = ? WHERE id = ?", (status, pk))
            conn.execute("COMMIT")

    ready_and_wait()
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    deadline = started + duration
    while time.perf_counter() < deadline:
        _sn, pk = terminals[done % len(terminals)]
        one("suspended" if (done // len(terminals)) % 2 == 0 else "active", pk)
        done += 1
    return {"done": done, "seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def worker_service(
    variant: str, terminals: list[tuple[str, int]], duration: float, index: int, breakdown: bool
) -> dict[str, object]:
    import django

    django.setup()
    from django.db import connection

    from posfleet.fleet import services as fleet_services
    from posfleet.fleet.models import Terminal
    from posfleet.iam.models import User
    from posfleet.platform.context import Actor

    # The module that runs the transitions and holds the names the service calls (record, publish, the
    # terminal's lock): posfleet.fleet.services until issue 11 split it, .services.lifecycle since.
    services = sys.modules[fleet_services.terminal_transition.__module__]
    lock_name = "_lock" if hasattr(services, "_lock") else "terminal_lock"

    if variant.startswith("lanes"):
        import functools

        import audit_lanes

        services.record = functools.partial(audit_lanes.record, lanes=int(variant.removeprefix("lanes")))
    admin = User.objects.get(username="admin")
    actor = Actor.for_user(admin, request_id=f"bench-{index}", source_ip="127.0.0.1")
    spent: dict[str, float] = defaultdict(float)
    statements: dict[str, int] = defaultdict(int)
    others: dict[str, int] = defaultdict(int)
    timers: list[object] = []
    if breakdown:

        def timed(name: str, fn):  # type: ignore[no-untyped-def]
            def wrapper(*a, **kw):  # type: ignore[no-untyped-def]
                t = time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    spent[name] += time.perf_counter() - t

            return wrapper

        def sql_timer(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                bucket = classify(sql)
                spent["sql: " + bucket] += time.perf_counter() - t
                statements[bucket] += 1
                if bucket == "other SQL":
                    others[" ".join(sql.split())[:90]] += 1

        services.record = timed("fn: audit write (all)", services.record)
        services.publish = timed("fn: outbox publish (all)", services.publish)
        setattr(services, lock_name, timed("fn: lock terminal (all)", getattr(services, lock_name)))
        # How long the transaction holds its audit head: from the head row locked to the commit's end
        # (with one worker, 1000 / this is the most audited transactions/s one head allows).
        held: list[float] = []

        def holding(fn):  # type: ignore[no-untyped-def]
            def wrapper(*a, **kw):  # type: ignore[no-untyped-def]
                head = fn(*a, **kw)
                if not held:
                    held.append(time.perf_counter())
                return head

            return wrapper

        def committing(fn):  # type: ignore[no-untyped-def]
            def wrapper(*a, **kw):  # type: ignore[no-untyped-def]
                t = time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    end = time.perf_counter()
                    spent["commit"] += end - t
                    if held:
                        spent["audit head held (locked → commit done)"] += end - held.pop()

            return wrapper

        import posfleet.audit.services as audit_services

        audit_services._locked_head = holding(audit_services._locked_head)
        if variant.startswith("lanes"):
            audit_lanes._take_lane = holding(audit_lanes._take_lane)
        connection.commit = committing(connection.commit)
        timers.append(connection.execute_wrapper(sql_timer))
        timers[0].__enter__()  # type: ignore[attr-defined]
    # warm the connection and Django's caches outside the timing (one read, no write)
    Terminal.objects.filter(pk=terminals[0][1]).exists()
    ready_and_wait()
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    deadline = started + duration
    while time.perf_counter() < deadline:
        sn, _pk = terminals[done % len(terminals)]
        if (done // len(terminals)) % 2 == 0:
            fleet_services.terminal_transition(actor=actor, sn=sn, action="suspend", reason="risk")
        else:
            fleet_services.terminal_transition(actor=actor, sn=sn, action="resume")
        done += 1
    seconds = time.perf_counter() - started
    return {
        "done": done,
        "seconds": seconds,
        "cpu": time.process_time() - cpu,
        "spent": dict(spent),
        "statements": dict(statements),
        "other_sql": dict(sorted(others.items(), key=lambda kv: -kv[1])[:8]),
    }


def phase_worker(args: argparse.Namespace) -> dict[str, object]:
    everything = json.loads(Path(args.targets).read_text())
    mine = [tuple(t) for t in everything[args.index * PER_WORKER : (args.index + 1) * PER_WORKER]]
    if args.variant == "raw":
        result = worker_raw(os.environ["POSFLEET_DATABASE_URL"], mine, args.duration)  # type: ignore[arg-type]
    else:
        result = worker_service(args.variant, mine, args.duration, args.index, args.breakdown)  # type: ignore[arg-type]
    result["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result


def phase_check(args: argparse.Namespace) -> dict[str, object]:
    """After a lanes16 phase: verify the prototype's chain and try every kind of tampering on it."""
    import django

    django.setup()
    import audit_lanes

    from posfleet.platform.context import Actor

    written = audit_lanes.LaneEvent.objects.count()
    cases = audit_lanes.tamper_checks(Actor.system("bench-tamper"), lanes=LANES)
    audit_lanes.backfill(lanes=LANES)  # as many events as today's chain holds, to time verify
    events = audit_lanes.LaneEvent.objects.count()
    started = time.perf_counter()
    verdict = audit_lanes.verify()
    verify_seconds = time.perf_counter() - started
    from posfleet.audit.verify import verify_chain

    started = time.perf_counter()
    today = verify_chain()
    today_seconds = time.perf_counter() - started
    return {
        "lanes_written": written,
        "lanes_events": events,
        "lanes_verify_ok": verdict.ok,
        "lanes_verify_rows_per_s": events / verify_seconds if verify_seconds else 0,
        "chain_events": today.checked,
        "chain_verify_ok": today.ok,
        "chain_verify_rows_per_s": today.checked / today_seconds if today_seconds else 0,
        "cases": cases,
    }


# -- the run ------------------------------------------------------------------------------------


def run_phase(
    engine, template: str, variant: str, workers: int, args: argparse.Namespace, work: Path, label: str
) -> dict[str, object]:
    url = engine.create(label, template)
    env = env_for(url, work, args.src)
    load = os.getloadavg()[0]  # the 1-minute load average as the phase starts (2 cores: 2 is busy)
    procs: list[subprocess.Popen[str]] = []
    try:
        for index in range(workers):
            cmd = [
                sys.executable,
                __file__,
                "--phase",
                "worker",
                "--variant",
                variant,
                "--index",
                str(index),
                "--duration",
                str(args.duration),
                "--targets",
                str(args.targets_file),
            ]
            if args.breaking_down:
                cmd.append("--breakdown")
            procs.append(
                subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
        for proc in procs:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if line.strip() != "ready":
                proc.wait()
                raise SystemExit(f"worker failed to start: {line!r}")
        for proc in procs:
            proc.stdin.write("go\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        results = []
        for proc in procs:
            out, _err = proc.communicate(timeout=args.duration + 120)
            if proc.returncode != 0:
                raise SystemExit(f"worker exited with {proc.returncode}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        if variant == "lanes16" and args.check_lanes and not args.checked.get(engine.name):
            args.checked[engine.name] = run_child(["--phase", "check"], env)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        engine.drop(url)
    done = sum(int(r["done"]) for r in results)
    seconds = max(float(r["seconds"]) for r in results)
    spent: dict[str, float] = defaultdict(float)
    statements: dict[str, float] = defaultdict(float)
    for r in results:
        for name, value in dict(r.get("spent", {})).items():  # type: ignore[arg-type]
            spent[name] += float(value)
        for name, value in dict(r.get("statements", {})).items():  # type: ignore[arg-type]
            statements[name] += float(value)
    return {
        "variant": variant,
        "workers": workers,
        "load": round(load, 2),
        "done": done,
        "seconds": round(seconds, 3),
        "per_s": done / seconds,
        # the workers' own CPU (Python, and SQLite's work in-process; not PostgreSQL's server processes)
        "cpu_ms_per_transition": round(sum(float(r["cpu"]) for r in results) * 1000 / done, 3),
        "ms_per_transition": {k: round(v * 1000 / done, 3) for k, v in sorted(spent.items())},
        "wall_ms_per_transition": round(sum(float(r["seconds"]) for r in results) * 1000 / done, 3),
        "statements_per_transition": {k: round(v / done, 2) for k, v in sorted(statements.items())},
        "other_sql": results[0].get("other_sql", {}),
    }


def bench_engine(engine, args: argparse.Namespace, work: Path) -> dict[str, object]:
    template = engine.create("template")
    args.targets_file = work / f"targets-{engine.name}.json"
    setup = run_child(
        ["--phase", "setup", "--terminals", str(args.terminals), "--targets", str(args.targets_file)],
        env_for(template, work, args.src),
    )
    print(json.dumps({**setup, "engine": engine.name}), flush=True)
    if int(setup["active"]) < PER_WORKER * max(args.worker_counts):
        raise SystemExit("not enough active terminals for that many workers")
    rows: dict[tuple[str, int], list[float]] = defaultdict(list)
    cpu: dict[tuple[str, int], list[float]] = defaultdict(list)
    loads: list[float] = []
    breakdown: dict[tuple[str, int], list[dict[str, object]]] = defaultdict(list)
    n_phase = 0
    args.breaking_down = False
    for n in range(args.repeat + 1):  # the first round warms up and is not counted
        for workers in args.worker_counts:
            for variant in args.variant_list:
                n_phase += 1
                result = run_phase(engine, template, variant, workers, args, work, f"p{n_phase}")
                result.update(engine=engine.name, round=n, warm_up=n == 0)
                print(json.dumps(result), flush=True)
                if n:
                    rows[(variant, workers)].append(float(result["per_s"]))
                    cpu[(variant, workers)].append(float(result["cpu_ms_per_transition"]))
                    loads.append(float(result["load"]))
    if args.breakdown:
        args.breaking_down = True
        for workers in args.worker_counts:
            for variant in [v for v in args.variant_list if v != "raw"]:
                n_phase += 1
                result = run_phase(engine, template, variant, workers, args, work, f"p{n_phase}")
                result.update(engine=engine.name, instrumented=True)
                print(json.dumps(result), flush=True)
                breakdown[(variant, workers)].append(result)
    engine.drop(template)
    return {
        "engine": engine.name,
        "setup": setup,
        "rows": rows,
        "cpu": cpu,
        "breakdown": breakdown,
        "load": spread(loads, ".1f"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--terminals", type=int, default=10_000, help="size of the demo fleet")
    parser.add_argument("--workers", default="1,8", help="concurrency levels, comma-separated")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--repeat", type=int, default=3, help="rounds after a warm-up round")
    parser.add_argument("--breakdown", action="store_true", help="+ instrumented phases (time per step)")
    parser.add_argument("--check-lanes", action="store_true", help="+ tamper checks on the prototype")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--src", type=Path, help="source tree to measure (default: the installed posfleet)")
    parser.add_argument("--phase", choices=["setup", "worker", "check"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "setup":
        result = phase_setup(args.terminals, Path(args.targets))
    elif args.phase == "worker":
        result = phase_worker(args)
    elif args.phase == "check":
        result = phase_check(args)
    if args.phase:
        print(json.dumps(result))
        return
    args.worker_counts = [int(w) for w in args.workers.split(",")]
    args.variant_list = [v for v in args.variants.split(",") if v]
    args.checked = {}
    summaries = each_engine("transitions", args, bench_engine)
    print()
    print(f"{args.duration:g} s per phase, {args.repeat} rounds; transitions/s, median [range] of the rounds")
    for s in summaries:
        print(f"{s['engine']}: 1-minute load average as the phases started {s['load']} (2 cores)")
    print()
    print("| engine | workers | " + " | ".join(args.variant_list) + " | **ours / raw** | lanes16 / ours |")
    print("|---|---:|" + "---:|" * (len(args.variant_list) + 2))
    for s in summaries:
        for workers in args.worker_counts:
            cells = [spread(s["rows"][(v, workers)]) for v in args.variant_list]
            ours = s["rows"].get(("ours", workers), [])
            raw = s["rows"].get(("raw", workers), [])
            lanes = s["rows"].get(("lanes16", workers), [])
            ratio = spread([o / r for o, r in zip(ours, raw, strict=True)], ".3f") if ours and raw else "–"
            gain = spread([x / o for x, o in zip(lanes, ours, strict=True)], ".2f") if ours and lanes else "–"
            print(f"| {s['engine']} | {workers} | " + " | ".join(cells) + f" | **{ratio}** | {gain} |")
    print()
    print("The workers' own CPU per transition, ms (SQLite: all the work; PostgreSQL: without the server's):")
    print()
    print("| engine | workers | " + " | ".join(args.variant_list) + " | raw / ours |")
    print("|---|---:|" + "---:|" * (len(args.variant_list) + 1))
    for s in summaries:
        for workers in args.worker_counts:
            cells = [spread(s["cpu"][(v, workers)], ".3f") for v in args.variant_list]
            ours, raw = s["cpu"].get(("ours", workers), []), s["cpu"].get(("raw", workers), [])
            ratio = spread([r / o for o, r in zip(ours, raw, strict=True)], ".3f") if ours and raw else "–"
            print(f"| {s['engine']} | {workers} | " + " | ".join(cells) + f" | {ratio} |")
    if args.breakdown:
        print()
        print("Where the time goes, ms per transition (summed over the workers; instrumented runs):")
        for s in summaries:
            for (variant, workers), results in s["breakdown"].items():
                r = results[0]
                steps = dict(r["ms_per_transition"])  # type: ignore[arg-type]
                sql_total = sum(v for k, v in steps.items() if k.startswith("sql: "))
                wall = float(r["wall_ms_per_transition"])
                print()
                print(
                    f"**{s['engine']}, {variant}, {workers} worker(s)**: {float(r['per_s']):,.0f}/s, "
                    f"{wall:.3f} ms of worker time per transition"
                )
                print()
                counts = dict(r["statements_per_transition"])  # type: ignore[arg-type]
                print("| step | ms | statements |")
                print("|---|---:|---:|")
                for name, value in steps.items():
                    n = counts.get(name.removeprefix("sql: "), "")
                    print(f"| {name} | {value:.3f} | {n} |")
                python = wall - sql_total - steps.get("commit", 0.0)
                print(f"| (Python: wall − SQL − commit) | {python:.3f} | |")
    for name, check in args.checked.items():
        print()
        lanes_ok = "ok" if check["lanes_verify_ok"] else "BROKEN"
        print(
            f"Lanes prototype on {name}: {check['lanes_written']:,} events written by the phase; verify "
            f"({check['lanes_events']:,} events with a copy of the demo's chain) {lanes_ok} at "
            f"{check['lanes_verify_rows_per_s']:,.0f} rows/s; today's verify_chain: "
            f"{check['chain_events']:,} events at {check['chain_verify_rows_per_s']:,.0f} rows/s"
        )
        print()
        print("| tampering | detected | verify says |")
        print("|---|---|---|")
        for case in check["cases"]:  # type: ignore[union-attr]
            print(f"| {case['case']} | {'yes' if case['detected'] else 'no'} | {case['named']} |")


if __name__ == "__main__":
    main()
