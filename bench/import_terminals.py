#!/usr/bin/env python3
"""Terminal import throughput: posfleet's real import path against a raw executemany baseline.

    python bench/import_terminals.py                 # 100,000 rows, SQLite, 3 interleaved pairs
    python bench/import_terminals.py --large         # also 1,000,000 rows (memory flat in file size?)
    python bench/import_terminals.py --postgres      # also PostgreSQL (scratch databases, dropped after)
    python bench/import_terminals.py --django-import-export   # the library ADR 0006 compares with
    python bench/import_terminals.py --src /path/to/other/src # measure another source tree

Each phase runs in its own subprocess on its own fresh database (a copy of a migrated template),
so its time and peak memory (ru_maxrss) are its own:

- ours: ``posfleet import terminals FILE --commit`` (the management command, through
  ``fleet.transfer.import_terminals``): encoding check, validation pass with the disk-backed
  duplicate set and one IN query per chunk, then the write pass through
  ``fleet.services.terminals_register_batch`` (one audit event and outbox message per chunk), all
  in one transaction.
- raw: the same rows into the same table (same columns, same indexes) with a DB-API cursor:
  ``csv.reader`` -> tuples -> ``executemany`` of 10,000 rows per transaction. No validation, no
  duplicate check, no audit: the floor.

Phases alternate (ours, raw, ours, raw, …) after a warm-up pair, and the report gives medians with
their range. Output: one JSON line per phase, then a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MODEL_CODE = "pax-a920"
RAW_BATCH = 10_000


# -- the file ------------------------------------------------------------------------------------


def make_csv(path: Path, rows: int) -> None:
    """Realistic rows: distinct SNs, an ICCID, expiry dates over two years, a few firmware versions."""
    start = date(2027, 1, 1)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["sn", "model", "sim_iccid", "service_expires_on", "firmware_version"])
        for i in range(rows):
            out.writerow(
                [
                    f"PX{i:010d}",
                    MODEL_CODE,
                    f"8986{i % 3:02d}{i:014d}",
                    (start + timedelta(days=i % 730)).isoformat(),
                    f"PayDroid 8.1 V1.0{i % 7}",
                ]
            )


# -- databases -----------------------------------------------------------------------------------


def child_env(db_url: str, work: Path, src: Path | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "posfleet.config.settings.dev",
        "POSFLEET_DATABASE_URL": db_url,
        "POSFLEET_VAR_DIR": str(work),
        "POSFLEET_LOG_LEVEL": "WARNING",
    }
    if src is not None:
        env["PYTHONPATH"] = f"{src}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return env


def run_child(args: list[str], env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"phase {args} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class Engine:
    """Fresh databases made from one migrated template."""

    name = ""

    def template(self, work: Path, src: Path | None) -> None: ...

    def fresh(self, label: str) -> str: ...

    def drop(self, url: str) -> None: ...

    def cleanup(self) -> None: ...


class SQLite(Engine):
    name = "sqlite"

    def template(self, work: Path, src: Path | None) -> None:
        self.work = work
        self.path = work / "template.sqlite3"
        run_child(["--phase", "setup"], child_env(f"sqlite:///{self.path}", work, src))

    def fresh(self, label: str) -> str:
        target = self.work / f"{label}.sqlite3"
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


class Postgres(Engine):
    name = "postgresql"

    def __init__(self) -> None:
        import psycopg

        self.psycopg = psycopg
        self.prefix = f"bench_import_{os.getpid()}"
        self.made: list[str] = []

    def _admin(self, sql: str) -> None:
        with self.psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql)

    def template(self, work: Path, src: Path | None) -> None:
        self.tmpl = f"{self.prefix}_template"
        self._admin(f'CREATE DATABASE "{self.tmpl}"')
        self.made.append(self.tmpl)
        run_child(["--phase", "setup"], child_env(self._url(self.tmpl), work, src))

    def _url(self, name: str) -> str:
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def fresh(self, label: str) -> str:
        name = f"{self.prefix}_{label}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.tmpl}"')
        self.made.append(name)
        return self._url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}"')
        if name in self.made:
            self.made.remove(name)

    def cleanup(self) -> None:
        for name in list(self.made):
            self._admin(f'DROP DATABASE IF EXISTS "{name}"')
        self.made.clear()


# -- phases (run in a child process) -------------------------------------------------------------


def rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def phase_setup() -> dict[str, object]:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, skip_checks=True)
    from posfleet.fleet.models import TerminalModel

    TerminalModel.objects.create(code=MODEL_CODE, maker="PAX", name="A920", kind="smart")
    return {"phase": "setup"}


def phase_ours(csv_path: str, rows: int) -> dict[str, object]:
    import importlib
    import io

    import django

    django.setup()
    from django.core.management import call_command

    from posfleet.audit.models import AuditEvent
    from posfleet.fleet.models import Terminal

    command = importlib.import_module("posfleet.fleet.management.commands.import").Command()
    baseline = rss_kb()
    out = io.StringIO()
    started = time.perf_counter()
    call_command(command, "terminals", csv_path, "--commit", stdout=out)
    seconds = time.perf_counter() - started
    written = Terminal.objects.count()
    if written != rows:
        raise SystemExit(f"ours wrote {written} rows, expected {rows}:\n{out.getvalue()}")
    return {
        "rows": rows,
        "seconds": seconds,
        "baseline_kb": baseline,
        "audit_events": AuditEvent.objects.count(),
    }


def phase_raw(csv_path: str, rows: int, db_url: str) -> dict[str, object]:
    """Same rows, same table, same columns as the ORM writes; a DB-API cursor, 10,000 per commit."""
    import django

    django.setup()
    from django.utils import timezone

    from posfleet.fleet.models import Terminal, TerminalModel

    fields = [f for f in Terminal._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    model_id = TerminalModel.objects.get(code=MODEL_CODE).pk
    now = timezone.now()
    constant = {
        "status": "in_stock",
        "tid": None,
        "last_heartbeat_at": None,
        "status_reason": "",
        "status_changed_at": None,
        "deactivated_at": None,
        "import_batch": "RAW",
        "agent_id": None,
        "merchant_id": None,
        "store_id": None,
    }
    vendor = "postgresql" if db_url.startswith("postgres") else "sqlite"
    stamp = now if vendor == "postgresql" else now.replace(tzinfo=None).isoformat(" ")
    constant["registered_at"] = constant["updated_at"] = stamp
    position = {name: i for i, name in enumerate(columns)}
    template = [constant.get(name) for name in columns]
    i_sn, i_model, i_iccid, i_exp, i_fw = (
        position[c] for c in ("sn", "model_id", "sim_iccid", "service_expires_on", "firmware_version")
    )
    from django.db import connections

    connections.close_all()
    if vendor == "postgresql":
        import psycopg

        conn = psycopg.connect(db_url)
        marks = ", ".join(["%s"] * len(columns))
    else:
        import sqlite3

        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        marks = ", ".join(["?"] * len(columns))
    sql = f"INSERT INTO fleet_terminal ({', '.join(columns)}) VALUES ({marks})"
    baseline = rss_kb()
    started = time.perf_counter()
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        cursor = conn.cursor()
        batch: list[list[object]] = []
        for sn, _model, iccid, expires, firmware in reader:
            row = template.copy()
            row[i_sn], row[i_model], row[i_iccid], row[i_exp], row[i_fw] = (
                sn,
                model_id,
                iccid,
                expires,
                firmware,
            )
            batch.append(row)
            if len(batch) == RAW_BATCH:
                cursor.executemany(sql, batch)
                conn.commit()
                batch = []
        if batch:
            cursor.executemany(sql, batch)
            conn.commit()
    seconds = time.perf_counter() - started
    written = conn.execute("SELECT COUNT(*) FROM fleet_terminal").fetchone()[0]
    conn.close()
    if written != rows:
        raise SystemExit(f"raw wrote {written} rows, expected {rows}")
    return {"rows": rows, "seconds": seconds, "baseline_kb": baseline}


def phase_import_export(csv_path: str, rows: int) -> dict[str, object]:
    """django-import-export 4 (ARCHITECTURE.md's named library), as its docs show, bulk mode on."""
    import django

    django.setup()
    import tablib
    from import_export import fields, resources, widgets

    from posfleet.fleet.models import Terminal, TerminalModel

    use_bulk = os.environ.get("BENCH_IE_BULK", "1") == "1"

    class TerminalResource(resources.ModelResource):
        model = fields.Field(
            attribute="model",
            column_name="model",
            widget=widgets.ForeignKeyWidget(TerminalModel, field="code"),
        )

        class Meta:
            model = Terminal
            fields = ("sn", "model", "sim_iccid", "service_expires_on", "firmware_version")
            import_id_fields = ("sn",)
            skip_unchanged = False
            batch_size = 1000

    TerminalResource._meta.use_bulk = use_bulk
    baseline = rss_kb()
    started = time.perf_counter()
    with open(csv_path, encoding="utf-8") as fh:
        dataset = tablib.Dataset().load(fh.read(), format="csv")
    result = TerminalResource().import_data(dataset, dry_run=False, raise_errors=True, use_transactions=True)
    seconds = time.perf_counter() - started
    written = Terminal.objects.count()
    if written != rows or result.has_errors():
        raise SystemExit(f"django-import-export wrote {written} rows, expected {rows}")
    return {"rows": rows, "seconds": seconds, "baseline_kb": baseline, "use_bulk": use_bulk}


def child_main(args: argparse.Namespace) -> None:
    if args.phase == "setup":
        result = phase_setup()
    elif args.phase == "ours":
        result = phase_ours(args.csv, args.rows)
    elif args.phase == "raw":
        result = phase_raw(args.csv, args.rows, os.environ["POSFLEET_DATABASE_URL"])
    else:
        result = phase_import_export(args.csv, args.rows)
    result["phase"] = args.phase
    result["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


# -- the run -------------------------------------------------------------------------------------


def measure(
    engine: Engine,
    phase: str,
    csv_path: Path,
    rows: int,
    work: Path,
    src: Path | None,
    n: int,
    env_extra: dict[str, str] | None = None,
) -> dict[str, object]:
    url = engine.fresh(f"{phase}_{rows}_{n}")
    try:
        env = child_env(url, work, src)
        env.update(env_extra or {})
        result = run_child(["--phase", phase, "--csv", str(csv_path), "--rows", str(rows)], env)
    finally:
        engine.drop(url)
    result.update(engine=engine.name, rows_per_s=rows / float(result["seconds"]))
    print(json.dumps(result), flush=True)
    return result


def memory(results: list[dict[str, object]]) -> str:
    """Median peak RSS of the phase's process, and how much it grew during the timed work."""
    peak = statistics.median([int(str(r["peak_kb"])) for r in results]) / 1024
    growth = statistics.median([int(str(r["peak_kb"])) - int(str(r["baseline_kb"])) for r in results]) / 1024
    return f"{peak:,.0f} MB (+{growth:,.0f})"


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} [{min(values):,.0f}–{max(values):,.0f}]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--large", action="store_true", help="also 1,000,000 rows (memory flat in file size?)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="interleaved pairs per size (after a warm-up)")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--django-import-export", action="store_true", help="measure it once on 10,000 rows")
    parser.add_argument("--src", type=Path, help="source tree to measure (default: the installed posfleet)")
    parser.add_argument("--phase", choices=["setup", "ours", "raw", "import_export"], help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child_main(args)
        return

    sizes = [args.rows] + ([1_000_000] if args.large and args.rows != 1_000_000 else [])
    engines: list[Engine] = ([] if args.no_sqlite else [SQLite()]) + ([Postgres()] if args.postgres else [])
    work = Path(tempfile.mkdtemp(prefix="posfleet-bench-import-"))
    summary: list[str] = []
    try:
        files = {}
        for size in sorted({*sizes, 10_000}):
            files[size] = work / f"terminals-{size}.csv"
            make_csv(files[size], size)
        for engine in engines:
            engine.template(work, args.src)
            measure(engine, "ours", files[10_000], 10_000, work, args.src, 0)  # warm-up pair
            measure(engine, "raw", files[10_000], 10_000, work, args.src, 0)
            for size in sizes:
                ours, raw = [], []
                for n in range(1, args.repeat + 1):
                    ours.append(measure(engine, "ours", files[size], size, work, args.src, n))
                    raw.append(measure(engine, "raw", files[size], size, work, args.src, n))
                ratios = [
                    float(o["rows_per_s"]) / float(r["rows_per_s"]) for o, r in zip(ours, raw, strict=True)
                ]
                summary.append(
                    f"| {engine.name} | {size:,} | {spread([float(o['rows_per_s']) for o in ours])} "
                    f"| {spread([float(r['rows_per_s']) for r in raw])} "
                    f"| **{statistics.median(ratios):.2f}** [{min(ratios):.2f}–{max(ratios):.2f}] "
                    f"| {memory(ours)} | {memory(raw)} |"
                )
            if args.django_import_export:
                for bulk in ("1", "0"):
                    result = measure(
                        engine,
                        "import_export",
                        files[10_000],
                        10_000,
                        work,
                        args.src,
                        int(bulk),
                        {"BENCH_IE_BULK": bulk},
                    )
                    summary.append(
                        f"| {engine.name} | 10,000 | django-import-export (use_bulk={bulk == '1'}): "
                        f"{float(str(result['rows_per_s'])):,.0f} rows/s | | | {memory([result])} | |"
                    )
            engine.cleanup()
    finally:
        for engine in engines:
            engine.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        "| engine | rows | ours rows/s, median [range] | raw executemany rows/s | ratio ours/raw "
        "| ours peak RSS (+growth) | raw peak RSS (+growth) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
