"""PostgreSQL: the ledger's references and balances are checked once per statement, not once per row
(docs/adr/0018-ledger-guards-per-statement.md).

A foreign key checks every referencing row on its own (a query and a row lock per row, at commit when
deferred), and the completeness check of 0005 ran once per journal at commit. A settlement run writes
per merchant a journal, its entries and a batch: about 80,000 such checks for 10,000 merchants, two
thirds of the run (bench/settlement.py). Here the same rules are kept with set-based checks:

- **References** of the rows settlement and ingest write in bulk — entry → journal and account,
  journal → merchant, settlement batch → merchant, run and journal — are checked by statement-level
  triggers over the statement's new rows (a transition table): one anti-join per statement. The
  foreign keys of those six columns are dropped on PostgreSQL. The other side of a foreign key —
  a referenced row cannot be deleted nor its id changed — is kept by row triggers on the parents
  (journals, accounts, settlement runs, merchants), which first lock the referencing tables in SHARE
  mode, as a foreign key's row lock would, so a reference being written at that moment is seen.
- **Balanced and complete**: the statements that write journals or entries note the journals they
  touched (``billing_ledger_pending``, one row per statement); at commit one deferred check takes
  them all and proves every such journal has exactly the entries it declares, summing to zero. A
  statement giving a journal more entries than it declares is refused at once.

SQLite keeps its foreign keys (cheap there) and the per-entry balance trigger of 0005. What is refused
is unchanged on both databases; the tests run the same refusals on each.
"""

from django.db import migrations

# (child table, column, parent table): the foreign keys this migration replaces on PostgreSQL.
REFERENCES = [
    ("billing_entry", "journal_id", "billing_journal"),
    ("billing_entry", "account_id", "billing_account"),
    ("billing_journal", "merchant_id", "parties_merchant"),
    ("billing_settlementbatch", "merchant_id", "parties_merchant"),
    ("billing_settlementbatch", "run_id", "billing_settlementrun"),
    ("billing_settlementbatch", "journal_id", "billing_journal"),
]

# A parent's referencing (table, column)s: its row cannot go while one of them points at it.
PARENTS: dict[str, list[tuple[str, str]]] = {}
for _child, _column, _parent in REFERENCES:
    PARENTS.setdefault(_parent, []).append((_child, _column))

PENDING = [
    # One row per statement that wrote journals or entries, removed by the commit-time check.
    # EXTERNAL: a settlement chunk's 10,000 ids are stored as they are, not compressed.
    """CREATE TABLE billing_ledger_pending (
         xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
         journal_ids bigint[] NOT NULL
       )""",
    "ALTER TABLE billing_ledger_pending ALTER COLUMN journal_ids SET STORAGE EXTERNAL",
    "CREATE INDEX billing_ledger_pending_xact ON billing_ledger_pending (xact)",
    """CREATE OR REPLACE FUNCTION ledger_commit_check() RETURNS trigger AS $$
       DECLARE ids bigint[]; bad record;
       BEGIN
         -- The first firing at commit takes every journal this transaction noted; the later ones
         -- (one per noted statement) find nothing left.
         WITH taken AS (DELETE FROM billing_ledger_pending WHERE xact = pg_current_xact_id()
                        RETURNING journal_ids)
         SELECT array_agg(DISTINCT id) INTO ids FROM taken, unnest(taken.journal_ids) AS id;
         IF ids IS NULL THEN
           RETURN NULL;
         END IF;
         SELECT d.id, j.entry_count AS declared, s.n, s.total INTO bad
           FROM unnest(ids) AS d(id)
           LEFT JOIN billing_journal AS j ON j.id = d.id
           CROSS JOIN LATERAL (SELECT count(*) AS n, coalesce(sum(e.amount_fen), 0) AS total
                                 FROM billing_entry AS e WHERE e.journal_id = d.id) AS s
          WHERE j.id IS NULL OR s.n <> j.entry_count OR s.total <> 0
          LIMIT 1;
         IF FOUND THEN
           RAISE EXCEPTION 'ledger: journal % is incomplete or unbalanced at commit (% of % entries, sum % fen)',
             bad.id, bad.n, bad.declared, bad.total USING ERRCODE = 'check_violation';
         END IF;
         RETURN NULL;
       END; $$ LANGUAGE plpgsql""",
    """CREATE CONSTRAINT TRIGGER ledger_commit_check AFTER INSERT ON billing_ledger_pending
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_commit_check()""",
]

CHILD_CHECKS = [
    """CREATE OR REPLACE FUNCTION ledger_journals_written() RETURNS trigger AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM new_rows AS n
                     WHERE n.merchant_id IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM parties_merchant AS m WHERE m.id = n.merchant_id)) THEN
           RAISE EXCEPTION 'ledger: a journal names a merchant that does not exist'
             USING ERRCODE = 'foreign_key_violation';
         END IF;
         INSERT INTO billing_ledger_pending (journal_ids) SELECT array_agg(id) FROM new_rows HAVING count(*) > 0;
         RETURN NULL;
       END; $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION ledger_entries_written() RETURNS trigger AS $$
       DECLARE bad record;
       BEGIN
         IF EXISTS (SELECT 1 FROM (SELECT DISTINCT account_id FROM new_rows) AS n
                     WHERE NOT EXISTS (SELECT 1 FROM billing_account AS a WHERE a.id = n.account_id)) THEN
           RAISE EXCEPTION 'ledger: an entry names an account that does not exist'
             USING ERRCODE = 'foreign_key_violation';
         END IF;
         SELECT d.journal_id, j.id AS found, d.n, j.entry_count AS declared INTO bad
           FROM (SELECT journal_id, count(*) AS n FROM new_rows GROUP BY journal_id) AS d
           LEFT JOIN billing_journal AS j ON j.id = d.journal_id
          WHERE j.id IS NULL OR d.n > j.entry_count
          LIMIT 1;
         IF FOUND THEN
           IF bad.found IS NULL THEN
             RAISE EXCEPTION 'ledger: an entry names a journal that does not exist'
               USING ERRCODE = 'foreign_key_violation';
           END IF;
           RAISE EXCEPTION 'ledger: more entries than the journal declares (journal %)', bad.journal_id
             USING ERRCODE = 'check_violation';
         END IF;
         INSERT INTO billing_ledger_pending (journal_ids)
         SELECT array_agg(DISTINCT journal_id) FROM new_rows HAVING count(*) > 0;
         RETURN NULL;
       END; $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION ledger_batches_written() RETURNS trigger AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM new_rows AS n
                     WHERE NOT EXISTS (SELECT 1 FROM parties_merchant AS m WHERE m.id = n.merchant_id))
            OR EXISTS (SELECT 1 FROM (SELECT DISTINCT run_id FROM new_rows) AS n
                        WHERE NOT EXISTS (SELECT 1 FROM billing_settlementrun AS r WHERE r.id = n.run_id))
            OR EXISTS (SELECT 1 FROM new_rows AS n
                        WHERE n.journal_id IS NOT NULL
                          AND NOT EXISTS (SELECT 1 FROM billing_journal AS j WHERE j.id = n.journal_id)) THEN
           RAISE EXCEPTION 'ledger: a settlement batch names a merchant, run or journal that does not exist'
             USING ERRCODE = 'foreign_key_violation';
         END IF;
         RETURN NULL;
       END; $$ LANGUAGE plpgsql""",
]
# Transition tables allow one event per trigger: INSERT and UPDATE each get theirs.
CHILD_TRIGGERS = [
    (table, event, function)
    for table, function in (
        ("billing_journal", "ledger_journals_written"),
        ("billing_entry", "ledger_entries_written"),
        ("billing_settlementbatch", "ledger_batches_written"),
    )
    for event in ("INSERT", "UPDATE")
]

PARENT_CHECK = """CREATE OR REPLACE FUNCTION ledger_parent_in_use() RETURNS trigger AS $$
   DECLARE i integer; used boolean;
   BEGIN
     IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
       RETURN NEW;
     END IF;
     FOR i IN 0 .. TG_NARGS - 1 BY 2 LOOP
       -- Wait for the writers of the referencing table and keep new ones out until this transaction
       -- ends, so a reference written at this moment is seen (what a foreign key's row lock does).
       EXECUTE format('LOCK TABLE %I IN SHARE MODE', TG_ARGV[i]);
       EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I = $1)', TG_ARGV[i], TG_ARGV[i + 1])
          INTO used USING OLD.id;
       IF used THEN
         RAISE EXCEPTION 'ledger: % % is still referenced from %', TG_TABLE_NAME, OLD.id, TG_ARGV[i]
           USING ERRCODE = 'foreign_key_violation';
       END IF;
     END LOOP;
     IF TG_OP = 'DELETE' THEN
       RETURN OLD;
     END IF;
     RETURN NEW;
   END; $$ LANGUAGE plpgsql"""

OLD_GUARDS = [
    "DROP TRIGGER IF EXISTS ledger_entries_balanced ON billing_entry",
    "DROP TRIGGER IF EXISTS ledger_journal_complete ON billing_journal",
    "DROP FUNCTION IF EXISTS ledger_entries_inserted()",
    "DROP FUNCTION IF EXISTS ledger_journal_complete()",
]


def install(execute) -> None:
    """The per-statement guards (PostgreSQL), assuming the foreign keys of REFERENCES are gone."""
    for sql in [*PENDING, *CHILD_CHECKS, PARENT_CHECK]:
        execute(sql)
    for table, event, function in CHILD_TRIGGERS:
        execute(
            f"CREATE TRIGGER {function}_{event.lower()} AFTER {event} ON {table}"
            f" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    for parent, children in PARENTS.items():
        arguments = ", ".join(f"'{name}'" for pair in children for name in pair)
        execute(
            f"CREATE TRIGGER {parent}_in_use BEFORE DELETE OR UPDATE OF id ON {parent}"
            f" FOR EACH ROW EXECUTE FUNCTION ledger_parent_in_use({arguments})"
        )


def uninstall(execute) -> None:
    for parent in PARENTS:
        execute(f"DROP TRIGGER IF EXISTS {parent}_in_use ON {parent}")
    for table, event, function in CHILD_TRIGGERS:
        execute(f"DROP TRIGGER IF EXISTS {function}_{event.lower()} ON {table}")
    execute("DROP TABLE IF EXISTS billing_ledger_pending")  # with its trigger
    for function in ("ledger_parent_in_use", "ledger_journals_written", "ledger_entries_written",
                     "ledger_batches_written", "ledger_commit_check"):  # fmt: skip
        execute(f"DROP FUNCTION IF EXISTS {function}()")


def foreign_keys(connection, child: str, column: str, parent: str) -> list[str]:
    """The names of the foreign keys of ``child.column`` to ``parent`` (Django names them by hash)."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, child)
    return [
        name
        for name, c in constraints.items()
        if c["foreign_key"] and c["foreign_key"][0] == parent and c["columns"] == [column]
    ]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return

    def execute(sql):
        schema_editor.execute(sql, params=None)  # no client-side interpolation: plpgsql uses '%'

    for child, column, parent in REFERENCES:
        for name in foreign_keys(schema_editor.connection, child, column, parent):
            execute(f'ALTER TABLE {child} DROP CONSTRAINT "{name}"')
    for sql in OLD_GUARDS:
        execute(sql)
    install(execute)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from importlib import import_module

    def execute(sql):
        schema_editor.execute(sql, params=None)

    uninstall(execute)
    balance = import_module("posfleet.billing.migrations.0005_ledger_guards_set_based")
    for sql in balance.POSTGRES:
        execute(sql)
    execute(
        "CREATE CONSTRAINT TRIGGER ledger_journal_complete AFTER INSERT ON billing_journal"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_journal_complete()"
    )
    for child, column, parent in REFERENCES:
        execute(
            f"ALTER TABLE {child} ADD CONSTRAINT {child}_{column}_fk FOREIGN KEY ({column})"
            f" REFERENCES {parent} (id) DEFERRABLE INITIALLY DEFERRED"
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0008_lean_ledger_indexes"), ("parties", "0002_merchant_data_key")]
    operations = [migrations.RunPython(forwards, backwards)]
