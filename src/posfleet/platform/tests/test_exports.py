"""The shared export (platform/exports.py): formula cells neutralised, exactly one audit row per export
whatever happens (success, the reader going away, an error), rows read lazily so memory stays flat,
and each format writing what its columns say."""

from __future__ import annotations

import csv
import io
import itertools
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, date, datetime

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import time_machine
from django.db import transaction
from django.utils import translation

from posfleet.audit.models import AuditEvent
from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.platform import exports
from posfleet.platform.context import Actor
from posfleet.platform.errors import ValidationFailed
from posfleet.platform.exports import Column, ColumnType, ExportProgress, ExportRecord, ExportSpec

SPEC = ExportSpec(
    name="things",
    id_prefix="THX",
    formats=("csv", "xlsx", "parquet"),
    columns=(
        Column("id", "id", ColumnType.INTEGER, required=True),
        Column("name", "name"),
        Column("currency", constant="CNY", required=True),
        Column("due_on", "due_on", ColumnType.DATE),
        Column("at", "at", ColumnType.DATETIME),
    ),
    parquet_metadata=((b"posfleet.test", b"yes"),),
)
AT = datetime(2026, 10, 20, 2, 15, 30, 123456, tzinfo=UTC)  # 10:15:30.123456 in Shanghai


def row(n: int, name: str = "plain") -> tuple:
    return (n, name, date(2027, 1, 31), AT)


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(exports.BOM)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


class Recorded(list):
    """A recorder that keeps what it was asked to write."""

    def __call__(self, export: ExportRecord) -> None:
        self.append(export)


@dataclass(frozen=True)
class Filters:
    q: str = ""
    statuses: tuple[str, ...] = ()
    since: date | None = None
    limit: int | None = None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("1.2.3", "1.2.3"),
        ("a=b", "a=b"),
        (" =1", " =1"),
        ("", ""),
    ],
)
def test_neutralise(value, expected):
    assert exports.neutralise(value) == expected


EVIL = ('=HYPERLINK("http://x.test","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1")


def test_csv_neutralises_formula_cells_and_writes_types_as_text():
    recorded = Recorded()
    rows = [row(n, name) for n, name in enumerate(EVIL, start=1)] + [(9, None, None, None)]
    data = b"".join(exports.stream(SPEC, "csv", rows, record=recorded))
    header, *body = csv_rows(data)
    assert header == ["id", "name", "currency", "due_on", "at"]
    assert [r[1] for r in body] == ["'" + evil for evil in EVIL] + [""]
    assert body[0] == [
        "1",
        '\'=HYPERLINK("http://x.test","x")',
        "CNY",
        "2027-01-31",
        "2026-10-20T10:15:30+08:00",
    ]
    assert body[-1] == ["9", "", "CNY", "", ""]
    assert [(r.format, r.rows, r.outcome) for r in recorded] == [("csv", 7, "success")]


def test_csv_times_keep_fractions_only_when_the_column_says_so():
    precise = ExportSpec("t", "T", (Column("at", "at", ColumnType.DATETIME, fractions=True),), ("csv",))
    data = b"".join(exports.stream(precise, "csv", [(AT,)], record=Recorded()))
    assert csv_rows(data)[1] == ["2026-10-20T10:15:30.123456+08:00"]


def test_excel_neutralises_and_keeps_dates_and_local_times_as_cells():
    out = io.BytesIO()
    assert exports.write(SPEC, "xlsx", [row(1, "=1+2"), (2, None, None, None)], out, record=Recorded()) == 2
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue())).worksheets[0]
    assert sheet.title == "things"
    header, first, second = sheet.iter_rows(values_only=True)
    assert header == ("id", "name", "currency", "due_on", "at")
    assert first == (1, "'=1+2", "CNY", datetime(2027, 1, 31), datetime(2026, 10, 20, 10, 15, 30))
    assert second == (2, None, "CNY", None, None)
    assert sheet["D2"].number_format == "yyyy-mm-dd"
    assert sheet["E2"].number_format == "yyyy-mm-dd hh:mm:ss"


def test_excel_streams_too():
    streamed = b"".join(exports.stream(SPEC, "xlsx", [row(1)], record=Recorded()))
    sheet = openpyxl.load_workbook(io.BytesIO(streamed), read_only=True).worksheets[0]
    assert len(list(sheet.iter_rows(values_only=True))) == 2


def test_parquet_has_the_specs_schema_and_exact_values():
    recorded = Recorded()
    data = b"".join(exports.stream(SPEC, "parquet", [row(1, "=1+2"), (2, None, None, None)], record=recorded))
    table = pq.read_table(io.BytesIO(data))
    assert table.schema.equals(exports.parquet_schema(SPEC), check_metadata=True)
    assert [(f.name, f.type, f.nullable) for f in table.schema] == [
        ("id", pa.int64(), False),
        ("name", pa.string(), True),
        ("currency", pa.string(), False),
        ("due_on", pa.date32(), True),
        ("at", pa.timestamp("us", tz="UTC"), True),
    ]
    assert table.schema.metadata == {b"posfleet.test": b"yes"}
    assert table.to_pylist() == [
        # typed data, not a spreadsheet: the text is kept as it was
        {"id": 1, "name": "=1+2", "currency": "CNY", "due_on": date(2027, 1, 31), "at": AT},
        {"id": 2, "name": None, "currency": "CNY", "due_on": None, "at": None},
    ]
    assert [(r.format, r.rows, r.outcome) for r in recorded] == [("parquet", 2, "success")]


def test_a_format_the_spec_does_not_offer_is_refused_before_anything_is_read_or_recorded():
    narrow = ExportSpec("t", "T", SPEC.columns, ("csv",))
    recorded = Recorded()
    pulled = []

    def rows():
        pulled.append(1)
        yield row(1)

    with translation.override("en"), pytest.raises(ValidationFailed) as refused:
        exports.stream(narrow, "xlsx", rows(), record=recorded)
    assert str(refused.value.detail) == "Unknown export format 'xlsx': use csv."
    assert refused.value.params == {"field": "format"}
    with pytest.raises(ValidationFailed):
        exports.write(narrow, "parquet", rows(), io.BytesIO(), record=recorded)
    assert (recorded, pulled) == ([], [])


class Source:
    """Rows made one at a time; ``pulled`` counts how many the export has asked for."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n = n
        self.fail_at = fail_at
        self.pulled = 0

    def __iter__(self):
        for i in range(1, self.n + 1):
            if i == self.fail_at:
                raise RuntimeError("the database went away")
            self.pulled += 1
            yield (i, f"name {i}", date(2027, 1, 31), AT)


@pytest.mark.parametrize(
    ("fmt", "piece", "read"),
    [
        ("csv", "FLUSH_ROWS", 20),  # the header, then two pieces of 10 rows
        ("parquet", "ROW_GROUP", 30),  # three row groups of 10 rows
    ],
)
def test_rows_are_read_lazily_a_piece_at_a_time(monkeypatch, fmt, piece, read):
    monkeypatch.setattr(exports, piece, 10)
    source = Source(1000)
    stream = exports.stream(SPEC, fmt, source, record=Recorded())
    assert source.pulled == 0  # nothing is read before the first piece is asked for
    assert len(list(itertools.islice(stream, 3))) == 3
    assert source.pulled == read  # only the rows of the pieces taken so far
    stream.close()


def test_memory_stays_flat_however_many_rows():
    rows = ((i, "x" * 100, date(2027, 1, 31), AT) for i in range(50_000))  # ~7 MB of CSV
    tracemalloc.start()
    try:
        size = sum(len(piece) for piece in exports.stream(SPEC, "csv", rows, record=Recorded()))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 6_000_000
    assert peak < 1_500_000


def test_one_record_when_the_reader_goes_away():
    recorded = Recorded()
    stream = exports.stream(SPEC, "csv", Source(5000), record=recorded, scope="agent_a")
    next(stream)  # the header went out
    next(stream)  # and the first FLUSH_ROWS rows
    stream.close()  # then the client went away
    assert [(r.outcome, r.rows, r.scope) for r in recorded] == [("aborted", exports.FLUSH_ROWS, "agent_a")]


def test_one_record_when_an_error_stops_the_export():
    recorded = Recorded()
    with pytest.raises(RuntimeError):
        exports.write(SPEC, "parquet", Source(100, fail_at=42), io.BytesIO(), record=recorded)
    assert [(r.format, r.outcome, r.rows) for r in recorded] == [("parquet", "aborted", 41)]


def test_filters_are_recorded_without_empty_values():
    recorded = Recorded()
    filters = Filters(q="", statuses=("active", "suspended"), since=date(2026, 10, 1), limit=None)
    exports.write(SPEC, "csv", [row(1)], io.BytesIO(), record=recorded, filters=filters, scope="all")
    (export,) = recorded
    assert export.after() == {
        "format": "csv",
        "rows": 1,
        "filters": {"statuses": ["active", "suspended"], "since": "2026-10-01"},
        "scope": "all",
    }
    assert exports.filters_record({"q": "x", "merchant": ""}) == {"q": "x"}
    assert exports.filters_record(None) == {}


def test_progress_every_few_thousand_rows_and_at_the_end(monkeypatch):
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 40)
    seen: list[ExportProgress] = []
    exports.write(
        SPEC, "csv", Source(100), io.BytesIO(), record=Recorded(), count=lambda: 100, progress=seen.append
    )
    assert seen == [
        ExportProgress(40, 100, 0.4),
        ExportProgress(80, 100, 0.8),
        ExportProgress(100, 100, 1.0),
    ]
    counted: list[int] = []

    def count() -> int:
        counted.append(3)
        return 3

    exports.write(SPEC, "csv", Source(3), io.BytesIO(), record=Recorded(), count=count)
    assert counted == []  # no progress asked for: the rows are not counted


def test_names_of_the_export_and_its_file():
    with time_machine.travel(AT, tick=False):
        assert SPEC.filename("parquet") == "things-20261020-101530.parquet"
        export_id = SPEC.new_export_id()
    assert export_id.startswith("THX-20261020101530-")
    assert len(export_id) == len("THX-20261020101530-") + 6
    assert SPEC.filename("csv", at=datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == "things-20270101-000000.csv"


@pytest.mark.django_db
def test_one_audit_row_per_export_says_who_what_which_filters_and_how_many():
    """The recorder a context passes (here: as fleet and billing do) leaves exactly one audit event."""
    actor = Actor.system("cli:test")

    def recorder(export: ExportRecord) -> None:
        with transaction.atomic():
            record(
                actor,
                Entry(
                    event_type=EventType.TERMINALS_EXPORTED,
                    subject_type="export",
                    subject_id=export.export_id,
                    outcome=export.outcome,
                    after=export.after(),
                ),
            )

    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    chunks = exports.stream(
        SPEC, "csv", Source(3), record=recorder, filters=Filters(q="abc"), scope="agent_a"
    )
    assert not AuditEvent.objects.filter(seq__gt=last).exists()  # nothing recorded before it runs
    b"".join(chunks)
    new = list(AuditEvent.objects.filter(seq__gt=last))
    assert [(e.event_type, e.actor_label, e.subject_type, e.outcome) for e in new] == [
        (EventType.TERMINALS_EXPORTED, "cli:test", "export", "success")
    ]
    assert new[0].subject_id.startswith("THX-")
    assert new[0].after == {"format": "csv", "rows": 3, "filters": {"q": "abc"}, "scope": "agent_a"}
