"""A part of an SN or TID, found through an index on both engines (docs/adr/0035): the device list's
search box matches three or more characters anywhere in the SN or TID (the last digits on a device's
label), not only at the start.

- **PostgreSQL**: ``pg_trgm`` (shipped with the server; a trusted extension, so the database's owner
  may create it) and a GIN trigram index on ``sn`` and on ``tid``: ``sn LIKE '%X%'`` reads the index.
- **SQLite**: an FTS5 table with the ``trigram`` tokenizer over the terminals' ``sn`` and ``tid``
  (external content: it keeps only the index, the text stays in ``fleet_terminal``), kept by triggers,
  so every path that writes a terminal — services, an import's executemany, raw SQL — keeps it.

A later migration that makes SQLite rebuild ``fleet_terminal`` drops these triggers with it (as it does
the counters', 0009) and must ``install`` them again: the search tests fail otherwise.
"""

from django.db import migrations

SQLITE = [
    "CREATE VIRTUAL TABLE fleet_terminal_text USING fts5("
    "sn, tid, content='fleet_terminal', content_rowid='id', tokenize='trigram');",
    "CREATE TRIGGER fleet_text_insert AFTER INSERT ON fleet_terminal BEGIN "
    "INSERT INTO fleet_terminal_text (rowid, sn, tid) VALUES (NEW.id, NEW.sn, NEW.tid); END;",
    "CREATE TRIGGER fleet_text_delete AFTER DELETE ON fleet_terminal BEGIN "
    "INSERT INTO fleet_terminal_text (fleet_terminal_text, rowid, sn, tid) "
    "VALUES ('delete', OLD.id, OLD.sn, OLD.tid); END;",
    "CREATE TRIGGER fleet_text_update AFTER UPDATE OF sn, tid ON fleet_terminal "
    "WHEN OLD.sn IS NOT NEW.sn OR OLD.tid IS NOT NEW.tid BEGIN "
    "INSERT INTO fleet_terminal_text (fleet_terminal_text, rowid, sn, tid) "
    "VALUES ('delete', OLD.id, OLD.sn, OLD.tid); "
    "INSERT INTO fleet_terminal_text (rowid, sn, tid) VALUES (NEW.id, NEW.sn, NEW.tid); END;",
    # Index the terminals there are.
    "INSERT INTO fleet_terminal_text (fleet_terminal_text) VALUES ('rebuild');",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS fleet_text_insert;",
    "DROP TRIGGER IF EXISTS fleet_text_delete;",
    "DROP TRIGGER IF EXISTS fleet_text_update;",
    "DROP TABLE IF EXISTS fleet_terminal_text;",
]

POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm;",
    "CREATE INDEX IF NOT EXISTS fleet_terminal_sn_trgm ON fleet_terminal USING gin (sn gin_trgm_ops);",
    "CREATE INDEX IF NOT EXISTS fleet_terminal_tid_trgm ON fleet_terminal USING gin (tid gin_trgm_ops);",
]
POSTGRES_DROP = [
    "DROP INDEX IF EXISTS fleet_terminal_sn_trgm;",
    "DROP INDEX IF EXISTS fleet_terminal_tid_trgm;",
]


def install(execute, vendor: str) -> None:
    for sql in POSTGRES if vendor == "postgresql" else SQLITE_DROP + SQLITE:
        execute(sql)


def forwards(apps, schema_editor):
    install(schema_editor.execute, schema_editor.connection.vendor)


def backwards(apps, schema_editor):
    for sql in POSTGRES_DROP if schema_editor.connection.vendor == "postgresql" else SQLITE_DROP:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("fleet", "0009_terminal_tally")]

    operations = [migrations.RunPython(forwards, backwards)]
