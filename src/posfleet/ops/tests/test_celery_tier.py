"""The scale tier for real (docs/adr/0014): with POSFLEET_TASKS=celery and nothing else changed, a task
enqueued through django.tasks crosses a real redis-server and a real Celery worker runs our code; the
scheduler's one-instance lock lives in Redis.

Redis is the one at POSFLEET_TEST_REDIS_URL: `make test` (scripts/test_suite.py) sets it, to the
machine's redis-server or to one it starts. These tests use database 15 of it and flush only that one.
The worker and the producer are separate processes configured by environment variables alone, as
on a deployment; they share the test database (hence transactional tests).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command, Status
from posfleet.notifications.models import Delivery, InboxItem
from posfleet.platform.context import Actor
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import make_terminal

REDIS_URL = os.environ.get("POSFLEET_TEST_REDIS_URL", "")
REDIS_DB = 15
needs_redis = pytest.mark.skipif(
    not REDIS_URL,
    reason="POSFLEET_TEST_REDIS_URL is not set: run `make test` (scripts/test_suite.py sets it, starting a "
    "redis-server when none answers) or point it at one, e.g. redis://127.0.0.1:6379",
)
CELERY_TASKS = {
    "default": {
        "BACKEND": "django_tasks_celery.CeleryBackend",
        "QUEUES": ["default"],
        "OPTIONS": {"CELERY_APP": "posfleet.config.celery.app"},
    }
}

# Enqueue the outbox dispatcher through django.tasks (the Celery backend, from settings alone), wait
# for its result in Redis, print it as JSON.
PRODUCER = """
import json, sys, time
import django
django.setup()
from posfleet.platform.tasks import dispatch_outbox_task
result = dispatch_outbox_task.enqueue()
deadline = time.monotonic() + float(sys.argv[1])
while not result.is_finished and time.monotonic() < deadline:
    time.sleep(0.1)
    result.refresh()
print(json.dumps({
    "backend": type(dispatch_outbox_task.get_backend()).__name__,
    "status": str(result.status),
    "return_value": result.return_value if result.status == "SUCCESSFUL" else None,
}))
"""


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    url = with_db(REDIS_URL, REDIS_DB)
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis answers at POSFLEET_TEST_REDIS_URL={REDIS_URL}: {exc}")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def tier_env(redis_url: str, var_dir: Path) -> dict[str, str]:
    """A scale-tier process on the test database: the development settings plus POSFLEET_* only."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = quote(str(db["USER"] or ""), safe="")
        password = quote(str(db["PASSWORD"] or ""), safe="")
        auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
        database_url = f"postgresql://{auth}{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        database_url = f"sqlite:///{Path(str(db['NAME'])).resolve()}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "posfleet.config.settings.dev",
        "POSFLEET_DATABASE_URL": database_url,
        "POSFLEET_TASKS": "celery",
        "POSFLEET_BROKER_URL": redis_url,
        "POSFLEET_VAR_DIR": str(var_dir),
        "POSFLEET_SMTP_HOST": "",  # e-mail, if any, to var_dir/mail
        "POSFLEET_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def stop(process: subprocess.Popen[bytes], *, grace: float = 15.0) -> int:
    """Warm shutdown (SIGTERM), as a supervisor would; killed only if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            output = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            pytest.fail(f"{what} within {timeout:g} s\n{output}")
        time.sleep(0.1)


WORKERS = {
    "celery": [
        sys.executable, "-m", "celery", "-A", "posfleet.config.celery", "worker",
        "--pool", "solo", "--loglevel", "WARNING",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ],
    "posfleet": [sys.executable, "-m", "posfleet", "worker", "--concurrency", "1"],
}  # fmt: skip


@needs_redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "worker", WORKERS, ids=["celery -A posfleet.config.celery worker", "posfleet worker"]
)
def test_a_celery_worker_runs_our_tasks_over_redis(world, redis_url, tmp_path, worker):
    make_terminal(world, "SN-C-1", Status.ACTIVE)
    OutboxMessage.objects.all().delete()
    # The change commits its event to the outbox (the test settings' dummy backend enqueues nothing).
    terminal_transition(actor=Actor.system("test"), sn="SN-C-1", action=Command.SUSPEND, reason="risk")
    assert OutboxMessage.objects.get().status == "pending"
    env = tier_env(redis_url, tmp_path)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(WORKERS[worker], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        produced = subprocess.run(
            [sys.executable, "-c", PRODUCER, "15"], env=env, capture_output=True, text=True, timeout=40
        )
        assert produced.returncode == 0, produced.stderr[-3000:]
        result = json.loads(produced.stdout.strip().splitlines()[-1])
        assert result == {
            "backend": "CeleryBackend",
            "status": "SUCCESSFUL",
            "return_value": {"sent": 1, "failed": 0, "dead": 0},
        }, log.read_text(errors="replace")[-3000:]
        # The dispatcher ran in the worker: the event is handed over and its notices exist. Their
        # delivery is the next task, enqueued by the worker after its commit and run by it too.
        assert OutboxMessage.objects.get().status == "sent"
        assert Delivery.objects.exists()
        wait_for(
            lambda: not Delivery.objects.exclude(status="sent").exists(),
            timeout=15,
            what="the deliveries were not all sent by the worker",
            log=log,
        )
    finally:
        code = stop(process)
    assert code == 0, log.read_text(errors="replace")[-3000:]
    item = InboxItem.objects.get(user=world.user("merchant_a"))
    assert item.title.endswith(" is suspended")


def test_a_celery_worker_has_no_batch_mode():
    with (
        override_settings(TASKS=CELERY_TASKS),
        pytest.raises(CommandError, match="need the database task backend"),
    ):
        call_command("worker", batch=True)


@needs_redis
def test_one_scheduler_holds_the_redis_lock(redis_url):
    from posfleet.ops.management.commands.scheduler import single_scheduler

    with override_settings(CRONTASK={"REDIS_URL": redis_url, "LOCK_BLOCKING_TIMEOUT": 0.3}):
        with (
            single_scheduler(),
            pytest.raises(CommandError, match="Another scheduler is already running"),
            single_scheduler(),
        ):
            pass
        with single_scheduler():  # released: the next one starts
            pass


@needs_redis
def test_a_scheduler_that_lost_its_lock_stops(redis_url):
    from posfleet.ops.management.commands.scheduler import single_scheduler

    # Nothing extends the lock here (the loop that would is not running): it expires under its holder.
    with (
        override_settings(CRONTASK={"REDIS_URL": redis_url, "LOCK_TIMEOUT": 1}),
        pytest.raises(CommandError, match="lost its lock"),
        single_scheduler(),
    ):
        time.sleep(1.3)


@needs_redis
def test_the_scheduler_of_the_celery_tier_runs_under_the_redis_lock(redis_url, tmp_path):
    import redis

    client = redis.Redis.from_url(redis_url)
    log = tmp_path / "scheduler.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "posfleet", "scheduler"],
            env=tier_env(redis_url, tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: client.exists("crontask-lock") == 1, timeout=15, what="no lock in Redis", log=log)
        assert process.poll() is None, log.read_text(errors="replace")
    finally:
        code = stop(process)
    assert code == 0, log.read_text(errors="replace")
    assert client.exists("crontask-lock") == 0  # released on the way out
    assert re.search(r"scheduler: \d+ jobs", log.read_text())
    client.close()
