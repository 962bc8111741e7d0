"""One audited, streaming export for every context (terminals, transactions, …).

A context describes its file once, as an ``ExportSpec`` (the columns in file order, their types, the
formats it offers), and hands ``stream`` (for a ``StreamingHttpResponse``) or ``write`` (to a file)
the rows, lazily (``rows_of(queryset, spec)``), what was asked (the filters and whose scope) and a
recorder that writes the audit row. This module then, the same way for every export:

- keeps memory flat however many rows there are: the rows are pulled one at a time from a lazy
  iterator; CSV goes out every ``FLUSH_ROWS`` rows, Parquet one row group of ``ROW_GROUP`` rows at a
  time, Excel through openpyxl's write-only workbook (rows spill to a temporary file, never a list);
- neutralises text a spreadsheet would run as a formula (``= + - @``, tab, carriage return) in CSV and
  Excel with a leading single quote (OWASP "CSV injection"); Parquet is typed data and keeps the text;
- names the export (``EXP-20261020101500-a1b2c3``) and its file (``terminals-20261020-101500.csv``);
- reports progress every ``PROGRESS_EVERY`` rows and once at the end;
- calls the recorder exactly once, when the export ends: ``success`` with the row count, or
  ``aborted`` with the rows written so far when the reader went away or an error stopped it. A format
  the spec does not offer is refused before anything is read or recorded.

The platform is the bottom layer and never imports the audit chain: the caller passes the recorder,
``audit.services.export_recorder(actor, <its export's event type>)``, which writes the typed event.
"""

from __future__ import annotations

import csv
import io
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import IO, Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from posfleet.platform.clock import now
from posfleet.platform.errors import ValidationFailed

ITERATOR_CHUNK = 2000  # rows fetched from the database at a time
FLUSH_ROWS = 1000  # CSV rows per piece sent on
ROW_GROUP = 10_000  # Parquet rows per row group (and per piece sent on)
PROGRESS_EVERY = 5000  # rows between progress reports
COPY_CHUNK = 64 * 1024  # bytes per piece of an Excel file sent on
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
BOM = b"\xef\xbb\xbf"  # Excel then reads the CSV as UTF-8 (Chinese names stay readable)


def neutralise(value: str) -> str:
    """``=1+1`` -> ``'=1+1``: shown as text by Excel, LibreOffice and Numbers, never evaluated."""
    return "'" + value if value.startswith(DANGEROUS_START) else value


class ColumnType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DATE = "date"  # Excel: a date cell; Parquet: date32
    DATETIME = "datetime"  # CSV: local ISO 8601 with offset; Excel: local, naive; Parquet: UTC, µs


@dataclass(frozen=True)
class Column:
    name: str  # the header cell
    source: str = ""  # the field path read with ``values_list``; "" for a constant column
    type: ColumnType = ColumnType.TEXT
    constant: Any = None  # the value of every row when ``source`` is ""
    required: bool = False  # never empty: Parquet declares the field not nullable
    fractions: bool = False  # CSV times keep their fraction of a second (else whole seconds)


@dataclass(frozen=True)
class FileFormat:
    name: str
    content_type: str
    extension: str


CSV = FileFormat("csv", "text/csv; charset=utf-8", "csv")
XLSX = FileFormat("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")
PARQUET = FileFormat("parquet", "application/vnd.apache.parquet", "parquet")
FORMATS: dict[str, FileFormat] = {f.name: f for f in (CSV, XLSX, PARQUET)}


@dataclass(frozen=True)
class ExportSpec:
    """What one kind of export writes: ``name`` is the file name's stem and the Excel sheet's name,
    ``id_prefix`` starts every export id, ``formats`` are the ones offered."""

    name: str
    id_prefix: str
    columns: tuple[Column, ...]
    formats: tuple[str, ...]
    parquet_metadata: tuple[tuple[bytes, bytes], ...] = ()

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise ValueError(f"unknown export formats {unknown}")

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def sources(self) -> tuple[str, ...]:
        """What each row read from the database holds, in order (constant columns are not read)."""
        return tuple(c.source for c in self.columns if c.source)

    def file_format(self, fmt: str) -> FileFormat:
        if fmt not in self.formats:
            raise ValidationFailed(
                _("Unknown export format %(format)s: use %(formats)s.")
                % {"format": repr(fmt), "formats": ", ".join(self.formats)},
                field="format",
            )
        return FORMATS[fmt]

    def filename(self, fmt: str, at: datetime | None = None) -> str:
        """``terminals-20261020-101500.csv``: the provider's local time of ``at`` (default: now)."""
        return f"{self.name}-{timezone.localtime(at or now()):%Y%m%d-%H%M%S}.{FORMATS[fmt].extension}"

    def new_export_id(self) -> str:
        return f"{self.id_prefix}-{timezone.localtime(now()):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class ExportProgress:
    done: int
    total: int | None  # known when the caller counted the rows
    fraction: float | None  # 1.0 at the end


@dataclass(frozen=True)
class ExportRecord:
    """What the audit row of one export says: which export, in what format, how many rows, how it
    ended, the filters asked for (non-empty ones, JSON-native) and whose scope it was read in."""

    export_id: str
    export: str  # the spec's name
    format: str
    rows: int
    outcome: str  # "success" | "aborted"
    filters: dict[str, Any]
    scope: str

    def after(self) -> dict[str, Any]:
        """The audit event's ``after``."""
        return {"format": self.format, "rows": self.rows, "filters": self.filters, "scope": self.scope}


Recorder = Callable[[ExportRecord], None]
Progress = Callable[[ExportProgress], None]


def filters_record(filters: Any) -> dict[str, Any]:
    """A filters dataclass (or mapping) as the audit row keeps it: empty values left out, dates as
    ISO 8601, tuples as lists."""
    if filters is None:
        return {}
    items = asdict(filters) if is_dataclass(filters) and not isinstance(filters, type) else dict(filters)
    data: dict[str, Any] = {}
    for key, value in items.items():
        if value in ("", (), [], None):
            continue
        if isinstance(value, date):
            data[key] = value.isoformat()
        elif isinstance(value, tuple | list):
            data[key] = list(value)
        else:
            data[key] = value
    return data


def rows_of(queryset: QuerySet[Any], spec: ExportSpec) -> Iterator[tuple[Any, ...]]:
    """The rows of ``queryset`` as ``spec`` reads them, fetched ``ITERATOR_CHUNK`` at a time. Lazy: no
    query runs before the first row is asked for."""
    return queryset.values_list(*spec.sources).iterator(chunk_size=ITERATOR_CHUNK)


def stream(
    spec: ExportSpec,
    fmt: str,
    rows: Iterable[Sequence[Any]],
    *,
    record: Recorder,
    filters: Any = None,
    scope: str = "",
    count: Callable[[], int] | None = None,
    progress: Progress | None = None,
) -> Iterator[bytes]:
    """The export as pieces of bytes, for a ``StreamingHttpResponse``. The format is checked now,
    before the first byte; the rows are read and the audit row written as the pieces are taken.
    ``count`` (e.g. ``queryset.count``) is called only when ``progress`` is given."""
    file_format = spec.file_format(fmt)
    return _audited(spec, file_format, iter(rows), _Tally(), None, record, filters, scope, count, progress)


def write(
    spec: ExportSpec,
    fmt: str,
    rows: Iterable[Sequence[Any]],
    out: IO[bytes],
    *,
    record: Recorder,
    filters: Any = None,
    scope: str = "",
    count: Callable[[], int] | None = None,
    progress: Progress | None = None,
) -> int:
    """Write the export to ``out``; returns the number of rows. Audited like ``stream``."""
    file_format = spec.file_format(fmt)
    tally = _Tally()
    for piece in _audited(spec, file_format, iter(rows), tally, out, record, filters, scope, count, progress):
        out.write(piece)
    return tally.done


# -- the machinery ----------------------------------------------------------------------------------


class _Tally:
    done = 0


def _audited(
    spec: ExportSpec,
    file_format: FileFormat,
    rows: Iterator[Sequence[Any]],
    tally: _Tally,
    out: IO[bytes] | None,
    record: Recorder,
    filters: Any,
    scope: str,
    count: Callable[[], int] | None,
    progress: Progress | None,
) -> Iterator[bytes]:
    export_id = spec.new_export_id()
    total = count() if progress is not None and count is not None else None
    counted = _counted(rows, tally, total, progress)
    outcome = "aborted"
    try:
        if file_format is CSV:
            yield from _csv(spec, counted)
        elif file_format is XLSX:
            yield from _xlsx(spec, counted, out)
        else:
            yield from _parquet(spec, counted)
        outcome = "success"
    finally:
        record(
            ExportRecord(
                export_id=export_id,
                export=spec.name,
                format=file_format.name,
                rows=tally.done,
                outcome=outcome,
                filters=filters_record(filters),
                scope=scope,
            )
        )
    if progress is not None:
        progress(ExportProgress(tally.done, total, 1.0))


def _counted(
    rows: Iterator[Sequence[Any]], tally: _Tally, total: int | None, progress: Progress | None
) -> Iterator[Sequence[Any]]:
    for row in rows:
        tally.done += 1
        yield row
        if progress is not None and tally.done % PROGRESS_EVERY == 0:
            progress(ExportProgress(tally.done, total, tally.done / total if total else None))


def _cells(spec: ExportSpec, row: Sequence[Any]) -> Iterator[tuple[Column, Any]]:
    """Each column with its value: constant columns filled in, the others taken from ``row`` in order."""
    values = iter(row)
    for column in spec.columns:
        yield column, (next(values) if column.source else column.constant)


def _csv_cell(column: Column, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, datetime):
        local = timezone.localtime(value)
        return (local if column.fractions else local.replace(microsecond=0)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _take(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data


def _csv(spec: ExportSpec, rows: Iterator[Sequence[Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(spec.header)
    yield BOM + _take(buffer)
    flush_every = FLUSH_ROWS
    waiting = 0
    for row in rows:
        writer.writerow([_csv_cell(column, value) for column, value in _cells(spec, row)])
        waiting += 1
        if waiting == flush_every:
            waiting = 0
            yield _take(buffer)
    if buffer.tell():
        yield _take(buffer)


def _xlsx(spec: ExportSpec, rows: Iterator[Sequence[Any]], out: IO[bytes] | None) -> Iterator[bytes]:
    """Saved straight into ``out`` when there is one (nothing is yielded); otherwise into a temporary
    file that is then sent on in pieces."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(spec.name)
    sheet.append(list(spec.header))

    def cell(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return neutralise(value)
        if isinstance(value, datetime):  # Excel has no time zones: the provider's local time
            local = timezone.localtime(value).replace(microsecond=0, tzinfo=None)
            written = WriteOnlyCell(sheet, value=local)
            written.number_format = "yyyy-mm-dd hh:mm:ss"
            return written
        if isinstance(value, date):
            written = WriteOnlyCell(sheet, value=value)
            written.number_format = "yyyy-mm-dd"
            return written
        return value

    for row in rows:
        sheet.append([cell(value) for _column, value in _cells(spec, row)])
    if out is not None:
        workbook.save(out)
        return
    with tempfile.TemporaryFile() as spool:
        workbook.save(spool)
        spool.seek(0)
        while piece := spool.read(COPY_CHUNK):
            yield piece


class _Sink(io.RawIOBase):
    """A write-only file that keeps what was written until ``drain()``: the Parquet writer writes here,
    the export sends it on."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def parquet_schema(spec: ExportSpec) -> Any:
    """The explicit Arrow schema of ``spec``'s Parquet files (a ``pyarrow.Schema``)."""
    import pyarrow as pa

    types = {
        ColumnType.TEXT: pa.string(),
        ColumnType.INTEGER: pa.int64(),
        ColumnType.DATE: pa.date32(),
        ColumnType.DATETIME: pa.timestamp("us", tz="UTC"),
    }
    fields = [pa.field(c.name, types[c.type], nullable=not c.required) for c in spec.columns]
    return pa.schema(fields, metadata=dict(spec.parquet_metadata) or None)


def _parquet_cell(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _parquet(spec: ExportSpec, rows: Iterator[Sequence[Any]]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema(spec)
    row_group = ROW_GROUP
    sink = _Sink()
    columns: list[list[Any]] = [[] for _ in spec.columns]

    def flush(writer: Any) -> None:
        arrays = [pa.array(values, type=schema.field(i).type) for i, values in enumerate(columns)]
        writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema), row_group_size=row_group)
        for values in columns:
            values.clear()

    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression="zstd")
    try:
        for row in rows:
            for i, (_column, value) in enumerate(_cells(spec, row)):
                columns[i].append(_parquet_cell(value))
            if len(columns[0]) == row_group:
                flush(writer)
                yield sink.drain()
        if columns[0]:
            flush(writer)
    finally:
        writer.close()
    yield sink.drain()
