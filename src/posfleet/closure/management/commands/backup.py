"""`posfleet backup create --merchant MID` writes a merchant's data backup (closure/backup.py), printing
plain progress lines; `posfleet backup verify <zip>` checks a bundle as its merchant would (the
signature, every file's size and SHA-256, nothing missing or extra) and exits 1 naming what is wrong."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posfleet.closure.backup import BackupProgress, backup_create, backup_path, backup_verify
from posfleet.parties.selectors import merchant_for
from posfleet.platform.cli import cli_actor
from posfleet.platform.errors import DomainError


class Command(BaseCommand):
    help = "Merchants' data backups: `create --merchant MID` writes one, `verify <zip>` checks one."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="write the merchant's signed data backup")
        create.add_argument("--merchant", required=True, help="merchant ID (MID)")
        create.add_argument("--user", help="act as this user (permissions checked); default: the system")
        verify = sub.add_parser("verify", help="check a backup's signature and sums; exit 1 on any problem")
        verify.add_argument("path", help="the backup's zip file")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "create":
            self._create(options["merchant"], options.get("user"))
        else:
            self._verify(options["path"])

    def _create(self, mid: str, username: str | None) -> None:
        actor = cli_actor(username)

        def report(event: BackupProgress) -> None:
            percent = event.done * 100 // event.total if event.total else 100
            self.stdout.write(f"[{percent:3d}%] {event.part}: {event.done:,} of {event.total:,}")

        try:
            merchant = merchant_for(actor.scope_user, mid.strip().upper())
            backup = backup_create(actor=actor, merchant_id=merchant.pk, progress=report)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}", returncode=1) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"backup {backup.pk} of {merchant.mid}: {backup_path(backup)} ({backup.size_bytes:,} bytes, "
                f"sha256 {backup.sha256}, signed by key {backup.key_id})"
            )
        )

    def _verify(self, path: str) -> None:
        result = backup_verify(path)
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(problem)
            first = result.problems[0] if result.problems else "the signature is not valid"
            raise CommandError(
                f"backup NOT VERIFIED: {len(result.problems)} problem(s), first: {first}", returncode=1
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"backup verified: signature valid (key {result.key_id}), "
                f"{result.files} files match the manifest"
            )
        )
