"""`posfleet serve`: the web application under gunicorn (WSGI), in the foreground."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


def collect_static_if_never_collected() -> bool:
    """With production's storage (hashed names from a manifest, docs/adr/0032) a page whose static files
    were never collected answers 500: collect them first then. Returns whether it collected. After an
    upgrade the deployment runs ``posfleet collectstatic`` itself (README, "Deploying: static files")."""
    if not isinstance(staticfiles_storage, ManifestFilesMixin):
        return False  # development and tests: plain names, served from the apps' folders
    if staticfiles_storage.exists(staticfiles_storage.manifest_name):
        return False
    call_command("collectstatic", interactive=False, verbosity=0)
    return True


class Command(BaseCommand):
    help = "Serve the web console and API with gunicorn."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("POSFLEET_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("POSFLEET_WEB_WORKERS", "2")))
        parser.add_argument("--threads", type=int, default=4)

    def handle(self, *args: Any, bind: str, workers: int, threads: int, **options: Any) -> None:
        if collect_static_if_never_collected():
            self.stderr.write("static files were never collected: collected them (posfleet collectstatic)")
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "posfleet.config.wsgi:application",
            "--bind",
            bind,
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--timeout",
            "120",
            "--graceful-timeout",
            "10",
            "--no-control-socket",  # no socket under ~/.gunicorn: one user may run several instances
            "--access-logfile",
            "-",
            "--access-logformat",
            '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',
        ]
        os.execv(sys.executable, argv)  # noqa: S606 (replaces this process with gunicorn)
