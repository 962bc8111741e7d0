"""What a data backup holds (closure/backup.py): its tables — the merchant's transactions, settlements,
contracts and audit trail — as ``ExportSpec``s of the platform's export, and how each is written: one read
of the rows, each row going to the CSV and to the Parquet file at the same moment, so the two files hold
the same rows even while new ones arrive, and memory stays flat (``ITERATOR_CHUNK`` rows fetched at a
time, one Parquet row group per ``ROW_GROUP`` rows). The CSV is written as the platform's export writes it
(UTF-8 with a BOM, local ISO times, formula-looking text neutralised); Parquet keeps typed values."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from posfleet.audit.selectors import events_about, events_for
from posfleet.billing.merchant_records import merchant_contracts, merchant_settlements, merchant_transactions
from posfleet.billing.selectors import TRANSACTION_COLUMNS
from posfleet.closure.models import CaseTerminal, ClosureCase, DataBackup
from posfleet.fleet.selectors import terminals_of_merchant
from posfleet.platform.exports import (
    BOM,
    ITERATOR_CHUNK,
    PROGRESS_EVERY,
    ROW_GROUP,
    Column,
    ColumnType,
    ExportSpec,
    neutralise,
    parquet_schema,
)

# The audit subjects of a closure case (closure.services records its events under this type, with the
# case number as the subject id) and of a backup (closure.backup).
CASE_SUBJECT = "closure"
BACKUP_SUBJECT = "data_backup"


# -- what the bundle holds ----------------------------------------------------------------------------

_INT, _DATE, _TIME = ColumnType.INTEGER, ColumnType.DATE, ColumnType.DATETIME
_AMOUNTS = ((b"posfleet.amounts", b"integer fen (1/100 CNY)"),)

TRANSACTIONS = ExportSpec(
    name="transactions",
    id_prefix="BKT",
    formats=("csv", "parquet"),
    columns=TRANSACTION_COLUMNS,
    parquet_metadata=_AMOUNTS,
)

SETTLEMENTS = ExportSpec(
    name="settlements",
    id_prefix="BKS",
    formats=("csv", "parquet"),
    columns=(
        Column("id", "id", _INT, required=True),
        Column("business_date", "business_date", _DATE, required=True),
        Column("paid_on", "paid_on", _DATE, required=True),
        Column("txn_count", "txn_count", _INT, required=True),
        Column("gross_fen", "gross_fen", _INT, required=True),
        Column("refunds_fen", "refunds_fen", _INT, required=True),
        Column("fees_fen", "fees_fen", _INT, required=True),
        Column("deductions_fen", "service_fees_fen", _INT, required=True),
        Column("paid_fen", "payout_fen", _INT, required=True),
        Column("currency", constant="CNY", required=True),
        Column("journal", "journal__reference"),
    ),
    parquet_metadata=_AMOUNTS,
)

CONTRACTS = ExportSpec(
    name="contracts",
    id_prefix="BKC",
    formats=("csv", "parquet"),
    columns=(
        Column("id", "id", _INT, required=True),
        Column("terminal_sn", "terminal__sn", required=True),
        Column("plan", "plan__code", required=True),
        Column("status", "status", required=True),
        Column("starts_on", "starts_on", _DATE, required=True),
        Column("term_months", "term_months", _INT, required=True),
        Column("annual_fee_fen", "annual_fee_fen", _INT, required=True),
        Column("deposit_fen", "deposit_fen", _INT, required=True),
        Column("min_term_months", "min_term_months", _INT, required=True),
        Column("penalty_rule", "penalty_rule", required=True),
        Column("penalty_fixed_fen", "penalty_fixed_fen", _INT, required=True),
        Column("penalty_monthly_fen", "penalty_monthly_fen", _INT, required=True),
        Column("penalty_cap_fen", "penalty_cap_fen", _INT),
        Column("recovery_fee_fen", "recovery_fee_fen", _INT, required=True),
        Column("recovery_value_fen", "recovery_value_fen", _INT, required=True),
        Column("damage_prices_fen", "damage_prices", required=True),  # JSON: kind -> fen
        Column("accepted_at", "accepted_at", _TIME),
        Column("ended_on", "ended_on", _DATE),
        Column("currency", constant="CNY", required=True),
    ),
    parquet_metadata=_AMOUNTS,
)

AUDIT = ExportSpec(
    name="audit",
    id_prefix="BKA",
    formats=("csv", "parquet"),
    columns=(
        Column("seq", "seq", _INT, required=True),
        Column("occurred_at", "occurred_at", _TIME, required=True, fractions=True),
        Column("event_type", "event_type", required=True),
        Column("actor_kind", "actor_kind", required=True),
        Column("actor", "actor_label", required=True),
        Column("subject_type", "subject_type", required=True),
        Column("subject_id", "subject_id", required=True),
        Column("reason", "reason", required=True),
        Column("note", "note", required=True),
        Column("outcome", "outcome", required=True),
        Column("before", "before", required=True),  # JSON
        Column("after", "after", required=True),  # JSON
        Column("hash", "hash", required=True),  # its link in the chain (`posfleet audit verify`)
    ),
)


@dataclass(frozen=True)
class Table:
    spec: ExportSpec
    rows: Callable[[Any], QuerySet[Any]]  # the merchant -> its rows, in file order (lazy)


def audit_trail(merchant: Any) -> QuerySet[Any]:
    """The audit events of the merchant, of its terminals while they were its own (an event names the
    merchant before or after it: what happened to a terminal with another merchant is not ours to
    hand out), of its closure cases and of its earlier backups, in chain order."""
    terminals = events_about("terminal", sorted(_terminals_ever_of(merchant.pk))).filter(
        Q(after__merchant=merchant.mid) | Q(before__merchant=merchant.mid)
    )
    cases = ClosureCase.objects.filter(merchant_id=merchant.pk).values_list("number", flat=True)
    backups = DataBackup.objects.filter(merchant_id=merchant.pk).values_list("pk", flat=True)
    trail = (
        events_for("merchant", merchant.mid)
        | terminals
        | events_about(CASE_SUBJECT, list(cases))
        | events_about(BACKUP_SUBJECT, [str(pk) for pk in backups])
    )
    return trail.order_by("seq")


def _terminals_ever_of(merchant_id: int) -> set[str]:
    """The SNs of every terminal that was the merchant's: bound to it now, under one of its contracts,
    in one of its closure cases, or that sold for it. The audit trail is read by these subjects (its
    index), not by scanning every terminal event for the merchant's MID — a scan that grew with the
    whole fleet's history and made each closure's backup slower than the one before."""
    sns = {sn for _pk, sn, _status, _reason in terminals_of_merchant(merchant_id)}
    sns.update(merchant_contracts(merchant_id).values_list("terminal__sn", flat=True))
    sns.update(
        CaseTerminal.objects.filter(case__merchant_id=merchant_id).values_list("terminal__sn", flat=True)
    )
    sns.update(
        merchant_transactions(merchant_id).order_by().values_list("terminal__sn", flat=True).distinct()
    )
    return sns


TABLES: tuple[Table, ...] = (
    Table(TRANSACTIONS, lambda m: merchant_transactions(m.pk)),
    Table(SETTLEMENTS, lambda m: merchant_settlements(m.pk)),
    Table(CONTRACTS, lambda m: merchant_contracts(m.pk)),
    Table(AUDIT, audit_trail),
)


# -- progress -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupProgress:
    part: str  # the file being written ("transactions", "statements/2026-10.pdf", "manifest.json")
    done: int  # units done: a row, or a statement
    total: int


Progress = Callable[[BackupProgress], None]


class Tally:
    """Units done of the whole backup (a row, a statement), reported every ``PROGRESS_EVERY``."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done = 0
        self.total = total
        self.progress = progress

    def step(self, part: str, units: int = 1, *, report: bool = False) -> None:
        self.done += units
        if self.progress is not None and (report or self.done % PROGRESS_EVERY == 0):
            self.progress(BackupProgress(part, self.done, max(self.total, self.done)))


# -- one table, one pass, two files -------------------------------------------------------------------


@dataclass(frozen=True)
class Staged:
    name: str  # its name in the bundle
    rows: int
    path: Path


def stage_table(spec: ExportSpec, queryset: QuerySet[Any], work: Path, tally: Tally) -> list[Staged]:
    """Write ``<name>.csv`` and ``<name>.parquet`` from one read of the rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv_path, parquet_path = work / f"{spec.name}.csv", work / f"{spec.name}.parquet"
    schema = parquet_schema(spec)
    columns: list[list[Any]] = [[] for _ in spec.columns]
    rows = 0

    def flush(writer: Any) -> None:
        arrays = [pa.array(values, type=schema.field(i).type) for i, values in enumerate(columns)]
        writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema), row_group_size=ROW_GROUP)
        for values in columns:
            values.clear()

    with (
        csv_path.open("w", encoding="utf-8", newline="") as text,
        pq.ParquetWriter(str(parquet_path), schema, compression="zstd") as writer,
    ):
        text.write(BOM.decode())
        out = csv.writer(text, lineterminator="\r\n")
        out.writerow(spec.header)
        for row in _rows(spec, queryset):
            out.writerow([_csv_cell(column, value) for column, value in row])
            for i, (_column, value) in enumerate(row):
                columns[i].append(value.astimezone(UTC) if isinstance(value, datetime) else value)
            rows += 1
            tally.step(spec.name)
            if len(columns[0]) == ROW_GROUP:
                flush(writer)
        if columns[0] or rows == 0:
            flush(writer)
    tally.step(spec.name, 0, report=True)
    return [
        Staged(csv_path.name, rows, csv_path),
        Staged(parquet_path.name, rows, parquet_path),
    ]


def _rows(spec: ExportSpec, queryset: QuerySet[Any]) -> Iterator[list[tuple[Column, Any]]]:
    """Each row as (column, value) pairs in file order: constants filled in, JSON values as text."""
    for values in queryset.values_list(*spec.sources).iterator(chunk_size=ITERATOR_CHUNK):
        given = iter(values)
        row = []
        for column in spec.columns:
            value = next(given) if column.source else column.constant
            if isinstance(value, dict | list):
                value = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            row.append((column, value))
        yield row


def _csv_cell(column: Column, value: Any) -> Any:
    """As the platform's CSV export writes a cell (platform/exports.py): local ISO times with their
    offset, ISO dates, formula-looking text neutralised."""
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
