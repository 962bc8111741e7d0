"""`posfleet worker`: run background tasks (notices, dispatch, settlement) until stopped."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.tasks import task_backends


class Command(BaseCommand):
    help = (
        "Run queued background tasks (django.tasks) until stopped; Ctrl-C stops after the current task. "
        "On the database backend start as many as you like on PostgreSQL (they share the queue with "
        "SKIP LOCKED); with POSFLEET_TASKS=celery this starts a Celery worker (docs/adr/0014)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit (database)")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls when idle")
        parser.add_argument(
            "--max-tasks", type=int, default=None, help="exit after this many tasks (database)"
        )
        parser.add_argument(
            "--concurrency", type=int, default=None, help="Celery: worker processes (default: one per CPU)"
        )

    def handle(
        self,
        *args: Any,
        batch: bool,
        interval: float,
        max_tasks: int | None,
        concurrency: int | None,
        **options: Any,
    ) -> None:
        backend = task_backends["default"]
        name = f"{type(backend).__module__}.{type(backend).__name__}"
        verbosity = options.get("verbosity", 1)
        if name.startswith("django_tasks_celery."):
            self._celery(batch=batch, max_tasks=max_tasks, concurrency=concurrency, verbosity=verbosity)
            return
        if not name.startswith("django_tasks_db."):
            raise CommandError(
                f"The task backend is {name}: run that backend's own worker, or set POSFLEET_TASKS to "
                "'db' or 'celery' (docs/adr/0014-celery-scale-tier.md)."
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
            verbosity=verbosity,
        )

    def _celery(self, *, batch: bool, max_tasks: int | None, concurrency: int | None, verbosity: int) -> None:
        """The scale tier: the same tasks, run by a Celery worker of posfleet.config.celery."""
        if batch or max_tasks is not None:
            raise CommandError(
                "--batch and --max-tasks need the database task backend; a Celery worker "
                "(POSFLEET_TASKS=celery) runs until it is stopped."
            )
        from posfleet.config.celery import app

        argv = ["worker", "--loglevel", "INFO" if verbosity > 1 else "WARNING"]
        if concurrency:
            argv += ["--concurrency", str(concurrency)]
        self.stdout.write(f"worker: Celery worker on {app.connection_for_read().as_uri()} (Ctrl-C to stop)")
        self.stdout.flush()
        app.worker_main(argv)
