"""Seed the chain head and make the audit table append-only in the database itself.

The triggers stop an UPDATE or DELETE through any client, not only the ORM. Someone with the rights to
drop them can still edit rows, which is what the hash chain and ``posfleet audit verify`` detect.
"""

from django.db import migrations

SQLITE = [
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS audit_event_no_update;", "DROP TRIGGER IF EXISTS audit_event_no_delete;"]

POSTGRES = [
    """CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'audit events are append-only'; END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
       FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
       FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;",
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;",
    "DROP FUNCTION IF EXISTS audit_event_append_only();",
]


def install_guard(execute, vendor):
    for sql in POSTGRES if vendor == "postgresql" else SQLITE:
        execute(sql)


def forwards(apps, schema_editor):
    from django.conf import settings

    apps.get_model("audit", "AuditChainHead").objects.get_or_create(pk=1)
    # The test settings turn the guard off so that test databases can be flushed between tests;
    # posfleet/audit/tests/test_chain.py installs it explicitly to prove it refuses edits.
    if getattr(settings, "POSFLEET_AUDIT_DB_GUARD", True):
        install_guard(schema_editor.execute, schema_editor.connection.vendor)


def backwards(apps, schema_editor):
    statements = POSTGRES_DROP if schema_editor.connection.vendor == "postgresql" else SQLITE_DROP
    for sql in statements:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
