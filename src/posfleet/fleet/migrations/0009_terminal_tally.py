"""The fleet's counters (docs/adr/0034): ``fleet_terminaltally`` and the triggers that keep it, counted
once from the terminals as they are.

The triggers are the only writers, so no path can change a terminal's agent, model or status without
its count following: the services, an import's COPY or executemany, bulk UPDATEs, DELETEs, raw SQL.
On PostgreSQL the triggers only append rows (+n for the new key, -n for the old one): no two
transactions ever update the same counter row, so counting adds no lock waits and no deadlocks;
``fleet.services.tally_compact`` folds the rows. SQLite has one writer at a time, so its triggers
keep one row per key up to date (an UPSERT per row: SQLite has no statement-level triggers).

On PostgreSQL, CREATE TRIGGER locks the terminals against writes until this migration commits, so the
first count and the triggers see the same rows. A later migration that makes SQLite rebuild
``fleet_terminal`` (some ALTERs copy the table) drops these triggers with it and must install them
again (``install``): the tally tests fail otherwise.
"""

import django.db.models.deletion
from django.db import migrations, models

SAME_KEY = "agent_id IS {r}.agent_id AND model_id = {r}.model_id AND status = {r}.status"
# SQLite: one row per key, enforced by a unique index of its own (an agent-less terminal's key has a
# NULL agent, which a plain unique index would not compare), so the trigger adds with one UPSERT.
SQLITE_ADD = (
    "INSERT INTO fleet_terminaltally (agent_id, model_id, status, n) "
    "VALUES ({r}.agent_id, {r}.model_id, {r}.status, 1) "
    "ON CONFLICT (ifnull(agent_id, 0), model_id, status) DO UPDATE SET n = n + 1;"
)
SQLITE_REMOVE = "UPDATE fleet_terminaltally SET n = n - 1 WHERE " + SAME_KEY + ";"
CHANGED = (
    "OLD.agent_id IS NOT NEW.agent_id OR OLD.model_id IS NOT NEW.model_id OR OLD.status IS NOT NEW.status"
)

SQLITE = [
    "CREATE UNIQUE INDEX fleet_tally_one_row ON fleet_terminaltally (ifnull(agent_id, 0), model_id, status);",
    "CREATE TRIGGER fleet_tally_insert AFTER INSERT ON fleet_terminal BEGIN "
    + SQLITE_ADD.format(r="NEW")
    + " END;",
    "CREATE TRIGGER fleet_tally_delete AFTER DELETE ON fleet_terminal BEGIN "
    + SQLITE_REMOVE.format(r="OLD")
    + " END;",
    f"CREATE TRIGGER fleet_tally_update AFTER UPDATE ON fleet_terminal WHEN {CHANGED} BEGIN "
    + SQLITE_REMOVE.format(r="OLD")
    + " "
    + SQLITE_ADD.format(r="NEW")
    + " END;",
]
SQLITE_DROP = [
    "DROP INDEX IF EXISTS fleet_tally_one_row;",
    "DROP TRIGGER IF EXISTS fleet_tally_insert;",
    "DROP TRIGGER IF EXISTS fleet_tally_delete;",
    "DROP TRIGGER IF EXISTS fleet_tally_update;",
]

POSTGRES = [
    # An INSERT statement (one row, an import's COPY of 5,000) appends one row per key it touched.
    """CREATE FUNCTION fleet_tally_inserted() RETURNS trigger AS $$
       BEGIN
         INSERT INTO fleet_terminaltally (agent_id, model_id, status, n)
         SELECT agent_id, model_id, status, COUNT(*) FROM fleet_tally_new GROUP BY 1, 2, 3;
         RETURN NULL;
       END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER fleet_tally_insert AFTER INSERT ON fleet_terminal
       REFERENCING NEW TABLE AS fleet_tally_new
       FOR EACH STATEMENT EXECUTE FUNCTION fleet_tally_inserted();""",
    # A row whose agent, model or status changed (a heartbeat's UPDATE does not call the function).
    """CREATE FUNCTION fleet_tally_changed() RETURNS trigger AS $$
       BEGIN
         INSERT INTO fleet_terminaltally (agent_id, model_id, status, n)
         VALUES (OLD.agent_id, OLD.model_id, OLD.status, -1), (NEW.agent_id, NEW.model_id, NEW.status, 1);
         RETURN NULL;
       END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER fleet_tally_update AFTER UPDATE ON fleet_terminal FOR EACH ROW
       WHEN (OLD.agent_id IS DISTINCT FROM NEW.agent_id OR OLD.model_id IS DISTINCT FROM NEW.model_id
             OR OLD.status IS DISTINCT FROM NEW.status)
       EXECUTE FUNCTION fleet_tally_changed();""",
    """CREATE FUNCTION fleet_tally_deleted() RETURNS trigger AS $$
       BEGIN
         INSERT INTO fleet_terminaltally (agent_id, model_id, status, n)
         VALUES (OLD.agent_id, OLD.model_id, OLD.status, -1);
         RETURN NULL;
       END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER fleet_tally_delete AFTER DELETE ON fleet_terminal FOR EACH ROW
       EXECUTE FUNCTION fleet_tally_deleted();""",
    """CREATE FUNCTION fleet_tally_truncated() RETURNS trigger AS $$
       BEGIN DELETE FROM fleet_terminaltally; RETURN NULL; END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER fleet_tally_truncate AFTER TRUNCATE ON fleet_terminal
       FOR EACH STATEMENT EXECUTE FUNCTION fleet_tally_truncated();""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS fleet_tally_insert ON fleet_terminal;",
    "DROP TRIGGER IF EXISTS fleet_tally_update ON fleet_terminal;",
    "DROP TRIGGER IF EXISTS fleet_tally_delete ON fleet_terminal;",
    "DROP TRIGGER IF EXISTS fleet_tally_truncate ON fleet_terminal;",
    "DROP FUNCTION IF EXISTS fleet_tally_inserted();",
    "DROP FUNCTION IF EXISTS fleet_tally_changed();",
    "DROP FUNCTION IF EXISTS fleet_tally_deleted();",
    "DROP FUNCTION IF EXISTS fleet_tally_truncated();",
]

RECOUNT = (
    "INSERT INTO fleet_terminaltally (agent_id, model_id, status, n) "
    "SELECT agent_id, model_id, status, COUNT(*) FROM fleet_terminal GROUP BY agent_id, model_id, status"
)


def install(execute, vendor: str) -> None:
    """The triggers, then one row per key counted from the terminals as they are."""
    for sql in POSTGRES if vendor == "postgresql" else SQLITE:
        execute(sql)
    execute("DELETE FROM fleet_terminaltally")
    execute(RECOUNT)


def forwards(apps, schema_editor):
    install(schema_editor.execute, schema_editor.connection.vendor)


def backwards(apps, schema_editor):
    for sql in POSTGRES_DROP if schema_editor.connection.vendor == "postgresql" else SQLITE_DROP:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("fleet", "0008_pages_at_scale"),
        ("parties", "0005_store_coordinates"),
    ]

    operations = [
        migrations.CreateModel(
            name="TerminalTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("status", models.CharField(max_length=16)),
                ("n", models.BigIntegerField()),
                (
                    "agent",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="parties.agent",
                    ),
                ),
                (
                    "model",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="fleet.terminalmodel",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["agent", "model", "status"], name="terminal_tally_key_idx")],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
