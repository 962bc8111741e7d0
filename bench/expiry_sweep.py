#!/usr/bin/env python3
"""The daily expiry sweep through posfleet's real code, against the raw indexed query that finds the
same rows.

    python bench/expiry_sweep.py                 # 1,000,000 terminals in service, SQLite
    python bench/expiry_sweep.py --large         # 10,000,000 instead
    python bench/expiry_sweep.py --postgres      # also PostgreSQL (scratch databases, dropped after)
    python bench/expiry_sweep.py --terminals 100000 --repeat 1    # a quick look

Each phase runs in its own subprocess on its own copy of the database:

- setup: migrate a template; 10,000 merchants under one agent and N active terminals spread over them,
  service expiry dates uniform over two years around the business date (a year back, a year on);
  then yesterday's sweep (``expiry_sweep`` for the day before; untimed), so the milestones of every
  day before are on record as they would be in service. Fixtures: bulk inserts, not the code measured.
- ours: ``enrollment.expiry.expiry_sweep`` for the business date — per milestone (T-30, T-7, T-1,
  expired) one INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING, the owners of the terminals found,
  one outbox event per milestone, the audit row, the commit. Afterwards (untimed) the milestones
  recorded for the day are digested.
- raw: the same windows with one SELECT each through a DB-API cursor — the terminals in the window
  (index on the expiry date) that have no milestone row yet (the unique index): what any sweep must
  at least read. The rows it finds must be the ones ours recorded.

ours and raw alternate after a warm-up pair; medians with their range, the ratio ours / raw
(goal ≤ 3), the rows found on both sides (must match) and peak memory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import bench_parties, child_env, each_engine, memory, rss_kb, run_child, spread  # noqa: E402

DAY = date(2026, 11, 15)
SPAN = 730  # expiry dates from a year before DAY to a year after
MERCHANTS = 10_000
SH = ZoneInfo("Asia/Shanghai")


def expiry_of(n: int) -> date:
    return DAY - timedelta(days=365) + timedelta(days=(n * 7919) % SPAN)  # uniform, not in id order


def digest(rows: list[tuple[int, str]]) -> dict[str, object]:
    rows = sorted(rows)
    return {"found": len(rows), "digest": hashlib.sha256(repr(rows).encode()).hexdigest()[:16]}


# -- phases (run in a child process) -------------------------------------------------------------


def phase_setup(terminals: int) -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    call_command("migrate", verbosity=0, skip_checks=True)
    from posfleet.enrollment.services.expiry import expiry_sweep
    from posfleet.fleet.models import Terminal
    from posfleet.platform.bulk import insert_rows
    from posfleet.platform.context import Actor

    since = datetime(2025, 1, 1, tzinfo=SH)
    with transaction.atomic():
        agent, model, shops = bench_parties(MERCHANTS)
        shop_ids = [s.pk for s in shops]
        insert_rows(
            Terminal,
            ("sn", "tid", "merchant", "service_expires_on"),
            (
                (f"BENCH{n:09d}", f"{n + 10_000_000:08d}", shop_ids[n % MERCHANTS], expiry_of(n))
                for n in range(terminals)
            ),
            model=model.pk,
            status="active",
            agent=agent.pk,
            status_changed_at=since,
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    started = time.perf_counter()
    yesterday = expiry_sweep(actor=Actor.job("bench-setup"), day=DAY - timedelta(days=1))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if connection.vendor == "postgresql" else "PRAGMA optimize")
    return {
        "terminals": terminals,
        "yesterday_found": yesterday.found,
        "yesterday_seconds": round(time.perf_counter() - started, 2),
    }


def phase_ours() -> dict[str, object]:
    import django

    django.setup()
    from posfleet.enrollment.models import ExpiryMilestone
    from posfleet.enrollment.services.expiry import expiry_sweep
    from posfleet.platform.context import Actor
    from posfleet.platform.models import OutboxMessage

    outbox_before = OutboxMessage.objects.count()
    baseline = rss_kb()
    started = time.perf_counter()
    result = expiry_sweep(actor=Actor.job("bench"), day=DAY)
    seconds = time.perf_counter() - started
    recorded = list(ExpiryMilestone.objects.filter(reached_on=DAY).values_list("terminal_id", "milestone"))
    return {
        "seconds": seconds,
        "baseline_kb": baseline,
        "by_milestone": result.found,
        "outbox_written": OutboxMessage.objects.count() - outbox_before,
        **digest(recorded),
    }


RAW_SQL = """
SELECT t.id FROM fleet_terminal AS t
 WHERE t.service_expires_on BETWEEN {m} AND {m}
   AND t.status IN ('bound', 'active', 'suspended')
   AND t.merchant_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM enrollment_expirymilestone AS e
                    WHERE e.terminal_id = t.id AND e.expires_on = t.service_expires_on AND e.milestone = {m})
"""


def phase_raw(db_url: str) -> dict[str, object]:
    # The windows as the code computes them (30/7/1 days before, 15 days of grace after).
    windows = [
        ("t30", DAY + timedelta(days=8), DAY + timedelta(days=30)),
        ("t7", DAY + timedelta(days=2), DAY + timedelta(days=7)),
        ("t1", DAY + timedelta(days=1), DAY + timedelta(days=1)),
        ("expired", DAY - timedelta(days=15), DAY - timedelta(days=1)),
    ]
    if db_url.startswith("postgres"):
        import psycopg

        conn = psycopg.connect(db_url)
        sql = RAW_SQL.format(m="%s")

        def bind(first: date, last: date, milestone: str) -> list[object]:
            return [first, last, milestone]
    else:
        import sqlite3

        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        sql = RAW_SQL.format(m="?")

        def bind(first: date, last: date, milestone: str) -> list[object]:
            return [first.isoformat(), last.isoformat(), milestone]

    baseline = rss_kb()
    started = time.perf_counter()
    found: list[tuple[int, str]] = []
    for milestone, first, last in windows:
        found += [(pk, milestone) for (pk,) in conn.execute(sql, bind(first, last, milestone)).fetchall()]
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds, "baseline_kb": baseline, **digest(found)}


def child_main(args: argparse.Namespace) -> None:
    import os

    if args.phase == "setup":
        result = phase_setup(args.terminals)
    elif args.phase == "ours":
        result = phase_ours()
    else:
        result = phase_raw(os.environ["POSFLEET_DATABASE_URL"])
    result["phase"] = args.phase
    result["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


# -- the run -------------------------------------------------------------------------------------


def bench_engine(engine, args: argparse.Namespace, work: Path) -> dict[str, object]:
    template = engine.create("template")
    setup = run_child(
        __file__, ["--phase", "setup", "--terminals", str(args.terminals)], child_env(template, work)
    )
    print(json.dumps({**setup, "engine": engine.name}), flush=True)
    ours, raws = [], []
    for n in range(args.repeat + 1):  # the first round warms up and is not counted
        for phase in ("ours", "raw"):
            url = engine.create(f"{phase}{n}", template)
            try:
                result = run_child(__file__, ["--phase", phase], child_env(url, work))
            finally:
                engine.drop(url)
            result.update(engine=engine.name, warm_up=n == 0)
            print(json.dumps(result), flush=True)
            if n:
                (ours if phase == "ours" else raws).append(result)
    engine.drop(template)
    ratios = [float(o["seconds"]) / float(r["seconds"]) for o, r in zip(ours, raws, strict=True)]
    fingerprints = {(r["found"], r["digest"]) for r in ours + raws}
    return {
        "engine": engine.name,
        "terminals": args.terminals,
        "ours": spread([float(r["seconds"]) * 1000 for r in ours], ",.1f"),
        "raw": spread([float(r["seconds"]) * 1000 for r in raws], ",.1f"),
        "ratio": spread(ratios, ".2f"),
        "found": ours[0]["found"],
        "match": len(fingerprints) == 1 and all(int(o["outbox_written"]) == int(o["found"]) for o in ours),
        "mem": f"{memory(ours)} / {memory(raws)}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--terminals", type=int, default=1_000_000)
    parser.add_argument("--large", action="store_true", help="10,000,000 terminals")
    parser.add_argument("--repeat", type=int, default=5, help="ours/raw pairs (after a warm-up pair)")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--phase", choices=["setup", "ours", "raw"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        sys.path.insert(0, str(ROOT / "src"))
        child_main(args)
        return
    if args.large:
        args.terminals = 10_000_000
    summaries = each_engine("expiry", args, bench_engine)
    print()
    print(
        "| engine | terminals | sweep ms | raw query ms | **ratio sweep/raw** | milestones found "
        "| same rows | peak RSS sweep / raw |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for s in summaries:
        print(
            f"| {s['engine']} | {s['terminals']:,} | {s['ours']} | {s['raw']} | **{s['ratio']}** "
            f"| {s['found']:,} | {'yes' if s['match'] else 'NO'} | {s['mem']} |"
        )


if __name__ == "__main__":
    main()
