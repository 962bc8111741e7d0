"""A report as a CSV or Excel file: the rows of the page, every column (codes beside their labels,
amounts in fen and in yuan), streamed by the shared export (``platform/exports.py``: formula cells
neutralised, one ``report.exported`` audit row when the file ends, with the report, its parameters and
whose figures they were)."""

from __future__ import annotations

from collections.abc import Iterator

from posfleet.audit.services import export_recorder
from posfleet.audit.vocabulary import EventType
from posfleet.platform import exports
from posfleet.platform.context import Actor
from posfleet.platform.exports import ColumnType, ExportSpec
from posfleet.reports.catalogue import Kind, Report, ReportResult

FORMATS = ("csv", "xlsx")
_TYPES = {Kind.COUNT: ColumnType.INTEGER, Kind.FEN: ColumnType.INTEGER, Kind.DATETIME: ColumnType.DATETIME}


def export_spec(report: Report) -> ExportSpec:
    return ExportSpec(
        name=f"report-{report.name}",
        id_prefix="RPE",
        formats=FORMATS,
        columns=tuple(
            exports.Column(c.key, c.key, _TYPES.get(c.kind, ColumnType.TEXT)) for c in report.columns
        ),
    )


def content_type(fmt: str) -> str:
    return exports.FORMATS[fmt].content_type


def filename(report: Report, fmt: str) -> str:
    return export_spec(report).filename(fmt)


def stream_report(*, actor: Actor, result: ReportResult, fmt: str) -> Iterator[bytes]:
    """``result``'s rows as ``fmt`` bytes for a StreamingHttpResponse; the format is checked before the
    first byte, the audit row written when the last one has gone."""
    spec = export_spec(result.report)
    spec.file_format(fmt)
    return exports.stream(
        spec,
        fmt,
        (result.report.values(row) for row in result.rows),
        record=export_recorder(actor, EventType.REPORT_EXPORTED),
        filters={"report": result.report.name, **result.params.record()},
        scope=result.viewer.label,
    )
