"""The ledger's references hold whatever the client: an entry, journal or settlement batch that points
at a row that is not there is refused, and a row something points at cannot be deleted, truncated or
renumbered. Both databases keep them with foreign keys (ADR 0019; PostgreSQL had statement triggers
from migration 0009 to 0011): the same refusals are asserted on both. ``ledger verify`` finds what a
superuser could still get past them."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import psycopg
import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import QuerySet

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
from posfleet.parties.models import Merchant
from posfleet.parties.services import merchant_create
from posfleet.platform.clock import now
from posfleet.testing.personas import SYSTEM, build_world
from posfleet.testing.refusals import assert_nothing_recorded

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


def ledger_rows() -> tuple[QuerySet[Any], ...]:
    """The ledger's rows and those its references point at: a refusal leaves every one as it was."""
    return (
        Journal.objects.all(),
        Entry.objects.all(),
        Account.objects.all(),
        SettlementBatch.objects.all(),
        SettlementRun.objects.all(),
        Merchant.objects.all(),
    )


def refused(statement: str, params: list[object] | None = None) -> None:
    """The statement is refused and leaves no row changed (not even renumbered), no audit event, no
    outbox message."""
    with assert_nothing_recorded(*ledger_rows()), pytest.raises((IntegrityError, DatabaseError)):
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
def test_postgresql_holds_the_ledgers_references_as_foreign_keys(db):
    """The six references are real foreign keys, as Django declares them (deferred to commit) and
    validated; nothing of 0009's reference triggers is left, only the commit-time balance check."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text,"
            "       c.condeferrable, c.condeferred, c.convalidated"
            "  FROM pg_constraint AS c"
            "  JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
            " WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%s)",
            [["billing_entry", "billing_journal", "billing_settlementbatch"]],
        )
        foreign_keys = set(cursor.fetchall())
        cursor.execute(
            "SELECT tgname FROM pg_trigger"
            " WHERE NOT tgisinternal AND tgrelid::regclass::text LIKE 'billing_%%'"
        )
        triggers = {name for (name,) in cursor.fetchall()}
        cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '%%_in_use'")
        in_use = cursor.fetchall()
    expected = {
        ("billing_entry", "journal_id", "billing_journal"),
        ("billing_entry", "account_id", "billing_account"),
        ("billing_journal", "merchant_id", "parties_merchant"),
        ("billing_settlementbatch", "merchant_id", "parties_merchant"),
        ("billing_settlementbatch", "run_id", "billing_settlementrun"),
        ("billing_settlementbatch", "journal_id", "billing_journal"),
    }
    assert {(child, column, parent, True, True, True) for child, column, parent in expected} <= foreign_keys
    assert in_use == []
    assert not {t for t in triggers if t.startswith("ledger_batches_written")}
    assert {
        "ledger_journals_written_insert", "ledger_journals_written_update",
        "ledger_entries_written_insert", "ledger_entries_written_update",
    } <= triggers  # fmt: skip


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_refuses_to_truncate_a_referenced_ledger_table(world, ledger):
    """TRUNCATE fires no row trigger: only a foreign key stops it emptying a table others point at."""
    journal, _bank, _payable, run = ledger
    sql(
        "INSERT INTO billing_settlementbatch (merchant_id, business_date, paid_on, run_id, txn_count,"
        " gross_fen, refunds_fen, fees_fen, service_fees_fen, payout_fen, journal_id, created_at)"
        " VALUES (%s, %s, %s, %s, 0, 0, 0, 0, 0, 0, %s, %s)",
        [world.merchant_a.pk, DAY, DAY, run.pk, journal.pk, now()],
    )
    sql("SET CONSTRAINTS ALL IMMEDIATE")  # the checks of the rows written above run now
    before = counts()
    for table in ("billing_settlementrun", "billing_journal", "billing_account"):
        with (
            assert_nothing_recorded(*ledger_rows()),
            pytest.raises(DatabaseError, match="foreign key"),
            transaction.atomic(),
        ):
            sql(f"TRUNCATE {table}")
    assert counts() == before
    assert SettlementRun.objects.filter(pk=run.pk).exists()


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True)
def test_a_repeatable_read_delete_sees_a_reference_committed_after_its_snapshot():
    """A settlement run deleted in a REPEATABLE READ transaction whose snapshot is older than a batch
    now pointing at it: a trigger reading that snapshot would not see the batch; the foreign key does."""
    world = build_world()
    bank = provider_account(AccountKind.BANK_CLEARING)
    payable = merchant_account(world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE)
    with transaction.atomic():
        journal = post(
            kind=JournalKind.CAPTURE, reference="capture:rr", business_date=DAY,
            merchant_id=world.merchant_a.pk, lines=[Line(bank, 1000), Line(payable, -1000)],
        )  # fmt: skip
    run = SettlementRun.objects.create(business_date=DAY, started_at=now())
    other = psycopg.connect(**connection.get_connection_params())
    try:
        other.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        other.execute("SELECT count(*) FROM billing_settlementbatch")  # its snapshot is taken here
        checked(
            "INSERT INTO billing_settlementbatch (merchant_id, business_date, paid_on, run_id, txn_count,"
            " gross_fen, refunds_fen, fees_fen, service_fees_fen, payout_fen, journal_id, created_at)"
            " VALUES (%s, %s, %s, %s, 0, 0, 0, 0, 0, 0, %s, %s)",
            [world.merchant_a.pk, DAY, DAY, run.pk, journal.pk, now()],
        )
        # Refused by the key, at the delete or at commit (or as a serialization failure: the same no).
        refusal = (psycopg.errors.IntegrityError, psycopg.errors.SerializationFailure)
        with pytest.raises(refusal):  # noqa: PT012 (the delete or, deferred, its commit refuses)
            other.execute("DELETE FROM billing_settlementrun WHERE id = %s", [run.pk])
            other.commit()
    finally:
        other.rollback()
        other.close()
    assert SettlementRun.objects.filter(pk=run.pk).exists()
    assert SettlementBatch.objects.filter(run=run).count() == 1
    assert verify_ledger().ok


def test_verify_names_rows_that_point_at_nothing(world, ledger):
    journal, bank, _payable, _run = ledger
    with connection.cursor() as cursor:  # what a superuser could do: switch the guards off
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE billing_entry DISABLE TRIGGER ALL")  # the foreign keys too
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
def test_a_merchant_deleted_while_its_journal_is_posted_leaves_no_orphan():
    """A merchant deleted while another transaction posts a journal of it: the delete commits first
    (the journal is not visible to it yet), and the posting is refused at its commit by the key, so
    no journal points at nothing. (SQLite needs no test: its writers never overlap.)"""
    world = build_world()
    shop = merchant_create(
        actor=SYSTEM, agent=world.agent_b, mid="100000000000099", kind="individual",
        name="Nothing else points at it", legal_name="Owner", mcc="5411",
    )  # fmt: skip
    bank, revenue = (provider_account(kind) for kind in (AccountKind.BANK_CLEARING, AccountKind.FEE_REVENUE))
    posted, deleted, outcome = threading.Event(), threading.Event(), {}

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
                deleted.wait(10)
            outcome["poster"] = "posted"
        except IntegrityError as exc:
            outcome["poster"] = f"refused: {exc}"
        finally:
            connection.close()

    def deleter() -> None:
        posted.wait(10)
        try:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM parties_merchant WHERE id = %s", [shop.pk])
            outcome["deleter"] = "deleted"
        except IntegrityError as exc:
            outcome["deleter"] = f"refused: {exc}"
        finally:
            deleted.set()
            connection.close()

    threads = [threading.Thread(target=poster), threading.Thread(target=deleter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcome["deleter"] == "deleted", outcome
    assert outcome["poster"].startswith("refused: "), outcome
    assert "foreign key" in outcome["poster"], outcome
    assert not Journal.objects.filter(reference="refs:meanwhile").exists()
    assert verify_ledger().ok
