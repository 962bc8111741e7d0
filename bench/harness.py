"""What the benchmarks share: scratch databases (SQLite files, PostgreSQL databases made from a
template and dropped afterwards, also on failure), running a phase in its own process, and the
report's medians and memory figures."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def child_env(db_url: str, work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "posfleet.config.settings.dev",
        "POSFLEET_DATABASE_URL": db_url,
        "POSFLEET_VAR_DIR": str(work),
        "POSFLEET_LOG_LEVEL": "WARNING",
    }


def run_child(script: str, args: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run ``script --phase …`` in a fresh interpreter; its last stdout line is the phase's JSON."""
    done = subprocess.run(
        [sys.executable, script, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"phase {args} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class SQLite:
    name = "sqlite"

    def __init__(self, work: Path, prefix: str = "") -> None:
        self.work = work

    def create(self, label: str, source: str | None = None) -> str:
        target = self.work / f"{label}.sqlite3"
        if source is not None:
            shutil.copyfile(source.removeprefix("sqlite:///"), target)
            os.sync()  # the copy's write-back would otherwise run during the phase timed next
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.removeprefix('sqlite:///')}{suffix}").unlink(missing_ok=True)

    def cleanup(self) -> None:
        pass


class Postgres:
    name = "postgresql"

    def __init__(self, work: Path, prefix: str = "bench") -> None:
        import psycopg

        self.psycopg = psycopg
        self.prefix = f"{prefix}_{os.getpid()}"
        self.made: list[str] = []

    def _admin(self, sql: str) -> None:
        with self.psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql)

    def create(self, label: str, source: str | None = None) -> str:
        name = f"{self.prefix}_{label}"
        template = f' TEMPLATE "{source.rsplit("/", 1)[1]}"' if source else ""
        self._admin(f'CREATE DATABASE "{name}"{template}')
        self.made.append(name)
        self._admin("CHECKPOINT")  # flush the copy now, not during the phase timed next
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.made:
            self.made.remove(name)

    def cleanup(self) -> None:
        for name in list(self.made):
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()


def rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def spread(values: list[float], fmt: str = ",.0f") -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}–{max(values):{fmt}}]"


def memory(results: list[dict[str, object]]) -> str:
    peak = statistics.median([int(str(r["peak_kb"])) for r in results]) / 1024
    growth = statistics.median([int(str(r["peak_kb"])) - int(str(r["baseline_kb"])) for r in results]) / 1024
    return f"{peak:,.0f} MB (+{growth:,.0f})"


def bench_parties(merchants: int):  # type: ignore[no-untyped-def]
    """In a child with Django set up, inside a transaction: the provider, one agent, a terminal model
    and ``merchants`` merchants (with their organisations) under the agent, by bulk inserts (fixtures,
    not the code measured). Returns (agent, terminal model, merchants)."""
    from django.db import connection

    from posfleet.fleet.models import TerminalModel
    from posfleet.iam.models import Organisation, OrgKind
    from posfleet.parties.models import Merchant
    from posfleet.parties.services import agent_create
    from posfleet.platform.context import Actor

    Organisation(kind=OrgKind.PROVIDER, name="Bench Provider").save()
    agent = agent_create(actor=Actor.system("bench"), code="AG-BENCH", name="Bench agent")
    model = TerminalModel.objects.create(code="pax-a920", maker="PAX", name="A920", kind="smart")
    orgs = Organisation.objects.bulk_create(
        [
            Organisation(kind=OrgKind.MERCHANT, name=f"Shop {m}", parent=agent.organisation)
            for m in range(merchants)
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:  # the materialised paths bulk_create leaves empty
        cursor.execute(
            "UPDATE iam_organisation SET path = %s || CAST(id AS TEXT) || '/' WHERE parent_id = %s",
            [agent.organisation.path, agent.organisation.pk],
        )
    shops = Merchant.objects.bulk_create(
        [
            Merchant(
                organisation=org,
                agent=agent,
                mid=f"9{m:014d}",
                kind="individual",
                name=f"Shop {m}",
                legal_name=f"Owner {m}",
                mcc="5411",
            )
            for m, org in enumerate(orgs)
        ],
        batch_size=5000,
    )
    return agent, model, shops


def each_engine(
    name: str, args: Any, bench: Callable[[Any, Any, Path], dict[str, object]]
) -> list[dict[str, object]]:
    """Run ``bench(engine, args, work)`` on SQLite (unless ``--no-sqlite``) and PostgreSQL (with
    ``--postgres``), in a scratch folder; every engine's scratch databases are dropped, also on failure."""
    summaries = []
    with tempfile.TemporaryDirectory(prefix=f"posfleet-bench-{name}-") as tmp:
        work = Path(tmp)
        engines: list[Any] = [] if args.no_sqlite else [SQLite(work)]
        if args.postgres:
            engines.append(Postgres(work, prefix=f"bench_{name}"))
        for engine in engines:
            try:
                summaries.append(bench(engine, args, work))
            finally:
                engine.cleanup()
    return summaries
