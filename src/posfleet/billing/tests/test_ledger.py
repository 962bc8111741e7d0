"""The ledger: balanced journals once per reference, reversals, the database's own refusals, verify."""

from __future__ import annotations

import importlib
from datetime import date

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from posfleet.billing.errors import AlreadyPosted, Unbalanced
from posfleet.billing.models import Account, AccountKind, Entry, Journal, JournalKind
from posfleet.billing.services.ledger import Line, merchant_account, post, provider_account, reverse
from posfleet.billing.services.transactions.posting import JournalSpec, post_many
from posfleet.billing.verify import verify_ledger
from posfleet.testing.refusals import assert_nothing_recorded

DAY = date(2026, 11, 20)


@pytest.fixture
def accounts(world):
    return (
        provider_account(AccountKind.BANK_CLEARING),
        merchant_account(world.merchant_a.organisation_id, AccountKind.SETTLEMENT_PAYABLE),
        provider_account(AccountKind.FEE_REVENUE),
    )


def capture(accounts, reference="capture:1", amount=10000, fee=60):
    bank, payable, revenue = accounts
    with transaction.atomic():
        return post(
            kind=JournalKind.CAPTURE,
            reference=reference,
            business_date=DAY,
            lines=[Line(bank, amount), Line(payable, -(amount - fee)), Line(revenue, -fee)],
        )


def test_a_balanced_journal_moves_balances(accounts):
    journal = capture(accounts)
    bank, payable, revenue = (Account.objects.get(pk=a.pk) for a in accounts)
    assert (bank.natural_balance_fen, payable.natural_balance_fen, revenue.natural_balance_fen) == (
        10000,
        9940,
        60,
    )
    assert journal.entry_count == 3
    assert verify_ledger().ok


def test_unbalanced_or_tiny_journals_are_refused_and_write_nothing(accounts):
    bank, payable, _revenue = accounts
    for lines in ([Line(bank, 100), Line(payable, -99)], [Line(bank, 100)], [Line(bank, 5), Line(bank, -5)]):
        with (
            assert_nothing_recorded(Account.objects.all()),
            pytest.raises(Unbalanced),
            transaction.atomic(),
        ):
            post(kind=JournalKind.CORRECTION, reference="bad", business_date=DAY, lines=lines)
    assert (Journal.objects.count(), Entry.objects.count()) == (0, 0)
    assert Account.objects.filter(balance_fen__gt=0).count() == 0


def test_a_reference_posts_once(accounts):
    capture(accounts)
    with assert_nothing_recorded(Account.objects.all()), pytest.raises(AlreadyPosted):
        capture(accounts)
    assert Journal.objects.count() == 1
    assert Account.objects.get(pk=accounts[0].pk).balance_fen == 10000


def test_floats_never_reach_the_ledger(accounts):
    bank, payable, _ = accounts
    with assert_nothing_recorded(Account.objects.all()), pytest.raises(TypeError), transaction.atomic():
        post(
            kind=JournalKind.CORRECTION,
            reference="f",
            business_date=DAY,
            lines=[Line(bank, 1.5), Line(payable, -1.5)],
        )  # type: ignore[arg-type]


def test_a_reversal_negates_and_links_once(accounts):
    journal = capture(accounts)
    with transaction.atomic():
        correction = reverse(journal=journal)
    assert correction.reverses == journal
    assert sorted(correction.entries.values_list("amount_fen", flat=True)) == [-10000, 60, 9940]
    assert all(Account.objects.get(pk=a.pk).balance_fen == 0 for a in accounts)
    with (
        assert_nothing_recorded(Account.objects.all(), Journal.objects.all()),
        pytest.raises(AlreadyPosted),
        transaction.atomic(),
    ):
        reverse(journal=journal)
    assert verify_ledger().ok


@pytest.mark.parametrize("new_references", [False, True], ids=["checked", "vouched new by the caller"])
def test_a_bulk_journal_with_a_taken_reference_writes_nothing(accounts, new_references):
    bank, payable, _revenue = accounts
    capture(accounts, reference="capture:taken")
    spec = JournalSpec(JournalKind.CAPTURE, "capture:taken", DAY, lines=[(bank.pk, 500), (payable.pk, -500)])
    fresh = JournalSpec(JournalKind.CAPTURE, "capture:fresh", DAY, lines=[(bank.pk, 700), (payable.pk, -700)])
    # Vouched new (ingest's references carry a fresh random id), a clash can only be a bug: the
    # database's own refusal fails the transaction, without the savepoint that names the reference.
    expected = IntegrityError if new_references else AlreadyPosted
    with (
        assert_nothing_recorded(Account.objects.all(), Journal.objects.all(), Entry.objects.all()),
        pytest.raises(expected),
        transaction.atomic(),
    ):
        post_many([fresh, spec], new_references=new_references)
    assert verify_ledger().ok


def _raw_journal(reference, entry_count):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_journal (kind, reference, business_date, occurred_at, memo, entry_count)"
            " VALUES ('correction', %s, %s, %s, '', %s)",
            [reference, DAY, "2026-11-20 00:00:00+00", entry_count],
        )
        cursor.execute("SELECT id FROM billing_journal WHERE reference = %s", [reference])
        return cursor.fetchone()[0]


def _raw_entry(journal_id, account_id, amount):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_entry (journal_id, account_id, amount_fen) VALUES (%s, %s, %s)",
            [journal_id, account_id, amount],
        )


def _write_raw(reference, declared, amounts, account_ids, *, immediate=False):
    """Insert a journal and its entries with plain SQL, as any database client could."""
    with transaction.atomic():
        jid = _raw_journal(reference, declared)
        for account_id, amount in zip(account_ids, amounts, strict=True):
            _raw_entry(jid, account_id, amount)
        if immediate and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # run the commit-time checks now


def test_the_database_refuses_an_unbalanced_journal_whatever_the_client(accounts):
    bank, payable, _ = accounts
    with assert_nothing_recorded(Account.objects.all()), pytest.raises((IntegrityError, DatabaseError)):
        _write_raw("raw-1", 2, [500, -499], [bank.pk, payable.pk], immediate=True)
    with assert_nothing_recorded(Account.objects.all()), pytest.raises((IntegrityError, DatabaseError)):
        # more than declared: SQLite refuses the third entry, PostgreSQL the journal at commit
        _write_raw("raw-2", 2, [500, -500, 7], [bank.pk, payable.pk, payable.pk], immediate=True)
    assert Journal.objects.count() == 0


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_refuses_an_incomplete_journal_at_commit(accounts):
    bank, _payable, _ = accounts
    with assert_nothing_recorded(Account.objects.all()), pytest.raises((IntegrityError, DatabaseError)):
        _write_raw("raw-3", 2, [500], [bank.pk], immediate=True)
    with assert_nothing_recorded(Account.objects.all()), pytest.raises((IntegrityError, DatabaseError)):
        _write_raw("raw-4", 2, [], [], immediate=True)  # no entries at all
    assert Journal.objects.count() == 0


def test_entries_and_journals_are_append_only(accounts):
    capture(accounts)
    guard = importlib.import_module("posfleet.billing.migrations.0002_ledger_guards")
    with connection.cursor() as cursor:
        guard.install_append_only_guard(cursor.execute, connection.vendor)  # rolled back with the test
    ledger = (Entry.objects.all(), Journal.objects.all(), Account.objects.all())
    with assert_nothing_recorded(*ledger), pytest.raises(TypeError):
        Entry.objects.all().update(amount_fen=1)
    with assert_nothing_recorded(*ledger), pytest.raises(TypeError):
        Journal.objects.all().delete()
    for sql in ("UPDATE billing_entry SET amount_fen = amount_fen + 1", "DELETE FROM billing_journal"):
        with (
            assert_nothing_recorded(*ledger),
            pytest.raises(DatabaseError),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert verify_ledger().ok


def _tamper(sql, params=()):
    with connection.cursor() as cursor:
        for trigger in ("billing_entry_no_update", "billing_entry_no_delete", "ledger_entry_balanced"):
            if connection.vendor != "postgresql":
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # let the pending commit-time checks run
            cursor.execute("ALTER TABLE billing_entry DISABLE TRIGGER USER")
        cursor.execute(sql, list(params))


TAMPERING = [
    (
        "UPDATE billing_entry SET amount_fen = amount_fen + 1 WHERE id = (SELECT MIN(id) FROM billing_entry)",
        "summing to 1",
    ),
    ("DELETE FROM billing_entry WHERE id = (SELECT MAX(id) FROM billing_entry)", "2 of 3 entries"),
    (
        "UPDATE billing_account SET balance_fen = balance_fen + 100 "
        "WHERE id = (SELECT MIN(id) FROM billing_account)",
        "says",
    ),
]


@pytest.mark.parametrize(("sql", "needle"), TAMPERING)
def test_verify_finds_tampering(accounts, sql, needle, capsys):
    capture(accounts)
    capture(accounts, reference="capture:2", amount=5000, fee=30)
    _tamper(sql)
    report = verify_ledger()
    assert not report.ok
    assert any(needle in p for p in report.problems), report.problems
    with pytest.raises(CommandError, match="ledger BROKEN") as broken:
        call_command("ledger", "verify")
    assert broken.value.returncode == 1


def test_cli_on_a_sound_ledger(accounts, capsys):
    capture(accounts)
    call_command("ledger", "verify")
    assert "ledger balanced: 1 journals, 3 entries" in capsys.readouterr().out
