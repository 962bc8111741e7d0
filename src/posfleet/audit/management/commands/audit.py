"""`posfleet audit verify` proves the audit chain intact; `posfleet audit head` prints an anchor."""

from __future__ import annotations

import sys
from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posfleet.audit.models import AuditChainHead, AuditEvent
from posfleet.audit.verify import verify_chain


class Command(BaseCommand):
    help = "Audit chain: `verify` checks every event's hash and link; `head` prints the current anchor."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="recompute every hash; exit 1 naming the first bad event")
        verify.add_argument(
            "--expect-head",
            metavar="SEQ:HASH",
            help="an anchor saved earlier (from `audit head`): the chain must still contain it",
        )
        sub.add_parser(
            "head", help="print the last sequence number and hash (store it elsewhere as an anchor)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "head":
            head = AuditChainHead.objects.get(pk=1)
            self.stdout.write(f"{head.last_seq}:{head.last_hash}")
            return
        self._verify(options.get("expect_head"))

    def _verify(self, anchor: str | None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        total = AuditEvent.objects.count()
        console = Console(file=cast(IO[str], self.stdout), highlight=False)
        if console.is_terminal:
            with Progress(
                TextColumn("verifying audit chain"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("verify", total=total)
                result = verify_chain(progress=lambda n: bar.update(task, completed=n))
        else:

            def report(n: int) -> None:
                if n % 100_000 == 0 or n == total:
                    self.stdout.write(f"verified {n:,} of {total:,} events")

            result = verify_chain(progress=report)
        if not result.ok:
            raise CommandError(
                f"audit chain BROKEN at event #{result.bad_seq}: {result.problem} "
                f"({result.checked:,} events before it are intact)",
                returncode=1,
            )
        if anchor:
            seq_text, _sep, digest = anchor.partition(":")
            event = AuditEvent.objects.filter(seq=int(seq_text or 0)).values_list("hash", flat=True).first()
            if event != digest:
                raise CommandError(
                    f"audit chain does not contain the anchor #{seq_text}: "
                    "history was rewritten before that point",
                    returncode=1,
                )
        self.stdout.write(
            self.style.SUCCESS(f"audit chain intact: {result.checked:,} events, last #{result.last_seq}")
        )
        sys.stdout.flush()
