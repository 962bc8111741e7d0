"""`posfleet ledger verify`: conservation, every journal balanced and complete, every balance equal to
its entries. Exits 1 naming what is wrong."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posfleet.billing.verify import verify_ledger
from posfleet.platform.money import format_fen


class Command(BaseCommand):
    help = "Ledger checks: `verify` proves every journal balances and every balance equals its entries."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="check conservation, journals and balances; exit 1 on any problem")

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_ledger()
        if not report.ok:
            for problem in report.problems:
                self.stderr.write(problem)
            raise CommandError(
                f"ledger BROKEN: {len(report.problems)} problem(s), first: {report.problems[0]}", returncode=1
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"ledger balanced: {report.journals:,} journals, {report.entries:,} entries, "
                f"{report.accounts:,} accounts; all entries sum to {format_fen(report.total_fen)}"
            )
        )
