"""`posfleet scheduler`: enqueue the periodic sweeps (config/schedule.py). Run exactly one: a second
scheduler on the same database refuses to start."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

LOCK_KEY = 0x706F73666C656574  # "posfleet": the PostgreSQL advisory lock of the one scheduler


class Command(BaseCommand):
    help = "Enqueue the periodic jobs (outbox dispatch, notice delivery, T+1 settlement) on their schedule."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--list", action="store_true", dest="list_only", help="print the schedule and exit"
        )

    def handle(self, *args: Any, list_only: bool, **options: Any) -> None:
        from posfleet.config.schedule import JOBS

        for schedule, job, why in JOBS:
            self.stdout.write(f"  {schedule:<12} {job.name:<28} {why}")
        if list_only:
            return
        with single_scheduler():
            self.stdout.write(f"scheduler: {len(JOBS)} jobs, times in {settings.TIME_ZONE}")
            self.stdout.flush()
            call_command("crontask", no_task_loading=True, no_heartbeat=True)


@contextmanager
def single_scheduler() -> Iterator[None]:
    """Hold the one-scheduler lock: an advisory lock on PostgreSQL, a file lock beside SQLite's file."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise CommandError("Another scheduler is already running on this database.")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        return
    path = Path(str(settings.DATABASES["default"]["NAME"]) + ".scheduler.lock")
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CommandError("Another scheduler is already running on this database.") from None
        yield
