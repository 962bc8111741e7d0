"""``posfleet import terminals FILE``: validate a CSV/Excel file of new devices and register them.

Dry run by default. Exit codes: 0 all rows valid (and written with --commit); 1 invalid rows found,
nothing written; 2 the file or the request cannot be used, nothing written; 3 written with
--skip-invalid, invalid rows skipped (listed).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posfleet.fleet.transfer import import_terminals
from posfleet.fleet.transfer.cli import CliProgress, write_report
from posfleet.fleet.transfer.report import DEFAULT_MAX_ERRORS
from posfleet.platform.cli import cli_actor, raw_stream
from posfleet.platform.errors import PermissionDenied


class Command(BaseCommand):
    help = (
        "Import terminals (new devices, into stock) from a CSV or Excel file. Dry run unless --commit. "
        "Columns: sn, model, sim_iccid, service_expires_on (YYYY-MM-DD), firmware_version "
        "(Chinese headers accepted: 序列号, 机型, SIM卡号/ICCID, 服务到期日, 固件版本). "
        "Exit codes: 0 ok; 1 invalid rows, nothing written; 2 unusable file or refused; "
        "3 written with invalid rows skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["terminals"], help="what to import")
        parser.add_argument("file", help="the CSV (UTF-8 or GB18030/GBK) or .xlsx file")
        parser.add_argument("--format", choices=["csv", "xlsx"], help="default: from the file name/content")
        parser.add_argument("--commit", action="store_true", help="write (default: dry run, nothing written)")
        parser.add_argument(
            "--skip-invalid", action="store_true", help="with --commit: write the valid rows, skip the others"
        )
        parser.add_argument("--user", help="act as this user (needs fleet.import_terminals); default: system")
        parser.add_argument(
            "--max-errors", type=int, default=DEFAULT_MAX_ERRORS, help="errors listed in detail"
        )
        parser.add_argument("--chunk-size", type=int, default=5000, help="rows per write and audit event")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["skip_invalid"] and not options["commit"]:
            self.stderr.write("note: --skip-invalid only matters with --commit; this is a dry run")
        actor = cli_actor(options["user"])
        stream = raw_stream(self.stdout)
        tty = self.stdout.isatty()
        try:
            with CliProgress(stream, tty=tty) as progress:
                report = import_terminals(
                    actor=actor,
                    path=options["file"],
                    fmt=options["format"],
                    commit=options["commit"],
                    skip_invalid=options["skip_invalid"],
                    progress=progress,
                    max_errors=max(0, options["max_errors"]),
                    chunk_size=max(1, options["chunk_size"]),
                )
        except PermissionDenied as exc:
            raise CommandError(f"{actor.label} may not import terminals", returncode=2) from exc
        write_report(report, stream, tty=tty)

        if report.file_errors:
            raise CommandError("the file cannot be imported; nothing was written", returncode=2)
        if report.committed:
            message = (
                f"Imported {report.written:,} terminals into stock in batch {report.batch} "
                f"({report.chunks} chunk{'s' if report.chunks != 1 else ''}, one audit event each)."
            )
            self.stdout.write(self.style.SUCCESS(message))
            if report.skipped:
                raise CommandError(
                    f"{report.skipped:,} invalid rows were skipped (listed above)", returncode=3
                )
            return
        if report.invalid_rows:
            if options["commit"] and report.valid_rows:
                hint = (
                    f"; fix them, or pass --skip-invalid to import only the {report.valid_rows:,} valid rows"
                )
            else:
                hint = ""
            raise CommandError(
                f"{report.invalid_rows:,} of {report.rows:,} rows are invalid; nothing was written{hint}",
                returncode=1,
            )
        self.stdout.write(
            f"Dry run: all {report.rows:,} rows are valid; nothing was written. "
            "Run again with --commit to import them."
        )
