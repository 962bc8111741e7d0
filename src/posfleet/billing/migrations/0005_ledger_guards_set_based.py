"""The ledger's balance guards of 0002, doing the same checks with fewer lookups (settlement writes
thousands of journals at once; bench/settlement.py):

- SQLite: the per-entry trigger reads the journal's entries once (count and sum in one aggregate)
  instead of five subqueries.
- PostgreSQL: the immediate check runs once per INSERT or COPY statement over the journals it touched
  (a transition table), and the deferred per-entry check goes: it was redundant, since an entry added
  to a complete journal is refused at once (more entries than declared) and every new journal is
  checked for completeness at commit by ``ledger_journal_complete``, now one query.

What is refused is unchanged: more entries than the journal declares, a complete journal that does not
sum to zero, and (PostgreSQL, at commit) a journal with fewer entries than it declares.
"""

from django.db import migrations

SQLITE = [
    "DROP TRIGGER IF EXISTS ledger_entry_balanced;",
    """CREATE TRIGGER ledger_entry_balanced AFTER INSERT ON billing_entry
       BEGIN
         SELECT CASE
                  WHEN s.n > j.entry_count THEN RAISE(ABORT, 'ledger: more entries than the journal declares')
                  WHEN s.n = j.entry_count AND s.total != 0 THEN RAISE(ABORT, 'ledger: unbalanced journal')
                END
           FROM billing_journal AS j,
                (SELECT COUNT(*) AS n, SUM(amount_fen) AS total
                   FROM billing_entry WHERE journal_id = NEW.journal_id) AS s
          WHERE j.id = NEW.journal_id;
       END;""",
]
SQLITE_BACK = [
    "DROP TRIGGER IF EXISTS ledger_entry_balanced;",
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

POSTGRES = [
    "DROP TRIGGER IF EXISTS ledger_entry_balanced ON billing_entry;",
    "DROP TRIGGER IF EXISTS ledger_entry_complete ON billing_entry;",
    """CREATE OR REPLACE FUNCTION ledger_entries_inserted() RETURNS trigger AS $$
       DECLARE bad record;
       BEGIN
         SELECT j.id, s.n, s.total, j.entry_count AS declared INTO bad
           FROM (SELECT DISTINCT journal_id FROM new_entries) AS d
           JOIN billing_journal AS j ON j.id = d.journal_id
           CROSS JOIN LATERAL (SELECT count(*) AS n, coalesce(sum(e.amount_fen), 0) AS total
                                 FROM billing_entry AS e WHERE e.journal_id = d.journal_id) AS s
          WHERE s.n > j.entry_count OR (s.n = j.entry_count AND s.total <> 0)
          LIMIT 1;
         IF FOUND THEN
           IF bad.n > bad.declared THEN
             RAISE EXCEPTION 'ledger: more entries than the journal declares (journal %)', bad.id;
           END IF;
           RAISE EXCEPTION 'ledger: unbalanced journal % (sum % fen)', bad.id, bad.total;
         END IF;
         RETURN NULL;
       END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON billing_entry
       REFERENCING NEW TABLE AS new_entries
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_inserted();""",
    """CREATE OR REPLACE FUNCTION ledger_journal_complete() RETURNS trigger AS $$
       DECLARE n integer; total bigint;
       BEGIN
         SELECT count(*), coalesce(sum(amount_fen), 0) INTO n, total FROM billing_entry WHERE journal_id = NEW.id;
         IF n <> NEW.entry_count OR total <> 0 THEN
           RAISE EXCEPTION 'ledger: journal % is incomplete or unbalanced at commit (% of % entries, sum % fen)',
             NEW.id, n, NEW.entry_count, total;
         END IF;
         RETURN NULL;
       END; $$ LANGUAGE plpgsql;""",
]
POSTGRES_BACK = [
    "DROP TRIGGER IF EXISTS ledger_entries_balanced ON billing_entry;",
    "DROP FUNCTION IF EXISTS ledger_entries_inserted();",
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
]


def _run(statements):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        for sql in statements[vendor == "postgresql"]:
            schema_editor.execute(sql, params=None)  # no client-side interpolation: plpgsql uses '%'

    return run


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_daily_totals")]
    operations = [migrations.RunPython(_run((SQLITE, POSTGRES)), _run((SQLITE_BACK, POSTGRES_BACK)))]
