"""``posfleet settle [--date YYYY-MM-DD]``: the T+1 settlement of one business date (default: yesterday
in Asia/Shanghai). Idempotent: a settled day is reported, not settled again; an interrupted run resumes.

Exit codes: 0 settled (or already settled); 1 the run stopped (it resumes when started again);
2 refused (a day not yet over, no permission); 3 another process is settling that day.
"""

from __future__ import annotations

import os
from argparse import SUPPRESS
from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Sum
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from posfleet.billing.services.settlement import CHUNK, SettlementInterrupted, settlement_run
from posfleet.platform.cli import cli_actor, raw_stream
from posfleet.platform.clock import today
from posfleet.platform.errors import Conflict, PermissionDenied, ValidationFailed
from posfleet.platform.money import format_fen


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)", returncode=2) from exc


class Command(BaseCommand):
    help = (
        "Settle one business date (T+1): per merchant, one batch and one journal paying the net of its "
        "approved transactions up to that date, less due service fees. Default: yesterday. Running it "
        "again changes nothing; an interrupted run resumes. Exit codes: 0 settled; 1 stopped (run again "
        "to resume); 2 refused; 3 another process is settling that day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=_date, help="business date (YYYY-MM-DD); default: yesterday")
        parser.add_argument("--user", help="act as this user (needs billing.run_settlement); default: system")
        # For crash tests and benchmarks: stop after N merchants, merchants per transaction, a pause
        # per merchant inside each transaction (also from POSFLEET_SETTLE_SLOW_MS).
        parser.add_argument("--fail-after", type=int, help=SUPPRESS)
        parser.add_argument("--chunk-size", type=int, default=CHUNK, help=SUPPRESS)
        parser.add_argument(
            "--slow-ms", type=int, default=int(os.environ.get("POSFLEET_SETTLE_SLOW_MS", "0")), help=SUPPRESS
        )

    def handle(self, *args: Any, **options: Any) -> None:
        day = options["date"] or today() - timedelta(days=1)
        actor = cli_actor(options["user"])
        stream = raw_stream(self.stdout)
        tty = self.stdout.isatty()
        bar = Progress(
            TextColumn(f"settling {day.isoformat()}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("merchants"),
            TimeElapsedColumn(),
            console=Console(file=stream),
        )
        task = bar.add_task("settle", total=None)
        printed = [-1]

        def progress(done: int, total: int) -> None:
            if tty:
                bar.update(task, completed=done, total=total)
            elif done == total or done >= printed[0] + max(1, total // 20):
                printed[0] = done
                stream.write(f"settled {done:,} of {total:,} merchants\n")
                stream.flush()

        if tty:
            bar.start()
        try:
            run = settlement_run(
                actor=actor,
                business_date=day,
                progress=progress,
                fail_after=options["fail_after"],
                chunk_size=max(1, options["chunk_size"]),
                pause_ms=max(0, options["slow_ms"]),
            )
        except ValidationFailed as exc:
            raise CommandError(str(exc.detail), returncode=2) from exc
        except PermissionDenied as exc:
            raise CommandError(f"{actor.label} may not run the settlement", returncode=2) from exc
        except Conflict as exc:
            raise CommandError(str(exc.detail), returncode=3) from exc
        except SettlementInterrupted as exc:
            raise CommandError(f"{exc}; run the command again to resume", returncode=1) from exc
        finally:
            if tty:
                bar.stop()
        sums = run.batches.aggregate(
            n=Count("id"), paid=Sum("payout_fen", default=0), deducted=Sum("service_fees_fen", default=0)
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Settlement of {day.isoformat()}: {run.status} after {run.attempts} attempt(s); "
                f"{sums['n']:,} batches paying {format_fen(sums['paid'])} on {day + timedelta(days=1)}"
                f" (service fees deducted {format_fen(sums['deducted'])}); "
                f"{run.merchants_done - sums['n']:,} merchants waiting (net not positive)."
            )
        )
