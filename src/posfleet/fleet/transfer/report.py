"""What an import found and did: per-row errors (capped), counts per kind, what was written."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_ERRORS = 1000


@dataclass(frozen=True)
class RowError:
    """One problem in one cell (or row) of the file. ``line`` counts the header as line 1."""

    line: int
    sn: str
    column: str
    code: str
    message: str


@dataclass(frozen=True)
class FileError:
    """A problem with the file as a whole (encoding, format, header): no row can be imported."""

    code: str
    message: str
    line: int | None = None


@dataclass(frozen=True)
class ProgressEvent:
    """Reported every chunk. ``total`` is known for the write pass and for Excel files; ``fraction``
    (0..1) whenever the share of work done is known (bytes read for CSV)."""

    phase: str  # "validate" | "write" | "export"
    done: int
    total: int | None = None
    fraction: float | None = None


@dataclass
class ImportReport:
    source: str
    fmt: str = ""
    encoding: str = ""
    columns: list[str] = field(default_factory=list)  # canonical names, in file order
    ignored_columns: list[str] = field(default_factory=list)  # read-only columns of an export
    rows: int = 0  # data rows (blank rows not counted)
    blank_rows: int = 0
    invalid_rows: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first ``max_errors``, by line
    error_counts: Counter[str] = field(default_factory=Counter)  # every error, by code
    file_errors: list[FileError] = field(default_factory=list)
    max_errors: int = DEFAULT_MAX_ERRORS
    dry_run: bool = True
    committed: bool = False
    written: int = 0
    skipped: int = 0
    batch: str = ""
    chunks: int = 0

    @property
    def valid_rows(self) -> int:
        return self.rows - self.invalid_rows

    @property
    def ok(self) -> bool:
        """The whole file is importable: no file error, at least one row, no invalid row."""
        return not self.file_errors and self.rows > 0 and self.invalid_rows == 0

    @property
    def errors_truncated(self) -> bool:
        return self.error_counts.total() > len(self.errors)

    def add(self, line: int, sn: str, column: str, code: str, message: str) -> None:
        self.error_counts[code] += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(RowError(line, sn[:40], column, code, message))

    def fail(self, code: str, message: str, line: int | None = None) -> None:
        self.file_errors.append(FileError(code, message, line))

    def sort(self) -> None:
        self.errors.sort(key=lambda e: (e.line, e.column, e.code))

    def as_dict(self) -> dict[str, Any]:
        """JSON-native form, for the console and the API."""
        return {
            "source": self.source,
            "format": self.fmt,
            "encoding": self.encoding,
            "columns": self.columns,
            "ignored_columns": self.ignored_columns,
            "rows": self.rows,
            "valid_rows": self.valid_rows,
            "invalid_rows": self.invalid_rows,
            "blank_rows": self.blank_rows,
            "ok": self.ok,
            "dry_run": self.dry_run,
            "committed": self.committed,
            "written": self.written,
            "skipped": self.skipped,
            "batch": self.batch,
            "chunks": self.chunks,
            "file_errors": [vars(e) for e in self.file_errors],
            "errors": [vars(e) for e in self.errors],
            "error_counts": dict(self.error_counts),
            "errors_truncated": self.errors_truncated,
        }
