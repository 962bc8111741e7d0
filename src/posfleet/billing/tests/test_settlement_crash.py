"""A settlement run killed with SIGKILL in the middle of a chunk, then started again, ends exactly as an
uninterrupted run on a copy of the same data: same batches, same journals, same balances, every
transaction in the same batch (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from posfleet.billing.models import SettlementBatch, SettlementRun
from posfleet.billing.services.transactions import transactions_ingest
from posfleet.billing.tests.test_settlement import make_merchants
from posfleet.billing.tests.test_transactions import DAY, INGEST, refund_of, txn
from posfleet.billing.verify import verify_ledger
from posfleet.testing.money import signed_contract
from posfleet.testing.personas import build_world

MERCHANTS = 8


def database_url(name: str | None = None) -> str:
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
        return f"postgresql://{auth}@{settings['HOST']}:{settings['PORT'] or 5432}/{name or settings['NAME']}"
    return f"sqlite:///{name or settings['NAME']}"


def copy_database(tmp_path: Path) -> str:
    """A copy of the test database as it is now (committed data), for the uninterrupted run."""
    if connection.vendor == "postgresql":
        import psycopg

        name = f"{connection.settings_dict['NAME']}_copy"
        connections.close_all()  # CREATE DATABASE … TEMPLATE needs the source to have no sessions
        with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{connection.settings_dict["NAME"]}"')
        return database_url(name)
    target = tmp_path / "copy.sqlite3"
    source = sqlite3.connect(connection.settings_dict["NAME"])
    with sqlite3.connect(target) as copy:
        source.backup(copy)
    source.close()
    return database_url(str(target))


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def settle(url: str, tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "posfleet.config.settings.dev",
        "POSFLEET_DATABASE_URL": url,
        "POSFLEET_VAR_DIR": str(tmp_path / "var"),
        "POSFLEET_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "posfleet", "settle", "--date", DAY.isoformat(), *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, out + err
    return out


SNAPSHOT = {
    "batches": "SELECT merchant_id, business_date, paid_on, txn_count, gross_fen, refunds_fen, fees_fen,"
    " service_fees_fen, payout_fen FROM billing_settlementbatch ORDER BY merchant_id",
    "journals": "SELECT reference, kind, business_date, merchant_id, entry_count FROM billing_journal"
    " WHERE kind IN ('settlement', 'service_fee') ORDER BY reference",
    # Accounts by owner and kind: ids may differ (a killed transaction still used up sequence values).
    "entries": "SELECT j.reference, a.organisation_id, a.kind, e.amount_fen FROM billing_entry e"
    " JOIN billing_journal j ON j.id = e.journal_id JOIN billing_account a ON a.id = e.account_id"
    " WHERE j.kind IN ('settlement', 'service_fee') ORDER BY j.reference, a.organisation_id, a.kind",
    "balances": "SELECT organisation_id, kind, balance_fen FROM billing_account"
    " ORDER BY organisation_id, kind",
    "ledger": "SELECT a.organisation_id, a.kind, SUM(e.amount_fen) FROM billing_entry e"
    " JOIN billing_account a ON a.id = e.account_id GROUP BY a.organisation_id, a.kind"
    " ORDER BY a.organisation_id, a.kind",
    "marks": "SELECT t.id, b.merchant_id, b.business_date FROM billing_transaction t"
    " LEFT JOIN billing_dailytotal d ON d.id = t.daily_total_id"
    " LEFT JOIN billing_settlementbatch b ON b.merchant_id = d.merchant_id"
    " AND d.settle_day <= b.business_date AND (b.covers_after IS NULL OR d.settle_day > b.covers_after)"
    " ORDER BY t.id",
    "daily_totals": "SELECT d.merchant_id, d.txn_date, d.settle_day, d.txn_count, d.gross_fen, d.refunds_fen,"
    " d.fees_fen, b.business_date FROM billing_dailytotal d"
    " LEFT JOIN billing_settlementbatch b ON b.merchant_id = d.merchant_id"
    " AND d.settle_day <= b.business_date AND (b.covers_after IS NULL OR d.settle_day > b.covers_after)"
    " ORDER BY d.merchant_id, d.txn_date, b.business_date",
    "fees_due": "SELECT d.id, j.reference FROM billing_servicefeedue d"
    " LEFT JOIN billing_journal j ON j.id = d.journal_id ORDER BY d.id",
    "run": "SELECT business_date, status, merchants_total, merchants_done, last_merchant_id"
    " FROM billing_settlementrun",
}


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url) as conn:
            return {name: [tuple(r) for r in conn.execute(sql).fetchall()] for name, sql in SNAPSHOT.items()}
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in SNAPSHOT.items()}


@pytest.mark.django_db(transaction=True)
def test_a_run_killed_mid_chunk_resumes_to_the_uninterrupted_result(tmp_path):
    world = build_world()
    shops = make_merchants(world, MERCHANTS)
    for n, shop in enumerate(shops):
        sale = txn(shop, 1, 10000 + 111 * n)
        results = transactions_ingest(
            actor=INGEST,
            items=[
                sale,
                txn(shop, 2, 5000 + n, "debit"),
                txn(shop, 3, 800, "qr"),
                refund_of(sale, 4, 1000 + n),
            ],
        )
        assert all(r.ok for r in results)
    signed_contract(shops[5], deposit_fen=0, annual_fee_fen=9900)  # charged, then deducted
    copy = copy_database(tmp_path)
    try:
        # One merchant per transaction, 300 ms in each: kill the process while it settles the fourth.
        process = settle(database_url(), tmp_path, "--chunk-size", "1", "--slow-ms", "300")
        deadline = time.monotonic() + 90
        while True:
            run = SettlementRun.objects.filter(business_date=DAY).first()
            if run is not None and run.merchants_done >= 3:
                break
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the settlement did not get going"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        run = SettlementRun.objects.get(business_date=DAY)
        assert run.status == "running"
        assert 3 <= run.merchants_done < MERCHANTS
        assert SettlementBatch.objects.count() == run.merchants_done  # nothing of the killed chunk

        out = finish(settle(database_url(), tmp_path))  # started again: resumes
        assert "done after 2 attempt(s)" in out
        finish(settle(copy, tmp_path))  # the same data, never interrupted
        ours, theirs = snapshot(database_url()), snapshot(copy)
        assert len(ours["batches"]) == MERCHANTS
        assert sum(r[4] for r in ours["batches"]) > 0
        for part in SNAPSHOT:
            assert ours[part] == theirs[part], part
        run.refresh_from_db()
        assert (run.status, run.attempts) == ("done", 2)
        assert verify_ledger().ok
    finally:
        drop_database(copy)
