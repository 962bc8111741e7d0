"""`posfleet scheduler`: enqueue the periodic sweeps (config/schedule.py). Run exactly one: a second
scheduler of the same deployment refuses to start."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from apscheduler.schedulers import SchedulerNotRunningError
from crontask import conf as crontask_conf
from crontask import scheduler as crontask_scheduler
from crontask.management.commands.crontask import Command as CrontaskCommand
from crontask.utils import FakeLock
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

LOCK_KEY = 0x706F73666C656574  # "posfleet": the PostgreSQL advisory lock of the one scheduler
REDIS_LOCK_NAME = "crontask-lock"  # django-crontask's own name: `posfleet crontask` is kept out as well


class SchedulerLock(Protocol):
    def extend(self, additional_time: float, replace_ttl: bool = ...) -> bool: ...


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
        with single_scheduler() as lock:
            self.stdout.write(f"scheduler: {len(JOBS)} jobs, times in {settings.TIME_ZONE}")
            self.stdout.flush()
            # crontask's loop (what `crontask --no-task-loading --no-heartbeat` runs), under our lock:
            # it extends a Redis lock every LOCK_REFRESH_INTERVAL and stops when it cannot.
            try:
                CrontaskCommand(stdout=self.stdout, stderr=self.stderr).launch_scheduler(
                    lock, crontask_scheduler
                )
            except SchedulerNotRunningError:
                # Stopped (SIGTERM/Ctrl-C) while APScheduler was still starting: crontask then shuts
                # down a scheduler that never ran. Nothing was enqueued yet; stop cleanly.
                self.stdout.write("scheduler: stopped before it started")


@contextmanager
def single_scheduler() -> Iterator[SchedulerLock]:
    """Hold the one-scheduler lock: in Redis when django-crontask has a REDIS_URL (the scale tier),
    else an advisory lock on PostgreSQL or a file lock beside SQLite's file."""
    redis_url = crontask_conf.get_settings().REDIS_URL
    if redis_url:
        with redis_lock(redis_url) as lock:
            yield lock
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise CommandError("Another scheduler is already running on this database.")
        try:
            yield FakeLock()
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
        yield FakeLock()


@contextmanager
def redis_lock(url: str) -> Iterator[SchedulerLock]:
    """django-crontask's leader lock in Redis: it expires LOCK_TIMEOUT seconds after its holder stops
    extending it (a killed scheduler), so a new scheduler waits up to LOCK_BLOCKING_TIMEOUT for it."""
    import redis

    conf = crontask_conf.get_settings()
    where = f"{urlsplit(url).hostname}:{urlsplit(url).port or 6379}"
    lock = redis.Redis.from_url(url).lock(
        REDIS_LOCK_NAME,
        timeout=conf.LOCK_TIMEOUT,
        blocking_timeout=conf.LOCK_BLOCKING_TIMEOUT,
        thread_local=False,
    )
    try:
        acquired = lock.acquire()
    except redis.RedisError as exc:
        raise CommandError(f"The scheduler's lock needs Redis at {where}: {exc}") from exc
    if not acquired:
        raise CommandError(f"Another scheduler is already running (it holds the lock in Redis at {where}).")
    try:
        yield lock
    finally:
        try:
            owned = lock.owned()
            if owned:
                lock.release()
        except redis.RedisError:
            owned = False
    if not owned:
        raise CommandError(
            f"The scheduler lost its lock in Redis at {where} (not extended in time); it stopped so that "
            "never two run at once. Start it again."
        )
