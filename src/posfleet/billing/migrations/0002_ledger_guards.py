"""The database itself keeps the ledger honest.

- Balanced: when a journal's last declared entry is inserted, its entries must sum to zero, and no
  journal may get more entries than it declares (SQLite and PostgreSQL). PostgreSQL also checks at
  commit, with deferred constraint triggers, that every journal written is complete and balanced.
- Append-only: entries and journals cannot be updated or deleted (corrections are reversing journals).
  Like the audit table's guard, test databases go without it (they are flushed between tests;
  POSFLEET_AUDIT_DB_GUARD) and one test installs it to prove it refuses.
"""

from django.db import migrations

SQLITE_BALANCE = [
    """CREATE TRIGGER ledger_entry_balanced AFTER INSERT ON billing_entry
       BEGIN
         SELECT RAISE(ABORT, 'ledger: more entries than the journal declares')
          WHERE (SELECT COUNT(*) FROM billing_entry WHERE journal_id = NEW.journal_id)
              > (SELECT entry_count FROM billing_journal WHERE id = NEW.journal_id);
         SELECT RAISE(ABORT, 'ledger: unbalanced journal')
          WHERE (SELECT COUNT(*) FROM billing_entry WHERE journal_id = NEW.journal_id)
              = (SELECT entry_count FROM billing_journal WHERE id = NEW.journal_id)
            AND (SELECT SUM(amount_fen) FROM billing_entry WHERE journal_id = NEW.journal_id) != 0;
       END;""",
]
SQLITE_BALANCE_DROP = ["DROP TRIGGER IF EXISTS ledger_entry_balanced;"]

POSTGRES_BALANCE = [
    """CREATE OR REPLACE FUNCTION ledger_check_journal(jid bigint) RETURNS void AS $$
       DECLARE n integer; total bigint; declared integer;
       BEGIN
         SELECT count(*), coalesce(sum(amount_fen), 0) INTO n, total FROM billing_entry WHERE journal_id = jid;
         SELECT entry_count INTO declared FROM billing_journal WHERE id = jid;
         IF n > declared THEN
           RAISE EXCEPTION 'ledger: more entries than the journal declares (journal %)', jid;
         END IF;
         IF n = declared AND total <> 0 THEN
           RAISE EXCEPTION 'ledger: unbalanced journal % (sum % fen)', jid, total;
         END IF;
       END; $$ LANGUAGE plpgsql;""",
    """CREATE OR REPLACE FUNCTION ledger_entry_inserted() RETURNS trigger AS $$
       BEGIN PERFORM ledger_check_journal(NEW.journal_id); RETURN NULL; END; $$ LANGUAGE plpgsql;""",
    """CREATE OR REPLACE FUNCTION ledger_journal_complete() RETURNS trigger AS $$
       DECLARE n integer; total bigint; declared integer; jid bigint;
       BEGIN
         IF TG_TABLE_NAME = 'billing_entry' THEN jid := NEW.journal_id; ELSE jid := NEW.id; END IF;
         SELECT count(*), coalesce(sum(amount_fen), 0) INTO n, total FROM billing_entry WHERE journal_id = jid;
         SELECT entry_count INTO declared FROM billing_journal WHERE id = jid;
         IF n <> declared OR total <> 0 THEN
           RAISE EXCEPTION 'ledger: journal % is incomplete or unbalanced at commit (% of % entries, sum % fen)',
             jid, n, declared, total;
         END IF;
         RETURN NULL;
       END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER ledger_entry_balanced AFTER INSERT ON billing_entry
       FOR EACH ROW EXECUTE FUNCTION ledger_entry_inserted();""",
    """CREATE CONSTRAINT TRIGGER ledger_entry_complete AFTER INSERT ON billing_entry
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_journal_complete();""",
    """CREATE CONSTRAINT TRIGGER ledger_journal_complete AFTER INSERT ON billing_journal
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_journal_complete();""",
]
POSTGRES_BALANCE_DROP = [
    "DROP TRIGGER IF EXISTS ledger_entry_balanced ON billing_entry;",
    "DROP TRIGGER IF EXISTS ledger_entry_complete ON billing_entry;",
    "DROP TRIGGER IF EXISTS ledger_journal_complete ON billing_journal;",
    "DROP FUNCTION IF EXISTS ledger_journal_complete();",
    "DROP FUNCTION IF EXISTS ledger_entry_inserted();",
    "DROP FUNCTION IF EXISTS ledger_check_journal(bigint);",
]


def _append_only(vendor: str) -> tuple[list[str], list[str]]:
    tables = ("billing_entry", "billing_journal")
    if vendor == "postgresql":
        install = [
            """CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger AS $$
               BEGIN RAISE EXCEPTION 'ledger rows are append-only'; END; $$ LANGUAGE plpgsql;""",
        ]
        drop = []
        for table in tables:
            install.append(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only();"
            )
            drop.append(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
        return install, [*drop, "DROP FUNCTION IF EXISTS ledger_append_only();"]
    install, drop = [], []
    for table in tables:
        for op in ("UPDATE", "DELETE"):
            name = f"{table}_no_{op.lower()}"
            install.append(
                f"CREATE TRIGGER {name} BEFORE {op} ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only'); END;"
            )
            drop.append(f"DROP TRIGGER IF EXISTS {name};")
    return install, drop


def install_balance_guard(execute, vendor):
    for sql in POSTGRES_BALANCE if vendor == "postgresql" else SQLITE_BALANCE:
        execute(sql)


def install_append_only_guard(execute, vendor):
    for sql in _append_only(vendor)[0]:
        execute(sql)


def forwards(apps, schema_editor):
    from django.conf import settings

    vendor = schema_editor.connection.vendor

    def execute(sql):
        schema_editor.execute(sql, params=None)  # no client-side interpolation: plpgsql uses '%'

    install_balance_guard(execute, vendor)
    if getattr(settings, "POSFLEET_AUDIT_DB_GUARD", True):
        install_append_only_guard(execute, vendor)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in [*_append_only(vendor)[1], *(POSTGRES_BALANCE_DROP if vendor == "postgresql" else SQLITE_BALANCE_DROP)]:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
