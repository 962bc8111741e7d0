"""`posfleet run`: start the whole embedded system under one supervisor; Ctrl-C stops everything."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from posfleet.ops.supervisor import Process, supervise

DEMO_USERS = ("admin", "reviewer", "agent1", "merchant1")


class Command(BaseCommand):
    help = (
        "Start web, worker and scheduler (and, when it comes, the gateway) together; Ctrl-C stops them all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("POSFLEET_BIND", "127.0.0.1:8000"))

    def handle(self, *args: Any, bind: str, **options: Any) -> None:
        posfleet = [sys.executable, "-m", "posfleet"]
        processes = [
            Process("web", [*posfleet, "serve", "--bind", bind]),
            Process("worker", [*posfleet, "worker"]),
            Process("scheduler", [*posfleet, "scheduler"]),
        ]
        self._banner(bind)
        code = supervise(processes)
        self.stdout.write("posfleet stopped")
        if code:
            sys.exit(code)

    def _banner(self, bind: str) -> None:
        base = f"http://{bind}"
        lines = [
            "",
            "posfleet is starting:",
            f"  console   {base}/console/   (log in at {base}/accounts/login/)",
            f"  API       {base}/api/v1/    (docs at {base}/api/v1/docs)",
            f"  health    {base}/healthz",
            f"  admin     {base}/admin/",
        ]
        if settings.POSFLEET["DEMO_MODE"]:
            lines += [
                "",
                "Demo logins (demo data only): " + ", ".join(DEMO_USERS),
                "  password posfleet-demo; TOTP secret JBSWY3DPEHPK3PXP (add it to an authenticator app)",
            ]
        lines += ["", "Press Ctrl-C to stop.", ""]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
