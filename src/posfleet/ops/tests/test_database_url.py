"""``POSFLEET_DATABASE_URL`` as a deployment writes it, turned into Django's DATABASES entry."""

from __future__ import annotations

from posfleet.config.settings.base import database_from_url


def test_postgresql_binds_on_the_server_and_prepares_repeated_statements() -> None:
    db = database_from_url("postgresql://app:s%40cret@db.internal:6432/posfleet")
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "posfleet",
        "app",
        "s@cret",
        "db.internal",
        "6432",
    )
    assert db["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": 5}


def test_behind_a_pooler_the_url_turns_prepared_statements_or_binding_off() -> None:
    pooled = database_from_url("postgresql://app@pgbouncer:6432/posfleet?prepare_threshold=none")
    assert pooled["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": None}
    plain = database_from_url("postgresql://app@db/posfleet?server_side_binding=false&sslmode=require")
    assert plain["OPTIONS"] == {"server_side_binding": False, "prepare_threshold": 5, "sslmode": "require"}


def test_sqlite_takes_none_of_them() -> None:
    db = database_from_url("sqlite:////var/lib/posfleet/posfleet.sqlite3")
    assert db["NAME"] == "/var/lib/posfleet/posfleet.sqlite3"
    assert "server_side_binding" not in db["OPTIONS"]  # type: ignore[operator]
