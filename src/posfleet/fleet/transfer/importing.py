"""Importing terminals from CSV or Excel: validate everything first, then write, all or nothing.

Memory stays flat in the file size:
- rows are streamed (csv module; openpyxl read-only), never loaded as a whole;
- duplicates inside the file are found with a temporary SQLite file as a disk-backed "seen" set
  (SN -> first line), checked one chunk at a time with one IN query;
- SNs already registered are found with one IN query per chunk against the terminal table;
- at most ``max_errors`` errors are kept in detail, every error is counted by kind.

Pass 1 reads the whole file and reports. Pass 2 (only with ``commit``) reads the file again and
registers the valid rows through ``fleet.services.terminals_register_batch``, one chunk at a time
(one audit event and one outbox message per chunk), all chunks inside ONE transaction: if anything
fails (a concurrent insert of the same SN, the file changed in between) nothing is written.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from django.db import IntegrityError, connection, transaction
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from posfleet.fleet.models import Terminal
from posfleet.fleet.selectors import terminal_models
from posfleet.fleet.services import NewTerminal, terminals_register_batch
from posfleet.fleet.transfer.columns import (
    IGNORED_ON_IMPORT,
    IMPORT_COLUMNS,
    REQUIRED_COLUMNS,
    canonical,
)
from posfleet.fleet.transfer.reading import (
    Cells,
    FileProblem,
    Source,
    csv_rows,
    detect_encoding,
    detect_format,
    source_name,
    xlsx_rows,
)
from posfleet.fleet.transfer.report import DEFAULT_MAX_ERRORS, ImportReport, ProgressEvent
from posfleet.fleet.transfer.validation import RowCheck, is_blank, row_checker
from posfleet.platform.clock import now
from posfleet.platform.context import Actor

DEFAULT_CHUNK = 5000
Progress = Callable[[ProgressEvent], None]


class _Abort(Exception):
    """Pass 2 found something pass 1 did not: roll back everything."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.line = code, message, line


def require_import_permission(actor: Actor) -> None:
    """Imports are for stock keepers (admin, warehouse) and the system. Checked before reading, since
    even a dry run tells which SNs exist already."""
    actor.require("fleet.import_terminals")


def _model_codes() -> dict[str, int]:
    """Terminal-model code (and "maker name") -> id, case-insensitive."""
    codes: dict[str, int] = {}
    for model in terminal_models():
        codes[f"{model.maker} {model.name}".casefold()] = model.pk
        codes[model.code.casefold()] = model.pk
    return codes


class _SeenSet:
    """A disk-backed set of the SNs read so far (with the line they were first seen on) and of the
    lines found invalid. Lives in a temporary SQLite file with a small page cache."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="posfleet-import-")
        self.db = sqlite3.connect(Path(self._dir.name) / "seen.sqlite3", isolation_level=None)
        self.db.executescript(
            """
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000;
            PRAGMA temp_store=FILE;
            CREATE TABLE seen (sn TEXT PRIMARY KEY, line INTEGER NOT NULL, dup INTEGER NOT NULL)
                WITHOUT ROWID;
            CREATE TABLE bad (line INTEGER PRIMARY KEY);
            BEGIN;
            """
        )
        self.max_params = min(self.db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), 30_000)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("COMMIT")
        self.db.close()
        self._dir.cleanup()

    def lookup(self, sns: Sequence[str]) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for i in range(0, len(sns), self.max_params):
            part = sns[i : i + self.max_params]
            marks = ",".join("?" * len(part))
            query = f"SELECT sn, line, dup FROM seen WHERE sn IN ({marks})"  # noqa: S608 (placeholders)
            for sn, line, dup in self.db.execute(query, part):
                found[sn] = [line, dup]
        return found

    def add(self, rows: Iterable[tuple[str, int]]) -> None:
        self.db.executemany("INSERT INTO seen (sn, line, dup) VALUES (?, ?, 0)", rows)

    def mark_duplicate(self, sn: str) -> None:
        self.db.execute("UPDATE seen SET dup = 1 WHERE sn = ?", (sn,))

    def mark_bad(self, line: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO bad (line) VALUES (?)", (line,))

    def bad_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM bad").fetchone()[0])

    def bad_lines(self) -> Iterator[int]:
        return (line for (line,) in self.db.execute("SELECT line FROM bad ORDER BY line"))


class _Import:
    def __init__(
        self,
        source: Source,
        fmt: str | None,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        max_errors: int = DEFAULT_MAX_ERRORS,
        progress: Progress | None = None,
    ) -> None:
        self.source = source
        self.requested_format = fmt
        self.chunk_size = max(1, chunk_size)
        self.progress = progress
        self.report = ImportReport(source=source_name(source), max_errors=max_errors)
        self.check: RowCheck | None = None
        self.header_line = 0
        self.sn_position = 0
        self.seen = _SeenSet()

    def close(self) -> None:
        self.seen.close()

    # -- reading ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _rows(self) -> Iterator[tuple[Iterator[tuple[int, Cells]], Callable[[int], ProgressEvent]]]:
        """The file's rows, and a function making a progress event after ``n`` data rows."""
        if self.report.fmt == "xlsx":
            with xlsx_rows(self.source) as (rows, total):
                data_total = total - 1 if total else None

                def xlsx_event(n: int) -> ProgressEvent:
                    fraction = min(n / data_total, 1.0) if data_total else None
                    return ProgressEvent("validate", n, data_total, fraction)

                yield rows, xlsx_event
        else:
            with csv_rows(self.source, self.report.encoding) as (rows, position):

                def csv_event(n: int) -> ProgressEvent:
                    return ProgressEvent("validate", n, None, position())

                yield rows, csv_event

    def _header(self, rows: Iterator[tuple[int, Cells]]) -> list[str | None] | None:
        report = self.report
        for line, cells in rows:
            if is_blank(cells):
                continue
            layout: list[str | None] = []
            seen: dict[str, int] = {}
            for position, raw in enumerate(cells, start=1):
                name = canonical(raw)
                text = "" if raw is None else str(raw).strip()
                if name is None:
                    if text:
                        report.fail(
                            "unknown_column",
                            _("Unknown column “%(name)s” (column %(position)d). The columns are: %(known)s.")
                            % {"name": text[:40], "position": position, "known": ", ".join(IMPORT_COLUMNS)},
                            line,
                        )
                    layout.append(None)
                    continue
                if name in seen:
                    report.fail(
                        "duplicate_column",
                        _("Column “%(name)s” appears twice (columns %(first)d and %(second)d).")
                        % {"name": name, "first": seen[name], "second": position},
                        line,
                    )
                seen[name] = position
                layout.append(name)
            for name in REQUIRED_COLUMNS:
                if name not in seen:
                    report.fail(
                        "missing_column",
                        _("The required column “%(name)s” is missing.") % {"name": name},
                        line,
                    )
            report.columns = [name for name in layout if name is not None]
            report.ignored_columns = [name for name in report.columns if name in IGNORED_ON_IMPORT]
            if report.file_errors:
                return None
            self.header_line = line
            self.sn_position = layout.index("sn")
            # Ignored columns are not read at all.
            return [name if name not in IGNORED_ON_IMPORT else None for name in layout]
        report.fail("empty_file", _("The file is empty: it needs a header row and at least one terminal."))
        return None

    # -- pass 1 ----------------------------------------------------------------------------------

    def validate(self) -> ImportReport:
        report = self.report
        try:
            report.fmt = detect_format(self.source, self.requested_format)
            if report.fmt == "csv":
                report.encoding = detect_encoding(self.source)
            with self._rows() as (rows, event):
                layout = self._header(rows)
                if layout is None:
                    return report
                self.check = row_checker(layout, _model_codes())
                self._validate_rows(rows, event)
        except FileProblem as problem:
            report.fail(problem.code, problem.message, problem.line)
            return report
        if report.rows == 0 and not report.file_errors:
            report.fail("no_rows", _("The file has a header but no terminals."))
        report.invalid_rows = self.seen.bad_count()
        report.sort()
        return report

    def _validate_rows(
        self, rows: Iterator[tuple[int, Cells]], event: Callable[[int], ProgressEvent]
    ) -> None:
        report, check, seen = self.report, self.check, self.seen
        assert check is not None
        pending: list[tuple[int, str]] = []
        for line, cells in rows:
            if is_blank(cells):
                report.blank_rows += 1
                continue
            report.rows += 1
            sn, _values, problems = check(cells)
            if problems:
                seen.mark_bad(line)
                label = sn or _cell_text(cells, self.sn_position)
                for column, code, message in problems:
                    report.add(line, label, column, code, message)
            if sn is not None:
                pending.append((line, sn))
                if len(pending) >= self.chunk_size:
                    self._check_chunk(pending)
                    pending = []
            if self.progress is not None and report.rows % self.chunk_size == 0:
                self.progress(event(report.rows))
        if pending:
            self._check_chunk(pending)
        if self.progress is not None:
            self.progress(ProgressEvent("validate", report.rows, report.rows, 1.0))

    def _check_chunk(self, pending: list[tuple[int, str]]) -> None:
        """Duplicates of earlier rows (in this chunk or before) and SNs registered already."""
        report, seen = self.report, self.seen
        first: dict[str, int] = {}  # SN -> its first line in this chunk
        keep_first = first.setdefault
        repeats = [(line, sn) for line, sn in pending if keep_first(sn, line) != line]
        chunk_sns = list(first)
        earlier = seen.lookup(chunk_sns)  # SN -> [first line, already reported] from earlier chunks
        for sn in earlier:
            repeats.append((first.pop(sn), sn))
        seen.add(first.items())
        if repeats:
            repeats.sort()
            for line, sn in repeats:
                origin = earlier.get(sn)
                if origin is None:
                    origin = earlier[sn] = [first[sn], 0]
                first_line = origin[0]
                message = _("Duplicate SN: it is on line %(line)d too.")
                report.add(line, sn, "sn", "duplicate_in_file", message % {"line": first_line})
                seen.mark_bad(line)
                if not origin[1]:
                    report.add(first_line, sn, "sn", "duplicate_in_file", message % {"line": line})
                    seen.mark_bad(first_line)
                    origin[1] = 1
                    seen.mark_duplicate(sn)
        registered = _registered(chunk_sns)
        if registered:
            for line, sn in pending:
                if sn in registered:
                    report.add(
                        line,
                        sn,
                        "sn",
                        "sn_exists",
                        _("A terminal with SN %(sn)s is registered already.") % {"sn": sn},
                    )
                    seen.mark_bad(line)

    # -- pass 2 ----------------------------------------------------------------------------------

    def write(self, actor: Actor) -> None:
        report = self.report
        expected = report.valid_rows
        report.batch = f"IMP-{localtime(now()):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
        written = chunks = 0
        try:
            with transaction.atomic(), self._rows() as (rows, _event):
                for line, _cells in rows:  # the header, checked in pass 1
                    if line >= self.header_line:
                        break
                bad = self.seen.bad_lines()
                next_bad = next(bad, None)
                chunk: list[NewTerminal] = []
                for line, cells in rows:
                    if is_blank(cells):
                        continue
                    while next_bad is not None and next_bad < line:
                        next_bad = next(bad, None)
                    if next_bad == line:
                        continue
                    chunk.append(self._terminal(line, cells))
                    if len(chunk) >= self.chunk_size:
                        written += terminals_register_batch(actor=actor, batch=report.batch, terminals=chunk)
                        chunks += 1
                        chunk = []
                        self._write_progress(written, expected)
                if chunk:
                    written += terminals_register_batch(actor=actor, batch=report.batch, terminals=chunk)
                    chunks += 1
                if written != expected:
                    raise _Abort(
                        "file_changed",
                        _("The file changed while it was being imported (%(now)d rows instead of %(then)d).")
                        % {"now": written, "then": expected},
                    )
        except _Abort as abort:
            report.fail(abort.code, abort.message + " " + _("Nothing was written."), abort.line)
            report.batch = ""
            return
        except FileProblem as problem:
            report.fail(problem.code, problem.message + " " + _("Nothing was written."), problem.line)
            report.batch = ""
            return
        except IntegrityError:
            report.fail(
                "conflict",
                _(
                    "Some of these SNs were registered by someone else while the file was being imported. "
                    "Nothing was written; run the import again to see which."
                ),
            )
            report.batch = ""
            return
        report.committed = True
        report.written = written
        report.chunks = chunks
        report.skipped = report.invalid_rows
        self._write_progress(written, expected)

    def _terminal(self, line: int, cells: Cells) -> NewTerminal:
        assert self.check is not None
        _sn, values, _problems = self.check(cells)
        if values is None:
            raise _Abort(
                "file_changed",
                _("The file changed while it was being imported (line %(line)d).") % {"line": line},
            )
        sn, model_id, iccid, expires, firmware = values
        return NewTerminal(
            sn=sn, model_id=model_id, sim_iccid=iccid, service_expires_on=expires, firmware_version=firmware
        )

    def _write_progress(self, written: int, expected: int) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent("write", written, expected, written / expected if expected else 1.0))


def _registered(sns: list[str]) -> set[str]:
    """The SNs among ``sns`` that are registered already: one indexed IN query (plain SQL: the ORM's
    per-value lookup preparation cost 3 µs a row here, a tenth of the whole import)."""
    table = connection.ops.quote_name(Terminal._meta.db_table)
    column = connection.ops.quote_name(Terminal._meta.get_field("sn").get_attname_column()[1] or "sn")
    found: set[str] = set()
    step = 10_000
    with connection.cursor() as cursor:
        for i in range(0, len(sns), step):
            part = sns[i : i + step]
            marks = ", ".join(["%s"] * len(part))
            cursor.execute(f"SELECT {column} FROM {table} WHERE {column} IN ({marks})", part)  # noqa: S608
            found.update(sn for (sn,) in cursor.fetchall())
    return found


def _cell_text(cells: Cells, index: int) -> str:
    if index < len(cells) and cells[index] is not None:
        return str(cells[index]).strip()[:40]
    return ""


def validate_file(
    fileobj: Source,
    fmt: str | None = None,
    *,
    progress: Progress | None = None,
    max_errors: int = DEFAULT_MAX_ERRORS,
    chunk_size: int = DEFAULT_CHUNK,
) -> ImportReport:
    """Check a whole file without writing anything (the dry run). ``fileobj`` is a path or a seekable
    binary file (e.g. an upload). Callers check ``fleet.import_terminals`` first: the report tells
    which SNs are registered already."""
    job = _Import(fileobj, fmt, chunk_size=chunk_size, max_errors=max_errors, progress=progress)
    try:
        return job.validate()
    finally:
        job.close()


def import_terminals(
    *,
    actor: Actor,
    path: Source,
    fmt: str | None = None,
    commit: bool = False,
    skip_invalid: bool = False,
    progress: Progress | None = None,
    max_errors: int = DEFAULT_MAX_ERRORS,
    chunk_size: int = DEFAULT_CHUNK,
) -> ImportReport:
    """Validate ``path`` and, with ``commit``, register its rows as terminals in stock.

    Nothing is written unless every row is valid, or ``skip_invalid`` is set (then the valid rows
    are written and the report lists the skipped ones). A file-level problem (encoding, format,
    header) always stops the import. ``report.committed`` says whether rows were written.
    """
    require_import_permission(actor)
    job = _Import(path, fmt, chunk_size=chunk_size, max_errors=max_errors, progress=progress)
    try:
        report = job.validate()
        report.dry_run = not commit
        if not commit or report.file_errors or report.valid_rows == 0:
            return report
        if report.invalid_rows and not skip_invalid:
            return report
        job.write(actor)
        return report
    finally:
        job.close()
