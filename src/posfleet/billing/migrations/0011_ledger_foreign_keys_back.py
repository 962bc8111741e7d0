"""PostgreSQL: the ledger's six references are foreign keys again (docs/adr/0019-ledger-foreign-keys.md,
superseding 0018).

Migration 0009 replaced the foreign keys of entry → journal and account, journal → merchant and
settlement batch → merchant, run and journal with statement-level triggers, and kept the parent side
with row triggers that lock the referencing tables. That met a benchmark ratio at the price of a
schema that declares constraints the database does not hold: TRUNCATE and a REPEATABLE READ
transaction slip past such triggers, a superuser's ``session_replication_role`` switches them off
unseen, and production (PostgreSQL) was weaker than development (SQLite, which kept its keys). Here:

- the reference triggers and the parents' in-use triggers go, and the six foreign keys come back as
  Django declares them (``DEFERRABLE INITIALLY DEFERRED``, Django's own names). Each is added
  ``NOT VALID`` and then validated, so a large ledger is checked without blocking its writers;
- the set-based "balanced and complete" check of 0009 stays: the statements that write journals or
  entries note the journals they touched in ``billing_ledger_pending`` and one deferred check proves
  them all at commit. A statement giving a journal more entries than it declares is still refused at
  once. Only the reference checks leave those two functions.

SQLite is unchanged: it always kept its foreign keys.
"""

import importlib

from django.db import migrations

statement_guards = importlib.import_module("posfleet.billing.migrations.0009_ledger_guards_per_statement")
REFERENCES = statement_guards.REFERENCES

# What stays of 0009's statement triggers: noting the journals to check at commit, and refusing at once
# an entry beyond what its journal declares. A reference to nothing is the foreign keys' to refuse.
NOTE_JOURNALS = """CREATE OR REPLACE FUNCTION ledger_journals_written() RETURNS trigger AS $$
   BEGIN
     INSERT INTO billing_ledger_pending (journal_ids) SELECT array_agg(id) FROM new_rows HAVING count(*) > 0;
     RETURN NULL;
   END; $$ LANGUAGE plpgsql"""

NOTE_ENTRIES = """CREATE OR REPLACE FUNCTION ledger_entries_written() RETURNS trigger AS $$
   DECLARE bad record;
   BEGIN
     SELECT d.journal_id INTO bad
       FROM (SELECT journal_id, count(*) AS n FROM new_rows GROUP BY journal_id) AS d
       JOIN billing_journal AS j ON j.id = d.journal_id
      WHERE d.n > j.entry_count
      LIMIT 1;
     IF FOUND THEN
       RAISE EXCEPTION 'ledger: more entries than the journal declares (journal %)', bad.journal_id
         USING ERRCODE = 'check_violation';
     END IF;
     INSERT INTO billing_ledger_pending (journal_ids)
     SELECT array_agg(DISTINCT journal_id) FROM new_rows HAVING count(*) > 0;
     RETURN NULL;
   END; $$ LANGUAGE plpgsql"""

# (table, function): the statement triggers that stay, on INSERT and UPDATE (a transition table
# allows one event per trigger).
KEPT = [("billing_journal", "ledger_journals_written"), ("billing_entry", "ledger_entries_written")]
DROPPED = [("billing_settlementbatch", "ledger_batches_written")]


def _execute(schema_editor):
    def execute(sql):
        schema_editor.execute(sql, params=None)  # no client-side interpolation: plpgsql uses '%'

    return execute


def _fields(apps):
    """(historical model, field) of each reference, in REFERENCES' order."""
    by_table = {model._meta.db_table: model for model in apps.get_app_config("billing").get_models()}
    for child, column, _parent in REFERENCES:
        model = by_table[child]
        yield model, next(f for f in model._meta.concrete_fields if f.column == column)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    execute = _execute(schema_editor)
    for parent in statement_guards.PARENTS:
        execute(f"DROP TRIGGER IF EXISTS {parent}_in_use ON {parent}")
    execute("DROP FUNCTION IF EXISTS ledger_parent_in_use()")
    for table, function in DROPPED:
        for event in ("insert", "update"):
            execute(f"DROP TRIGGER IF EXISTS {function}_{event} ON {table}")
        execute(f"DROP FUNCTION IF EXISTS {function}()")
    execute(NOTE_JOURNALS)
    execute(NOTE_ENTRIES)
    for model, field in _fields(apps):
        # Django's own statement and name for the key (as AddField would write it), then NOT VALID +
        # VALIDATE: the check of the rows already there takes no lock that stops writers.
        create = str(schema_editor._create_fk_sql(model, field, "_fk_%(to_table)s_%(to_column)s"))
        execute(f"{create} NOT VALID")
        name = schema_editor._fk_constraint_name(model, field, "_fk_%(to_table)s_%(to_column)s")
        execute(f"ALTER TABLE {model._meta.db_table} VALIDATE CONSTRAINT {name}")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    execute = _execute(schema_editor)
    for model, field in _fields(apps):
        for name in statement_guards.foreign_keys(
            schema_editor.connection, model._meta.db_table, field.column, field.related_model._meta.db_table
        ):
            execute(f'ALTER TABLE {model._meta.db_table} DROP CONSTRAINT "{name}"')
    statement_guards.uninstall(execute)
    statement_guards.install(execute)


class Migration(migrations.Migration):
    dependencies = [("billing", "0010_lean_journal_indexes")]
    operations = [migrations.RunPython(forwards, backwards)]
