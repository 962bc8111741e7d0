"""``posfleet export terminals``: stream terminals to CSV or Excel, in the user's scope, audited."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posfleet.fleet.selectors import TerminalFilters
from posfleet.fleet.states import Status
from posfleet.fleet.transfer import TERMINAL_EXPORT, export_terminals
from posfleet.fleet.transfer.cli import CliProgress
from posfleet.platform.cli import cli_actor, raw_stream
from posfleet.platform.errors import PermissionDenied


class _TextSink:
    """Lets the CSV bytes go to a text stream (e.g. a StringIO standing in for stdout)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, data: bytes) -> int:
        self.stream.write(data.decode("utf-8"))
        return len(data)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)", returncode=2) from exc


class Command(BaseCommand):
    help = (
        "Export terminals to CSV (UTF-8 with BOM) or Excel, streaming. Columns: sn, tid, status, model, "
        "agent, merchant, store, sim_iccid, service_expires_on, firmware_version, status_reason, "
        "status_changed_at. Cells that would run as formulas are prefixed with a quote. Audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["terminals"], help="what to export")
        parser.add_argument(
            "--format", choices=TERMINAL_EXPORT.formats, help="default: from --output's suffix, else csv"
        )
        parser.add_argument("--output", "-o", default="-", help="file to write, or - for stdout (default)")
        parser.add_argument(
            "--status", action="append", default=[], help="status slug(s); repeat or separate with commas"
        )
        parser.add_argument("--model", default="", help="terminal-model code")
        parser.add_argument("--agent", default="", help="agent code")
        parser.add_argument("--merchant", default="", help="merchant ID (MID)")
        parser.add_argument(
            "--q",
            default="",
            help="a part of an SN or TID (three characters or more: anywhere; one or two: its start)",
        )
        parser.add_argument("--expires-from", type=_date, help="service expiry on or after (YYYY-MM-DD)")
        parser.add_argument("--expires-to", type=_date, help="service expiry on or before (YYYY-MM-DD)")
        parser.add_argument("--user", help="export what this user may see (default: everything, as system)")

    def handle(self, *args: Any, **options: Any) -> None:
        statuses = tuple(s.strip() for value in options["status"] for s in value.split(",") if s.strip())
        unknown = [s for s in statuses if s not in Status.values]
        if unknown:
            raise CommandError(
                f"unknown status {', '.join(unknown)}; use {', '.join(Status.values)}", returncode=2
            )
        filters = TerminalFilters(
            statuses=statuses,
            model=options["model"],
            agent=options["agent"],
            merchant=options["merchant"],
            q=options["q"],
            sim_expires_from=options["expires_from"],
            sim_expires_to=options["expires_to"],
        )
        output: str = options["output"]
        fmt = options["format"] or ("xlsx" if output.lower().endswith(".xlsx") else "csv")
        actor = cli_actor(options["user"])
        user = actor.user
        messages = raw_stream(self.stderr if output == "-" else self.stdout)
        tty = messages.isatty() if hasattr(messages, "isatty") else False

        try:
            with CliProgress(messages, tty=tty) as progress:
                if output == "-":
                    rows = export_terminals(
                        actor=actor,
                        user_or_none=user,
                        filters=filters,
                        fmt=fmt,
                        out=self._stdout_sink(fmt),
                        progress=progress,
                    )
                else:
                    rows = self._to_file(Path(output), actor, user, filters, fmt, progress)
        except PermissionDenied as exc:
            raise CommandError(f"{actor.label} may not export terminals", returncode=2) from exc
        where = "stdout" if output == "-" else output
        messages.write(f"Exported {rows:,} terminals to {where} ({fmt}).\n")

    def _stdout_sink(self, fmt: str) -> IO[bytes] | Any:
        stream = raw_stream(self.stdout)
        binary = getattr(stream, "buffer", None)
        if fmt == "xlsx":
            if binary is None or stream.isatty():
                raise CommandError("Excel data is binary: use --output FILE.xlsx", returncode=2)
            return binary
        return binary if binary is not None else _TextSink(stream)

    def _to_file(
        self, path: Path, actor: Any, user: Any, filters: TerminalFilters, fmt: str, progress: Any
    ) -> int:
        partial = path.with_name(path.name + ".part")
        try:
            with open(partial, "wb") as out:
                rows = export_terminals(
                    actor=actor, user_or_none=user, filters=filters, fmt=fmt, out=out, progress=progress
                )
            os.replace(partial, path)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc}", returncode=2) from exc
        finally:
            if partial.exists():
                partial.unlink()
        return rows
