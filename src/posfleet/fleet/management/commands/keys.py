"""`posfleet keys`: terminal master keys (ADR 0024) for the key-loading facility.

- ``issue-missing``: give every active terminal without a live key one (terminals activated before
  the gateway existed; run it once after upgrading). Their keys are then loaded with ``issue``.
- ``issue --sn SN``: a new master key for an active terminal, printed once in clear with its check
  value, to load into the device now; the previous key stops working at once. Audited.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posfleet.fleet.services import keys_issue_missing, terminal_key_issue
from posfleet.platform.cli import cli_actor
from posfleet.platform.errors import DomainError


class Command(BaseCommand):
    help = (
        "Terminal master keys: `issue-missing` for active terminals without one, `issue --sn SN` to load one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("issue-missing", help="issue a key to every active terminal that has none")
        issue = sub.add_parser("issue", help="issue a new master key and print it once, to load it")
        issue.add_argument("--sn", required=True, help="the terminal's serial number")
        issue.add_argument("--user", help="act as this user (permissions checked); default: the system")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "issue-missing":
            count = keys_issue_missing(by="cli")
            self.stdout.write(self.style.SUCCESS(f"issued {count:,} terminal key(s)"))
            return
        actor = cli_actor(options.get("user"))
        try:
            key, master = terminal_key_issue(actor=actor, sn=options["sn"])
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}", returncode=1) from exc
        self.stdout.write(
            f"terminal {options['sn'].upper()}: {key.scheme} master key, check value {key.master_kcv}"
        )
        self.stdout.write(master.hex().upper())
        self.stdout.write(
            "Load it into the terminal now: it is not shown again. The previous key no longer works."
        )
