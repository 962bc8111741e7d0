"""The ledger's references hold whatever the client: an entry, journal or settlement batch that points
at a row that is not there is refused, and a row something points at cannot be deleted. SQLite keeps
them with foreign keys, PostgreSQL with the ledger's per-statement guards (migration 0009, ADR 0018):
the same refusals are asserted on both. ``ledger verify`` finds what got past them."""

from __future__ import annotations

import importlib
import threading
import time
from datetime import date

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from posfleet.billing.models import (
    Account,
    AccountKind,
    Entry,
    Journal,
    JournalKind,
    SettlementBatch,
    SettlementRun,
)
from posfleet.billing.services.ledger import Line, merchant_account, post, provider_account
from posfleet.billing.verify import verify_ledger
from posfleet.parties.services import merchant_create
from posfleet.platform.clock import now
from posfleet.testing.personas import SYSTEM, build_world

DAY = date(2026, 11, 20)
MISSING = 987_654_321


@pytest.fixture
def ledger(world):
    """A posted journal of merchant A (bank → its payable) and a settlement run of DAY."""
    bank = provider_account(AccountKind.BANK_CLEARING)
    payable = merchant_account(world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE)
    with transaction.atomic():
        journal = post(
            kind=JournalKind.CAPTURE,
            reference="capture:refs",
            business_date=DAY,
            merchant_id=world.merchant_a.pk,
            lines=[Line(bank, 1000), Line(payable, -1000)],
        )
    run = SettlementRun.objects.create(business_date=DAY, started_at=now())
    return journal, bank, payable, run


def sql(statement: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def checked(statement: str, params: list[object] | None = None) -> None:
    """The statement, then the commit-time checks (SQLite's foreign keys are deferred)."""
    with transaction.atomic():
        sql(statement, params)
        connection.check_constraints()


def refused(statement: str, params: list[object] | None = None) -> None:
    with pytest.raises((IntegrityError, DatabaseError)):
        checked(statement, params)


def counts() -> tuple[int, int, int, int]:
    return (
        Journal.objects.count(),
        Entry.objects.count(),
        SettlementBatch.objects.count(),
        Account.objects.count(),
    )


def test_rows_pointing_at_nothing_are_refused_and_nothing_is_written(world, ledger):
    journal, bank, _payable, run = ledger
    before = counts()
    entry = "INSERT INTO billing_entry (journal_id, account_id, amount_fen) VALUES (%s, %s, %s)"
    refused(entry, [MISSING, bank.pk, 5])  # no such journal
    refused(entry, [journal.pk, MISSING, 5])  # no such account
    refused(
        "INSERT INTO billing_journal (kind, reference, business_date, occurred_at, memo, entry_count,"
        " merchant_id) VALUES ('correction', 'refs:nobody', %s, %s, '', 2, %s)",
        [DAY, now(), MISSING],
    )
    batch = (
        "INSERT INTO billing_settlementbatch (merchant_id, business_date, paid_on, run_id, txn_count,"
        " gross_fen, refunds_fen, fees_fen, service_fees_fen, payout_fen, journal_id, created_at)"
        " VALUES (%s, %s, %s, %s, 0, 0, 0, 0, 0, 0, %s, %s)"
    )
    merchant = world.merchant_a.pk
    refused(batch, [MISSING, DAY, DAY, run.pk, journal.pk, now()])  # no such merchant
    refused(batch, [merchant, DAY, DAY, MISSING, journal.pk, now()])  # no such run
    refused(batch, [merchant, DAY, DAY, run.pk, MISSING, now()])  # no such journal
    assert counts() == before
    assert verify_ledger().ok


def test_an_entry_added_to_a_complete_journal_is_refused(world, ledger):
    journal, bank, _payable, _run = ledger
    connection.check_constraints()  # the journal's own checks have run: it is complete and balanced
    refused(
        "INSERT INTO billing_entry (journal_id, account_id, amount_fen) VALUES (%s, %s, 5)",
        [journal.pk, bank.pk],
    )
    assert journal.entries.count() == 2
    assert verify_ledger().ok


def test_rows_something_points_at_cannot_be_deleted(world, ledger):
    journal, bank, _payable, run = ledger
    sql(
        "INSERT INTO billing_settlementbatch (merchant_id, business_date, paid_on, run_id, txn_count,"
        " gross_fen, refunds_fen, fees_fen, service_fees_fen, payout_fen, journal_id, created_at)"
        " VALUES (%s, %s, %s, %s, 0, 0, 0, 0, 0, 0, %s, %s)",
        [world.merchant_a.pk, DAY, DAY, run.pk, journal.pk, now()],
    )
    before = counts()
    refused("DELETE FROM billing_journal WHERE id = %s", [journal.pk])  # its entries, its batch
    refused("DELETE FROM billing_account WHERE id = %s", [bank.pk])  # its entries
    refused("DELETE FROM billing_settlementrun WHERE id = %s", [run.pk])  # its batch
    refused("DELETE FROM parties_merchant WHERE id = %s", [world.merchant_a.pk])  # its journal, its batch
    refused("UPDATE billing_account SET id = %s WHERE id = %s", [MISSING, bank.pk])
    assert counts() == before
    assert SettlementRun.objects.filter(pk=run.pk).exists()
    assert verify_ledger().ok


def test_a_row_nothing_points_at_can_go(world, ledger):
    unused = merchant_account(world.merchant_b.organisation_id, AccountKind.DEPOSIT_HELD)
    checked("DELETE FROM billing_account WHERE id = %s", [unused.pk])
    assert not Account.objects.filter(pk=unused.pk).exists()


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_keeps_these_references_with_the_per_statement_guards(db):
    """The six foreign keys migration 0009 replaced stay replaced: a later AlterField would put a
    per-row check back on every row settlement writes (bench/settlement.py would show it)."""
    guards = importlib.import_module("posfleet.billing.migrations.0009_ledger_guards_per_statement")
    replaced = {(table, column) for table, column, _parent in guards.REFERENCES}
    assert len(replaced) == 6
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint AS c"
            " JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
            " WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%s)",
            [sorted({table for table, _column in replaced})],
        )
        foreign_keys = set(cursor.fetchall())
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
            " AND (tgname LIKE 'ledger%%' OR tgname LIKE '%%_in_use')"
        )
        triggers = {name for (name,) in cursor.fetchall()}
    assert not foreign_keys & replaced
    installed = {f"{function}_{event.lower()}" for _table, event, function in guards.CHILD_TRIGGERS}
    installed |= {f"{parent}_in_use" for parent in guards.PARENTS} | {"ledger_commit_check"}
    assert len(installed) == 11
    assert installed <= triggers


def test_verify_names_rows_that_point_at_nothing(world, ledger):
    journal, bank, _payable, _run = ledger
    with connection.cursor() as cursor:  # what a superuser could do: switch the guards off
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE billing_entry DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS ledger_entry_balanced")  # rolled back with the test
        cursor.execute(
            "INSERT INTO billing_entry (journal_id, account_id, amount_fen) VALUES (%s, %s, 5), (%s, %s, -5)",
            [MISSING, bank.pk, journal.pk, MISSING],
        )
    orphans = list(Entry.objects.filter(amount_fen__in=[5, -5]).order_by("pk").values_list("pk", flat=True))
    problems = verify_ledger().problems
    assert f"entry {orphans[0]} points at journal {MISSING}, which does not exist" in problems
    assert f"entry {orphans[1]} points at account {MISSING}, which does not exist" in problems
    sql("DELETE FROM billing_entry WHERE id IN (%s, %s)", orphans)  # SQLite checks its keys at teardown
    assert verify_ledger().ok


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True)
def test_a_reference_written_meanwhile_is_seen_by_a_delete():
    """A merchant deleted while another transaction posts a journal of it: the delete waits for that
    transaction (as a foreign key's row lock would make it), then sees the journal and is refused.
    (SQLite needs no test: its writers never overlap.)"""
    world = build_world()
    shop = merchant_create(
        actor=SYSTEM, agent=world.agent_b, mid="100000000000099", kind="individual",
        name="Nothing else points at it", legal_name="Owner", mcc="5411",
    )  # fmt: skip
    bank, revenue = (provider_account(kind) for kind in (AccountKind.BANK_CLEARING, AccountKind.FEE_REVENUE))
    posted, outcome = threading.Event(), []

    def poster() -> None:
        try:
            with transaction.atomic():
                post(
                    kind=JournalKind.CORRECTION,
                    reference="refs:meanwhile",
                    business_date=DAY,
                    merchant_id=shop.pk,
                    lines=[Line(bank, 700), Line(revenue, -700)],
                )
                posted.set()
                _until_someone_waits_for_a_lock()
        finally:
            connection.close()

    def deleter() -> None:
        posted.wait(10)
        try:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM parties_merchant WHERE id = %s", [shop.pk])
            outcome.append("deleted")
        except IntegrityError as exc:
            outcome.append(f"refused: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=poster), threading.Thread(target=deleter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(outcome) == 1, outcome
    assert outcome[0].startswith(f"refused: ledger: parties_merchant {shop.pk} is still referenced"), outcome
    assert Journal.objects.filter(reference="refs:meanwhile", merchant_id=shop.pk).exists()
    assert verify_ledger().ok


def _until_someone_waits_for_a_lock(timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # else one snapshot per transaction
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the delete never waited for the posting transaction")
