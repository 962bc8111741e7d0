"""``posfleet ingest transactions FILE.csv [--commit]``: transactions from an acquirer's CSV file.

Dry run by default: every row goes through the real ingest (prices, checks, replays) inside a
transaction that is then rolled back, and the per-row results are shown. ``--commit`` writes, 10,000
rows per ingest call (each call all-or-nothing for its money). Rows already recorded with the same
content are replays, so a file can be sent again safely.

Exit codes: 0 every row accepted (or replayed); 1 some rows refused (the others written with
--commit); 2 the file cannot be used (nothing written).
"""

from __future__ import annotations

import codecs
import csv
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from posfleet.billing.services.transactions import MAX_BATCH, TxnIn, TxnResult, transactions_ingest
from posfleet.platform.cli import cli_actor, raw_stream
from posfleet.platform.errors import PermissionDenied
from posfleet.platform.money import MoneyParseError, format_fen, parse_amount

REQUIRED = ("tid", "batch_no", "trace_no", "txn_date", "occurred_at", "method", "entry_mode", "amount")
OPTIONAL = (
    "kind",
    "status",
    "card",
    "response_code",
    "external_id",
    "original_tid",
    "original_batch_no",
    "original_trace",
    "original_trace_no",
    "original_date",
    "original_txn_date",
    "original_external_id",
)


class RowError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def _text(row: dict[str, str], name: str) -> str:
    return (row.get(name) or "").strip()


def _day(value: str, column: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise RowError("invalid_key", f"{column}: {value[:32]!r} is not a date (YYYY-MM-DD)") from exc


def parse_row(row: dict[str, str]) -> TxnIn:
    """One CSV row as a ``TxnIn``; amounts in yuan ("12.30"), times in ISO 8601 (Asia/Shanghai when
    they carry no offset). Raises ``RowError`` with a code like the service's."""
    tid, batch_no = _text(row, "tid").upper(), _text(row, "batch_no")
    txn_date = _day(_text(row, "txn_date"), "txn_date")
    try:
        occurred_at = datetime.fromisoformat(_text(row, "occurred_at"))
    except ValueError as exc:
        raise RowError("invalid_time", "occurred_at is a date and time, e.g. 2026-11-03T10:15:00") from exc
    if occurred_at.utcoffset() is None:
        occurred_at = timezone.make_aware(occurred_at)
    try:
        amount = parse_amount(_text(row, "amount"))
    except MoneyParseError as exc:
        raise RowError("invalid_amount", str(exc)) from exc
    original = None
    trace = _text(row, "original_trace") or _text(row, "original_trace_no")
    if trace:
        original = (
            _text(row, "original_tid").upper() or tid,
            _text(row, "original_batch_no") or batch_no,
            trace,
            _day(
                _text(row, "original_date") or _text(row, "original_txn_date") or txn_date.isoformat(),
                "original_date",
            ),
        )
    return TxnIn(
        tid=tid,
        batch_no=batch_no,
        trace_no=_text(row, "trace_no"),
        txn_date=txn_date,
        occurred_at=occurred_at,
        method=_text(row, "method").lower(),
        entry_mode=_text(row, "entry_mode").lower(),
        amount_fen=amount,
        kind=_text(row, "kind").lower() or "sale",
        status=_text(row, "status").lower() or "approved",
        card_masked=_text(row, "card"),
        response_code=_text(row, "response_code") or "00",
        external_id=_text(row, "external_id") or None,
        original=original,
        original_external_id=_text(row, "original_external_id") or None,
    )


class Report:
    """Counts, and the per-row lines (up to ``limit``)."""

    def __init__(self, out: TextIO, limit: int) -> None:
        self.write: Callable[[str], object] = out.write  # above the progress bar on a terminal
        self.limit = limit
        self.rows = self.accepted = self.replayed = self.fees = self.returned = self.shown = 0
        self.refused: Counter[str] = Counter()

    def line(self, number: int, key: str, result: TxnResult, sale: bool = True) -> None:
        self.rows += 1
        if result.ok:
            self.accepted += 1
            self.replayed += result.replayed
            if not result.replayed and sale:
                self.fees += result.fee_fen or 0
            elif not result.replayed:
                self.returned += result.fee_fen or 0
            text = f"ok\tfee {format_fen(result.fee_fen or 0)}" + ("\treplay" if result.replayed else "")
        else:
            self.refused[result.code or "?"] += 1
            text = f"REFUSED\t{result.code}\t{result.detail}"
        if self.shown < self.limit:
            self.shown += 1
            self.write(f"line {number}\t{key}\t{text}\n")
        elif self.shown == self.limit:
            self.shown += 1
            self.write("… further rows are not listed (--max-lines)\n")


class Command(BaseCommand):
    help = (
        "Ingest transactions from a CSV file (UTF-8, header row). Columns: tid, batch_no, trace_no, "
        "txn_date (YYYY-MM-DD), occurred_at (ISO 8601; Asia/Shanghai without an offset), method "
        "(credit|debit|qr|nfc|foreign), entry_mode (swipe|insert|tap|scan|keyed), amount (yuan, e.g. "
        "12.30); optional: kind (sale|refund|reversal), status (approved|declined), card (masked), "
        "response_code, external_id, original_trace [original_batch_no, original_date, original_tid] "
        "or original_external_id. Dry run unless --commit. Exit codes: 0 all accepted; 1 rows refused; "
        "2 unusable file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["transactions"], help="what to ingest")
        parser.add_argument("file", help="the CSV file")
        parser.add_argument("--commit", action="store_true", help="write (default: dry run, nothing written)")
        parser.add_argument("--user", help="act as this user (needs billing.ingest_transactions)")
        parser.add_argument(
            "--max-lines", type=int, default=1000, help="per-row results listed (default 1000)"
        )
        parser.add_argument(
            "--chunk-size", type=int, default=MAX_BATCH, help="rows per ingest call (≤ 10,000)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        actor = cli_actor(options["user"])
        out = raw_stream(self.stdout)
        tty = self.stdout.isatty()
        chunk_size = min(max(1, options["chunk_size"]), MAX_BATCH)
        report = Report(out, max(0, options["max_lines"]))
        try:
            _check_utf8(path)
            fh = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}", returncode=2) from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text; nothing was written", returncode=2) from exc
        # A dry run is one transaction, rolled back at the end; with --commit each chunk commits.
        with fh, nullcontext() if options["commit"] else transaction.atomic():
            try:
                reader = csv.DictReader(fh)
                missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
                if missing:
                    raise CommandError(f"missing columns: {', '.join(missing)}", returncode=2)
                self._run(reader, actor, report, chunk_size, tty, out, options["commit"])
            except PermissionDenied as exc:
                raise CommandError(f"{actor.label} may not ingest transactions", returncode=2) from exc
            if not options["commit"]:
                transaction.set_rollback(True)
        refused = sum(report.refused.values())
        verb = "ingested" if options["commit"] else "would be ingested (dry run, nothing written)"
        out.write(
            f"{report.rows:,} rows: {report.accepted - report.replayed:,} {verb}, "
            f"{report.replayed:,} replays of stored transactions, {refused:,} refused; "
            f"fees {format_fen(report.fees)} charged, {format_fen(report.returned)} returned\n"
        )
        if refused:
            counts = ", ".join(f"{code}: {n:,}" for code, n in sorted(report.refused.items()))
            raise CommandError(f"{refused:,} rows refused ({counts})", returncode=1)

    def _run(
        self,
        reader: csv.DictReader[str],
        actor: Any,
        report: Report,
        size: int,
        tty: bool,
        out: TextIO,
        commit: bool,
    ) -> None:
        bar = Progress(
            TextColumn("ingesting"),
            BarColumn(),
            TextColumn("{task.completed:,} rows"),
            TimeElapsedColumn(),
            console=Console(file=out),
        )
        task = bar.add_task("ingest", total=None)
        if tty:
            bar.start()
            report.write = lambda text: bar.console.out(text.rstrip("\n"), highlight=False)
        try:
            for chunk in _chunks(reader, size):
                items = [(n, key, parsed) for n, key, parsed in chunk if isinstance(parsed, TxnIn)]
                results = iter(transactions_ingest(actor=actor, items=[p for _n, _k, p in items]))
                for number, key, parsed in chunk:
                    if isinstance(parsed, TxnIn):
                        report.line(number, key, next(results), parsed.kind == "sale")
                    else:
                        report.line(number, key, TxnResult(0, False, code=parsed.code, detail=parsed.detail))
                if tty:
                    bar.update(task, completed=report.rows)
                else:
                    out.write(f"{'ingested' if commit else 'checked'} {report.rows:,} rows\n")
                    out.flush()
        finally:
            if tty:
                bar.stop()
                report.write = out.write


def _check_utf8(path: Path) -> None:
    """The whole file decodes as UTF-8 (checked before anything is written; streaming)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as raw:
        while block := raw.read(1 << 20):
            decoder.decode(block)
        decoder.decode(b"", final=True)


def _chunks(reader: csv.DictReader[str], size: int) -> Iterator[list[tuple[int, str, TxnIn | RowError]]]:
    chunk: list[tuple[int, str, TxnIn | RowError]] = []
    for row in reader:
        number = reader.line_num
        key = "/".join(_text(row, c) for c in ("tid", "batch_no", "trace_no", "txn_date"))
        try:
            parsed: TxnIn | RowError = parse_row(row)
        except RowError as exc:
            parsed = exc
        chunk.append((number, key, parsed))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
