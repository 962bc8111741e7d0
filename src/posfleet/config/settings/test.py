"""The test suite. ``POSFLEET_TEST_DB=postgres`` runs it on the PostgreSQL at POSFLEET_TEST_DATABASE_URL."""

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import POSFLEET, POSFLEET_NOTIFY, database_from_url, sqlite_database

_engine = os.environ.get("POSFLEET_TEST_DB", "sqlite")
if _engine == "postgres":
    DATABASES = {
        "default": database_from_url(
            os.environ.get("POSFLEET_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        )
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A test database per run, so that several runs (people, CI jobs) can share one server.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("POSFLEET_TEST_DB_NAME", f"test_posfleet_{os.getpid()}")
    }
else:
    # A real file (not :memory:) so that threads, processes and the live server share it.
    _dir = Path(os.environ.get("POSFLEET_TEST_SQLITE_DIR", tempfile.gettempdir()))
    DATABASES = {"default": sqlite_database(_dir / "posfleet-test.sqlite3")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["TEST"] = {"NAME": str(_dir / f"posfleet-test-{os.getpid()}.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# No collectstatic per run (it takes half a minute): plain names from the apps' folders. The tests of
# what production sends collect once with production's storage (posfleet/testing/static.py).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
POSFLEET["DEMO_MODE"] = True
LOGGING = {"version": 1, "disable_existing_loggers": False}

# Test databases are flushed between transactional tests; the append-only triggers would refuse that.
POSFLEET_AUDIT_DB_GUARD = False

# Tasks enqueued by the code under test are kept, not run: tests run the worker's functions themselves
# (or a real `posfleet worker --batch` on the database backend, notifications/tests/test_worker.py).
TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
POSFLEET_NOTIFY["WEBHOOK_ALLOW_HTTP"] = True
POSFLEET_NOTIFY["WEBHOOK_ALLOW_PRIVATE"] = True  # the tests' receivers listen on 127.0.0.1

# Files the tests' jobs write (exports, uploads) go to a scratch folder, not the checkout's var/.
VAR_DIR = Path(tempfile.mkdtemp(prefix="posfleet-test-var-"))
POSFLEET_CLOSURE["BACKUP_DIR"] = VAR_DIR / "backups"  # noqa: F405
