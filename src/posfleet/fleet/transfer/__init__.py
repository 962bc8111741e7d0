"""Bulk import and export of terminals (CSV and Excel), for the CLI and the web console.

Import: ``validate_file`` (dry run) and ``import_terminals`` (validate, then write all or nothing,
through ``fleet.services.terminals_register_batch``). Export: ``export_terminals`` to a file, or
``stream_csv`` for a ``StreamingHttpResponse``; both audited once per export, written by the shared
export of ``platform/exports.py``. See docs/adr/0006-terminal-import.md for why this is hand-written
streaming code.
"""

from posfleet.fleet.transfer.columns import EXPORT_COLUMNS, IMPORT_COLUMNS
from posfleet.fleet.transfer.exporting import (
    CSV_CONTENT_TYPE,
    TERMINAL_EXPORT,
    XLSX_CONTENT_TYPE,
    export_queryset,
    export_terminals,
    neutralise,
    stream_csv,
)
from posfleet.fleet.transfer.importing import import_terminals, require_import_permission, validate_file
from posfleet.fleet.transfer.report import FileError, ImportReport, ProgressEvent, RowError

__all__ = [
    "CSV_CONTENT_TYPE",
    "EXPORT_COLUMNS",
    "IMPORT_COLUMNS",
    "TERMINAL_EXPORT",
    "XLSX_CONTENT_TYPE",
    "FileError",
    "ImportReport",
    "ProgressEvent",
    "RowError",
    "export_queryset",
    "export_terminals",
    "import_terminals",
    "neutralise",
    "require_import_permission",
    "stream_csv",
    "validate_file",
]
