"""`posfleet worker`: run background tasks (notices, dispatch, settlement) until stopped."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.tasks import task_backends


class Command(BaseCommand):
    help = (
        "Run queued background tasks (django.tasks, database backend); Ctrl-C stops after the current "
        "task. Start as many as you like on PostgreSQL (they share the queue with SKIP LOCKED)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls when idle")
        parser.add_argument("--max-tasks", type=int, default=None, help="exit after this many tasks")

    def handle(self, *args: Any, batch: bool, interval: float, max_tasks: int | None, **options: Any) -> None:
        backend = task_backends["default"]
        name = f"{type(backend).__module__}.{type(backend).__name__}"
        if not name.startswith("django_tasks_db."):
            raise CommandError(
                f"The task backend is {name}: run that backend's own worker "
                "(Celery: `celery -A posfleet.config.celery worker`; see docs/adr/0012-background-work.md)."
            )
        if not batch:
            self.stdout.write(f"worker: polling the task queue every {interval:g} s (Ctrl-C to stop)")
            self.stdout.flush()
        call_command(
            "db_worker",
            queue_name="*",
            interval=interval,
            batch=batch,
            reload=False,
            startup_delay=False,
            max_tasks=max_tasks,
            verbosity=options.get("verbosity", 1),
        )
