#!/usr/bin/env python3
"""Transaction ingest and T+1 settlement through posfleet's real code, against a raw SQL aggregate.

    python bench/settlement.py                   # 1,000,000 transactions, 10,000 merchants, SQLite
    python bench/settlement.py --large           # 10,000,000 transactions instead
    python bench/settlement.py --postgres        # also PostgreSQL (scratch databases, dropped after)
    python bench/settlement.py --rows 100000 --merchants 1000 --repeat 1   # a quick look

Each phase runs in its own subprocess on its own database, so its time and peak memory (ru_maxrss)
are its own:

- setup: migrate a template; 10,000 merchants (with their organisations), one active terminal each
  (an ``active`` status period since 2026-01-01), all on the standard plan; 1 % of them owe an annual
  service fee due three days before the business date. Bulk inserts: fixtures, not the code measured.
- ingest: ``billing.services.transactions.transactions_ingest`` in batches of 10,000, merchant after
  merchant (an acquirer's files come per terminal batch): 100 transactions per merchant over the
  seven days up to the business date — sales (QR 45 %, credit 25 %, debit 20 %, NFC 8 %, foreign
  2 %; 1.00–5,000.00 yuan, log-uniform), 3 % declines, 2 % partial refunds and 1 % reversals of
  earlier sales. Only the service calls are timed (generating the items is not). Every item must be
  accepted.
- settle: one ``billing.services.settlement.settlement_run`` for the business date (the real code:
  service fees charged, per-merchant aggregates, batches, journals), on a fresh copy of the
  ingested database. Afterwards (untimed) the per-merchant batch totals are digested and
  ``verify_ledger`` must pass.
- raw: the same per-merchant totals (count, gross, refunds, fees, net) with one GROUP BY through a
  DB-API cursor on a fresh copy of the ingested database: the floor.

Settle and raw alternate after a warm-up pair; the report gives medians with their range, the ratio
settle / raw (goal ≤ 3) and whether both sides' per-merchant totals are identical to the fen.
Output: one JSON line per phase, then a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import resource
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import bench_parties, child_env, each_engine, memory, rss_kb, run_child, spread  # noqa: E402

BUSINESS_DATE = date(2026, 11, 15)
DAYS = 7
SH = ZoneInfo("Asia/Shanghai")
BATCH = 10_000
METHODS = [("qr", 45), ("credit", 25), ("debit", 20), ("nfc", 8), ("foreign", 2)]
ENTRY = {"qr": "scan", "credit": "insert", "debit": "swipe", "nfc": "tap", "foreign": "insert"}


# -- phases (run in a child process) -------------------------------------------------------------


def tid_of(m: int) -> str:
    return f"B{m:07d}"


def phase_setup(merchants: int) -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", verbosity=0, skip_checks=True)
    from posfleet.billing.defaults import ensure_standard_plan
    from posfleet.billing.models import PlanAssignment, ServiceContract, ServiceFeeDue
    from posfleet.fleet.models import StatusPeriod, Terminal

    with transaction.atomic():
        agent, model, shops = bench_parties(merchants)
        plan = ensure_standard_plan()
        since = datetime(2026, 1, 1, tzinfo=SH)
        terminals = Terminal.objects.bulk_create(
            [
                Terminal(
                    sn=f"BENCH{m:08d}",
                    model=model,
                    status="active",
                    tid=tid_of(m),
                    agent=agent,
                    merchant=shop,
                    status_changed_at=since,
                )
                for m, shop in enumerate(shops)
            ],
            batch_size=5000,
        )
        StatusPeriod.objects.bulk_create(
            [StatusPeriod(terminal=t, status="active", started_at=since) for t in terminals], batch_size=5000
        )
        PlanAssignment.objects.bulk_create(
            [PlanAssignment(merchant=shop, plan=plan, effective_from=since.date()) for shop in shops],
            batch_size=5000,
        )
        owing = list(zip(shops, terminals, strict=True))[::100]  # 1 % owe this year's service fee
        contracts = ServiceContract.objects.bulk_create(
            [
                ServiceContract(
                    terminal=t,
                    merchant=shop,
                    plan=plan,
                    status="active",
                    starts_on=BUSINESS_DATE - timedelta(days=3),
                    annual_fee_fen=9900,
                )
                for shop, t in owing
            ]
        )
        ServiceFeeDue.objects.bulk_create(
            [
                ServiceFeeDue(contract=c, period=1, due_on=BUSINESS_DATE - timedelta(days=3), amount_fen=9900)
                for c in contracts
            ]
        )
    return {"phase": "setup", "merchants": merchants, "owing_service_fees": len(contracts)}


def merchant_items(m: int, per_merchant: int):  # -> list[TxnIn]
    """One merchant's transactions over the week, deterministic (seeded by the merchant)."""
    from posfleet.billing.services.transactions import TxnIn

    rng = random.Random(m)
    tid = tid_of(m)
    items: list[TxnIn] = []
    sales: list[list] = []  # [item, amount left to refund, refunded?]
    methods = [name for name, weight in METHODS for _ in range(weight)]
    low, high = math.log(100), math.log(500_000)
    for j in range(per_merchant):
        day = BUSINESS_DATE - timedelta(days=DAYS - 1 - j * DAYS // per_merchant)
        seconds = 8 * 3600 + (j * 50_000 // per_merchant) % 50_000 + rng.randrange(30)
        at = datetime(day.year, day.month, day.day, tzinfo=SH) + timedelta(seconds=seconds)
        common = {
            "tid": tid,
            "batch_no": f"{(day - BUSINESS_DATE).days + 10:06d}",
            "trace_no": f"{j + 1:06d}",
        }
        r = rng.random()
        open_sales = [s for s in sales[-20:] if s[1] > 0]
        same_day = [s for s in open_sales if s[0].txn_date == day and not s[2]]
        if r < 0.01 and same_day:
            sale = same_day[-1]
            kind, amount = "reversal", sale[0].amount_fen
        elif r < 0.03 and open_sales:
            sale = rng.choice(open_sales)
            kind, amount = "refund", max(1, sale[1] * rng.randrange(10, 60) // 100)
        else:
            sale = None
        if sale is not None:
            sale[1] -= amount
            sale[2] = True
            item = TxnIn(
                **common,
                txn_date=day,
                occurred_at=at,
                method=sale[0].method,
                entry_mode=sale[0].entry_mode,
                amount_fen=amount,
                kind=kind,
                original=sale[0].key,
            )
        else:
            method = rng.choice(methods)
            declined = rng.random() < 0.03
            item = TxnIn(
                **common,
                txn_date=day,
                occurred_at=at,
                method=method,
                entry_mode=ENTRY[method],
                amount_fen=int(math.exp(rng.uniform(low, high))),
                status="declined" if declined else "approved",
                response_code="51" if declined else "00",
                card_masked="" if method == "qr" else f"62220{m % 10}******{j % 10000:04d}",
            )
            if not declined:
                sales.append([item, item.amount_fen, False])
        items.append(item)
    return items


def phase_ingest(merchants: int, per_merchant: int) -> dict[str, object]:
    import django

    django.setup()
    from collections import Counter

    from posfleet.billing.models import Transaction
    from posfleet.billing.services.transactions import transactions_ingest
    from posfleet.platform.context import Actor

    actor = Actor.job("bench-ingest")
    baseline = rss_kb()
    seconds, rows, refused = 0.0, 0, Counter()
    pending: list = []

    def send(batch: list) -> None:
        nonlocal seconds, rows
        started = time.perf_counter()
        results = transactions_ingest(actor=actor, items=batch)
        seconds += time.perf_counter() - started
        rows += len(batch)
        refused.update(r.code for r in results if not r.ok)

    for m in range(merchants):
        pending.extend(merchant_items(m, per_merchant))
        while len(pending) >= BATCH:
            send(pending[:BATCH])
            pending = pending[BATCH:]
    if pending:
        send(pending)
    if refused:
        raise SystemExit(f"refused items: {dict(refused)}")
    stored = Transaction.objects.count()
    if stored != rows:
        raise SystemExit(f"stored {stored} transactions, sent {rows}")
    from django.db import connection

    with connection.cursor() as cursor:  # statistics, as autovacuum / PRAGMA optimize would gather them
        cursor.execute("ANALYZE")
    return {"rows": rows, "seconds": seconds, "baseline_kb": baseline}


def digest(rows: list[tuple[int, int, int, int, int, int]]) -> dict[str, object]:
    """(merchant, count, gross, refunds, fees, net) rows -> a fingerprint and the grand totals."""
    rows = sorted(rows)
    return {
        "merchants": len(rows),
        "digest": hashlib.sha256(repr(rows).encode()).hexdigest()[:16],
        "totals": [sum(r[i] for r in rows) for i in range(1, 6)],
    }


def phase_settle() -> dict[str, object]:
    import django

    django.setup()
    from posfleet.billing.models import SettlementBatch, Transaction
    from posfleet.billing.selectors import with_settlement
    from posfleet.billing.services.settlement import settlement_run
    from posfleet.billing.verify import verify_ledger
    from posfleet.platform.context import Actor

    baseline = rss_kb()
    profile = os.environ.get("POSFLEET_BENCH_PROFILE")  # a file for cProfile's stats of the run
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    run = settlement_run(actor=Actor.job("bench-settle"), business_date=BUSINESS_DATE)
    seconds = time.perf_counter() - started
    if profile:
        profiler.disable()
        profiler.dump_stats(profile)
    batches = SettlementBatch.objects.values_list(
        "merchant_id", "txn_count", "gross_fen", "refunds_fen", "fees_fen", "payout_fen", "service_fees_fen"
    )
    rows = [(m, n, g, r, f, p + s) for m, n, g, r, f, p, s in batches]
    ledger = verify_ledger()
    left = (
        with_settlement(Transaction.objects.filter(status="approved")).filter(settled_by__isnull=True).count()
    )
    return {
        "seconds": seconds,
        "baseline_kb": baseline,
        "status": run.status,
        "ledger_ok": ledger.ok,
        "unsettled_left": left,
        "service_fees_fen": sum(b[6] for b in batches),
        **digest(rows),
    }


# On a fresh copy of the ingested database nothing is settled yet, so "approved, up to the day" is the
# set settlement pays; the baseline reads it with the cheapest query (no join to the day totals).
RAW_SQL = """
SELECT merchant_id,
       COUNT(*),
       SUM(CASE WHEN kind = 'sale' THEN amount_fen ELSE 0 END),
       SUM(CASE WHEN kind <> 'sale' THEN amount_fen ELSE 0 END),
       SUM(CASE WHEN kind = 'sale' THEN fee_fen ELSE -fee_fen END)
  FROM billing_transaction
 WHERE status = 'approved' AND txn_date <= {mark}
 GROUP BY merchant_id
"""


def phase_raw(db_url: str) -> dict[str, object]:
    if db_url.startswith("postgres"):
        import psycopg

        conn = psycopg.connect(db_url)
        sql, param = RAW_SQL.format(mark="%s"), BUSINESS_DATE
    else:
        import sqlite3

        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        sql, param = RAW_SQL.format(mark="?"), BUSINESS_DATE.isoformat()
    baseline = rss_kb()
    started = time.perf_counter()
    fetched = conn.execute(sql, [param]).fetchall()
    seconds = time.perf_counter() - started
    conn.close()
    rows = [(m, n, int(g), int(r), int(f), int(g - r - f)) for m, n, g, r, f in fetched]  # numeric on PG
    return {"seconds": seconds, "baseline_kb": baseline, **digest([r for r in rows if r[5] > 0])}


RAW_BATCHES = """
INSERT INTO billing_settlementbatch (merchant_id, business_date, paid_on, run_id, txn_count, gross_fen,
                                     refunds_fen, fees_fen, service_fees_fen, payout_fen, created_at)
SELECT merchant_id, {day}, {paid}, {run}, n, gross, refunds, fees, 0, gross - refunds - fees, {now}
  FROM ({aggregate}) AS totals
 WHERE gross - refunds - fees > 0
"""


def phase_rawsettle(db_url: str) -> dict[str, object]:
    """The SQL floor of the settlement's own writes: one batch per merchant (INSERT … SELECT … GROUP
    BY over the day totals of the day's window), in one transaction. No journals, no ledger, no
    service fees, no progress: what any settlement of this schema must at least do."""
    postgres = db_url.startswith("postgres")
    if postgres:
        import psycopg

        conn = psycopg.connect(db_url)
        mark = "%s"
    else:
        import sqlite3

        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        mark = "?"
    day, paid = BUSINESS_DATE.isoformat(), (BUSINESS_DATE + timedelta(days=1)).isoformat()
    stamp = datetime.now(tz=SH).isoformat()
    run = conn.execute(
        "INSERT INTO billing_settlementrun (business_date, status, started_at, merchants_total,"
        " merchants_done, last_merchant_id, attempts, error)"
        f" VALUES ({mark}, 'done', {mark}, 0, 0, 0, 1, '') RETURNING id",
        [day, stamp],
    ).fetchone()[0]
    conn.commit()
    aggregate = (
        "SELECT merchant_id, SUM(txn_count) AS n, SUM(gross_fen) AS gross, SUM(refunds_fen) AS refunds,"
        f" SUM(fees_fen) AS fees FROM billing_dailytotal WHERE settle_day <= {mark} GROUP BY merchant_id"
    )
    baseline = rss_kb()
    started = time.perf_counter()
    conn.execute(
        RAW_BATCHES.format(day=mark, paid=mark, run=mark, now=mark, aggregate=aggregate),
        [day, paid, run, stamp, day],
    )
    conn.commit()
    seconds = time.perf_counter() - started
    batches = conn.execute(
        "SELECT merchant_id, txn_count, gross_fen, refunds_fen, fees_fen, payout_fen"
        " FROM billing_settlementbatch"
    ).fetchall()
    conn.close()
    return {
        "seconds": seconds,
        "baseline_kb": baseline,
        **digest([tuple(b) for b in batches]),
    }


def child_main(args: argparse.Namespace) -> None:
    if args.phase == "setup":
        result = phase_setup(args.merchants)
    elif args.phase == "ingest":
        result = phase_ingest(args.merchants, args.rows // args.merchants)
    elif args.phase == "settle":
        result = phase_settle()
    elif args.phase == "rawsettle":
        result = phase_rawsettle(os.environ["POSFLEET_DATABASE_URL"])
    else:
        result = phase_raw(os.environ["POSFLEET_DATABASE_URL"])
    result["phase"] = args.phase
    result["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


# -- the run -------------------------------------------------------------------------------------


def bench_engine(engine, args: argparse.Namespace, work: Path) -> dict[str, object]:
    rows, merchants = args.rows, args.merchants
    label = f"{engine.name} {rows:,} rows"
    template = engine.create("template")
    run_child(__file__, ["--phase", "setup", "--merchants", str(merchants)], child_env(template, work))
    ingests = []
    ingested = ""
    for n in range(args.ingest_repeat):
        url = engine.create(f"ingest{n}", template)
        result = run_child(
            __file__,
            ["--phase", "ingest", "--rows", str(rows), "--merchants", str(merchants)],
            child_env(url, work),
        )
        result.update(engine=engine.name, rows_per_s=rows / float(result["seconds"]))
        print(json.dumps(result), flush=True)
        ingests.append(result)
        if ingested:
            engine.drop(ingested)
        ingested = url
    engine.drop(template)
    settles, raws, floors = [], [], []
    for n in range(args.repeat + 1):  # the first round warms up and is not counted
        for phase in ("settle", "raw", "rawsettle"):
            url = engine.create(f"{phase}{n}", ingested)
            try:
                result = run_child(__file__, ["--phase", phase], child_env(url, work))
            finally:
                engine.drop(url)
            result.update(engine=engine.name, warm_up=n == 0)
            print(json.dumps(result), flush=True)
            if n:
                {"settle": settles, "raw": raws, "rawsettle": floors}[phase].append(result)
    engine.drop(ingested)
    first = settles[0]
    ratios = [float(s["seconds"]) / float(r["seconds"]) for s, r in zip(settles, raws, strict=True)]
    floor_ratios = [float(s["seconds"]) / float(f["seconds"]) for s, f in zip(settles, floors, strict=True)]
    fingerprints = {(r["digest"], tuple(r["totals"]), r["merchants"]) for r in settles + raws + floors}
    match = len(fingerprints) == 1
    return {
        "label": label,
        "engine": engine.name,
        "rows": rows,
        "merchants": merchants,
        "ingest": spread([float(r["rows_per_s"]) for r in ingests]),
        "ingest_mem": memory(ingests),
        "settle": spread([float(r["seconds"]) for r in settles], ",.2f"),
        "settle_mem": memory(settles),
        "raw": spread([float(r["seconds"]) for r in raws], ",.2f"),
        "raw_mem": memory(raws),
        "ratio": spread(ratios, ".2f"),
        "floor": spread([float(r["seconds"]) for r in floors], ",.2f"),
        "floor_ratio": spread(floor_ratios, ".2f"),
        "match": match and all(s["ledger_ok"] and s["unsettled_left"] == 0 for s in settles),
        "batches": first["merchants"],
        "payout_totals": first["totals"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=10_000)
    parser.add_argument("--large", action="store_true", help="10,000,000 transactions")
    parser.add_argument("--repeat", type=int, default=3, help="settle/raw pairs (after a warm-up pair)")
    parser.add_argument("--ingest-repeat", type=int, default=1, help="ingest runs (each on a fresh database)")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--phase", choices=["setup", "ingest", "settle", "raw", "rawsettle"], help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.phase:
        sys.path.insert(0, str(ROOT / "src"))
        child_main(args)
        return
    if args.large:
        args.rows = 10_000_000
    if args.rows % args.merchants:
        raise SystemExit("--rows must be a multiple of --merchants")
    summaries = each_engine("settle", args, bench_engine)
    print()
    print(
        "| engine | transactions | merchants | ingest rows/s | settlement s | raw aggregate s "
        "| ratio settle/aggregate | raw settle (batches) s | ratio settle/raw settle "
        "| totals identical | peak RSS ingest / settle / raw |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for s in summaries:
        print(
            f"| {s['engine']} | {s['rows']:,} | {s['merchants']:,} | {s['ingest']} | {s['settle']} "
            f"| {s['raw']} | **{s['ratio']}** | {s['floor']} | **{s['floor_ratio']}** "
            f"| {'yes' if s['match'] else 'NO'} | {s['ingest_mem']} / {s['settle_mem']} / {s['raw_mem']} |"
        )


if __name__ == "__main__":
    main()
