"""Exporting transactions as CSV or Parquet, streaming, in the reader's scope, audited once per export.

Memory stays flat however many rows there are: rows come from ``QuerySet.iterator(chunk_size=…)``;
CSV goes out every ``FLUSH_ROWS`` rows, Parquet one row group of ``ROW_GROUP`` rows at a time through
a sink that hands on what the writer wrote. CSV cells a spreadsheet would run as a formula
(``= + - @``, tab, carriage return) get a leading single quote (OWASP "CSV injection").

The audit event (``transactions.exported``) is written when the stream ends: ``success`` with the row
count, or ``aborted`` with the rows sent so far when the client went away or an error stopped it.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import Transaction
from posfleet.billing.selectors import TransactionSearch, find_transactions
from posfleet.iam.models import User
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import PermissionDenied, ValidationFailed

ITERATOR_CHUNK = 2000
FLUSH_ROWS = 1000
ROW_GROUP = 10_000
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
}

# (column, queryset value) in file order
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("occurred_at", "occurred_at"),
    ("txn_date", "txn_date"),
    ("merchant_mid", "merchant__mid"),
    ("terminal_sn", "terminal__sn"),
    ("tid", "tid"),
    ("batch_no", "batch_no"),
    ("trace_no", "trace_no"),
    ("kind", "kind"),
    ("status", "status"),
    ("method", "method"),
    ("entry_mode", "entry_mode"),
    ("amount_fen", "amount_fen"),
    ("fee_fen", "fee_fen"),
    ("currency", "currency"),
    ("card_masked", "card_masked"),
    ("response_code", "response_code"),
    ("original_id", "original_id"),
    ("settlement_batch_id", "settled_by"),
    ("external_id", "external_id"),
)
_VALUES = tuple(value for _name, value in COLUMNS if value != "currency")
HEADER = tuple(name for name, _value in COLUMNS)


def neutralise(value: str) -> str:
    """``=1+1`` -> ``'=1+1``: shown as text by Excel, LibreOffice and Numbers, never evaluated."""
    return "'" + value if value.startswith(DANGEROUS_START) else value


def new_export_id() -> str:
    return f"TXE-{timezone.localtime(now()):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


def _user_of(actor: Actor) -> User:
    """People and tokens export what they may see (every role sees money in its own scope, as
    billing.view_money says per merchant), nothing more."""
    if actor.user is None or actor.kind not in {"user", "token"} or not actor.user.is_active:
        raise PermissionDenied()
    return actor.user


def _rows(user: User, search: TransactionSearch) -> Iterator[tuple[Any, ...]]:
    qs: QuerySet[Transaction] = find_transactions(user, search, sort="time")
    yield from qs.values_list(*_VALUES).iterator(chunk_size=ITERATOR_CHUNK)


def _search_dict(search: TransactionSearch) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in asdict(search).items():
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
    actor: Actor, export_id: str, fmt: str, search: TransactionSearch, rows: int, outcome: str
) -> None:
    user = actor.user
    with transaction.atomic():
        record(
            actor,
            Entry(
                event_type=EventType.TRANSACTIONS_EXPORTED,
                subject_type="export",
                subject_id=export_id,
                outcome=outcome,
                after={
                    "format": fmt,
                    "rows": rows,
                    "filters": _search_dict(search),
                    "scope": user.get_username() if user is not None else "",
                },
            ),
        )


def filename(fmt: str) -> str:
    return f"transactions-{timezone.localtime(now()):%Y%m%d-%H%M%S}.{FORMATS[fmt][1]}"


def stream_transactions(*, actor: Actor, search: TransactionSearch, fmt: str) -> Iterator[bytes]:
    """The transactions the actor may see matching ``search``, as ``fmt`` (csv or parquet) bytes for a
    StreamingHttpResponse. Permission and format are checked before the first byte."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"Unknown export format {fmt!r}: use csv or parquet.", field="format")
    user = _user_of(actor)
    export_id = new_export_id()
    if fmt == "csv":
        return _csv(actor, user, search, export_id)
    return _parquet(actor, user, search, export_id)


def _csv_cells(row: tuple[Any, ...]) -> list[Any]:
    cells: list[Any] = []
    for value in row[:14]:
        cells.append(_csv_cell(value))
    cells.append("CNY")
    for value in row[14:]:
        cells.append(_csv_cell(value))
    return cells


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _csv(actor: Actor, user: User, search: TransactionSearch, export_id: str) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    rows = 0
    outcome = "aborted"
    try:
        writer.writerow(HEADER)
        yield b"\xef\xbb\xbf" + buffer.getvalue().encode()  # BOM: Excel then reads UTF-8
        buffer.seek(0)
        buffer.truncate()
        for row in _rows(user, search):
            writer.writerow(_csv_cells(row))
            rows += 1
            if rows % FLUSH_ROWS == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()
        outcome = "success"
    finally:
        _record(actor, export_id, "csv", search, rows, outcome)


class _Sink(io.RawIOBase):
    """A write-only file that keeps what was written until ``drain()``: the Parquet writer writes here,
    the response sends it on."""

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


def parquet_schema() -> Any:
    import pyarrow as pa

    text = pa.string()
    return pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("txn_date", pa.date32(), nullable=False),
            pa.field("merchant_mid", text, nullable=False),
            pa.field("terminal_sn", text, nullable=False),
            pa.field("tid", text, nullable=False),
            pa.field("batch_no", text, nullable=False),
            pa.field("trace_no", text, nullable=False),
            pa.field("kind", text, nullable=False),
            pa.field("status", text, nullable=False),
            pa.field("method", text, nullable=False),
            pa.field("entry_mode", text, nullable=False),
            pa.field("amount_fen", pa.int64(), nullable=False),
            pa.field("fee_fen", pa.int64(), nullable=False),
            pa.field("currency", text, nullable=False),
            pa.field("card_masked", text),
            pa.field("response_code", text),
            pa.field("original_id", pa.int64()),
            pa.field("settlement_batch_id", pa.int64()),
            pa.field("external_id", text),
        ],
        metadata={b"posfleet.amounts": b"integer fen (1/100 CNY)"},
    )


def _parquet(actor: Actor, user: User, search: TransactionSearch, export_id: str) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    sink = _Sink()
    rows = 0
    outcome = "aborted"
    columns: list[list[Any]] = [[] for _ in HEADER]

    def flush(writer: Any) -> None:
        arrays = [pa.array(values, type=schema.field(i).type) for i, values in enumerate(columns)]
        writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema), row_group_size=ROW_GROUP)
        for values in columns:
            values.clear()

    try:
        writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression="zstd")
        try:
            for row in _rows(user, search):
                for i, value in enumerate(_parquet_cells(row)):
                    columns[i].append(value)
                rows += 1
                if rows % ROW_GROUP == 0:
                    flush(writer)
                    yield sink.drain()
            if columns[0]:
                flush(writer)
        finally:
            writer.close()
        yield sink.drain()
        outcome = "success"
    finally:
        _record(actor, export_id, "parquet", search, rows, outcome)


def _parquet_cells(row: tuple[Any, ...]) -> list[Any]:
    occurred_at = row[1].astimezone(UTC)
    return [row[0], occurred_at, *row[2:14], "CNY", *row[14:]]
