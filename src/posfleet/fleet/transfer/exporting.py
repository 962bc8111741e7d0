"""Exporting terminals to CSV or Excel, streaming, in the reader's scope, audited once per export.

Cells that a spreadsheet would run as a formula (starting with ``= + - @``, tab or carriage return)
are neutralised with a leading single quote (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import date, datetime
from typing import IO, Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Terminal
from posfleet.fleet.selectors import TerminalFilters, search_terminals
from posfleet.fleet.transfer.columns import EXPORT_COLUMNS
from posfleet.fleet.transfer.report import ProgressEvent
from posfleet.iam.models import User
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import PermissionDenied, ValidationFailed

ITERATOR_CHUNK = 2000
FLUSH_ROWS = 1000
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_VALUES = (
    "sn",
    "tid",
    "status",
    "model__code",
    "agent__code",
    "merchant__mid",
    "store__code",
    "sim_iccid",
    "service_expires_on",
    "firmware_version",
    "status_reason",
    "status_changed_at",
)
Progress = Callable[[ProgressEvent], None]


def neutralise(value: str) -> str:
    """``=1+1`` -> ``'=1+1``: shown as text by Excel, LibreOffice and Numbers, never evaluated."""
    return "'" + value if value.startswith(DANGEROUS_START) else value


def _scope(actor: Actor, user_or_none: User | None) -> User | None:
    """People and tokens export what they may see, nothing more; the system exports everything."""
    if actor.kind in {"user", "token"}:
        if actor.user is None or (user_or_none is not None and user_or_none.pk != actor.user.pk):
            raise PermissionDenied()
        user_or_none = actor.user
    if user_or_none is not None and not user_or_none.has_perm("fleet.export_terminals"):
        raise PermissionDenied()
    return user_or_none


def export_queryset(user: User | None, filters: TerminalFilters) -> QuerySet[Terminal]:
    """The terminals ``user`` may see (all of them for ``None``, the system) matching ``filters``."""
    return search_terminals(user, filters, sort="sn")


def iter_rows(user: User | None, filters: TerminalFilters, *, excel: bool = False) -> Iterator[list[Any]]:
    """One list of cells per terminal, in EXPORT_COLUMNS order, text already neutralised.

    Dates are ``date`` objects and times local ``datetime`` objects (naive for Excel, which has no
    time zones; ISO 8601 with offset in CSV). Streams with ``.iterator()``: memory stays flat.
    """
    rows = export_queryset(user, filters).values_list(*_VALUES).iterator(chunk_size=ITERATOR_CHUNK)
    for row in rows:
        cells: list[Any] = []
        for value in row:
            if value is None:
                cells.append(None if excel else "")
            elif isinstance(value, str):
                cells.append(neutralise(value))
            elif isinstance(value, datetime):
                local = timezone.localtime(value).replace(microsecond=0)
                cells.append(local.replace(tzinfo=None) if excel else local.isoformat())
            elif isinstance(value, date):
                cells.append(value if excel else value.isoformat())
            else:
                cells.append(value)
        yield cells


def _filters_dict(filters: TerminalFilters) -> dict[str, Any]:
    data = {}
    for key, value in asdict(filters).items():
        if value in ("", (), None):
            continue
        data[key] = (
            value.isoformat()
            if isinstance(value, date)
            else list(value)
            if isinstance(value, tuple)
            else value
        )
    return data


def _record(
    actor: Actor,
    export_id: str,
    fmt: str,
    filters: TerminalFilters,
    user: User | None,
    rows: int,
    outcome: str,
) -> None:
    with transaction.atomic():
        record(
            actor,
            Entry(
                event_type=EventType.TERMINALS_EXPORTED,
                subject_type="export",
                subject_id=export_id,
                outcome=outcome,
                after={
                    "format": fmt,
                    "rows": rows,
                    "filters": _filters_dict(filters),
                    "scope": user.get_username() if user is not None else "all",
                },
            ),
        )


def new_export_id() -> str:
    return f"EXP-{timezone.localtime(now()):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


def _total(user: User | None, filters: TerminalFilters, progress: Progress | None) -> int | None:
    return export_queryset(user, filters).count() if progress is not None else None


def stream_csv(
    *,
    actor: Actor,
    user_or_none: User | None,
    filters: TerminalFilters,
    progress: Progress | None = None,
) -> Iterator[bytes]:
    """CSV bytes (UTF-8 with BOM, so Excel shows Chinese correctly), for a StreamingHttpResponse.

    The export's audit event is written when the stream ends: ``success`` with the row count, or
    ``aborted`` (with the rows sent so far) when the client went away or an error stopped it.
    Scope and permission are checked before the first byte.
    """
    user = _scope(actor, user_or_none)
    return _csv_chunks(actor, user, filters, progress, [0])


def _csv_chunks(
    actor: Actor, user: User | None, filters: TerminalFilters, progress: Progress | None, count: list[int]
) -> Iterator[bytes]:
    """``count[0]`` holds the rows written so far (read by export_terminals at the end)."""
    export_id = new_export_id()
    total = _total(user, filters, progress)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    rows = 0
    outcome = "aborted"
    try:
        yield b"\xef\xbb\xbf" + buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        for cells in iter_rows(user, filters):
            writer.writerow(cells)
            rows += 1
            count[0] = rows
            if rows % FLUSH_ROWS == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
                if progress is not None and rows % (FLUSH_ROWS * 5) == 0:
                    progress(ProgressEvent("export", rows, total, rows / total if total else None))
        if buffer.tell():
            yield buffer.getvalue().encode()
        outcome = "success"
    finally:
        _record(actor, export_id, "csv", filters, user, rows, outcome)
    if progress is not None:
        progress(ProgressEvent("export", rows, total, 1.0))


def export_terminals(
    *,
    actor: Actor,
    user_or_none: User | None,
    filters: TerminalFilters,
    fmt: str,
    out: IO[bytes],
    progress: Progress | None = None,
) -> int:
    """Write the terminals ``user_or_none`` may see (everything for the system) to ``out`` as CSV or
    XLSX. Returns the number of rows. One audit event (terminals.exported) per export."""
    if fmt not in {"csv", "xlsx"}:
        raise ValidationFailed(f"Unknown export format {fmt!r}: use csv or xlsx.", field="format")
    user = _scope(actor, user_or_none)
    if fmt == "csv":
        count = [0]
        for part in _csv_chunks(actor, user, filters, progress, count):
            out.write(part)
        return count[0]
    return _write_xlsx(actor, user, filters, out, progress)


def _write_xlsx(
    actor: Actor, user: User | None, filters: TerminalFilters, out: IO[bytes], progress: Progress | None
) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    export_id = new_export_id()
    total = _total(user, filters, progress)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("terminals")
    sheet.append(list(EXPORT_COLUMNS))
    date_at = EXPORT_COLUMNS.index("service_expires_on")
    time_at = EXPORT_COLUMNS.index("status_changed_at")
    rows = 0
    outcome = "aborted"
    try:
        for cells in iter_rows(user, filters, excel=True):
            if cells[date_at] is not None:
                cell = WriteOnlyCell(sheet, value=cells[date_at])
                cell.number_format = "yyyy-mm-dd"
                cells[date_at] = cell
            if cells[time_at] is not None:
                cell = WriteOnlyCell(sheet, value=cells[time_at])
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
                cells[time_at] = cell
            sheet.append(cells)
            rows += 1
            if progress is not None and rows % (FLUSH_ROWS * 5) == 0:
                progress(ProgressEvent("export", rows, total, rows / total if total else None))
        workbook.save(out)
        outcome = "success"
    finally:
        _record(actor, export_id, "xlsx", filters, user, rows, outcome)
    if progress is not None:
        progress(ProgressEvent("export", rows, total, 1.0))
    return rows
