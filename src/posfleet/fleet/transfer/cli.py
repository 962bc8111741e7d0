"""Presentation for the ``import`` and ``export`` commands: progress and the error report.

A rich progress bar on a terminal; plain progress lines ("validated 40,000 rows…") otherwise, so logs
and CI output stay readable.
"""

from __future__ import annotations

from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from posfleet.fleet.transfer.report import ImportReport, ProgressEvent

_PAST = {"validate": "validated", "write": "written", "export": "exported"}
_STEPS = 1000


class CliProgress:
    def __init__(self, stream: TextIO, *, tty: bool, every: int = 50_000) -> None:
        self.stream = stream
        self.tty = tty
        self.every = every
        self._printed: dict[str, int] = {}
        self._bar: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> CliProgress:
        if self.tty:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rows]:>12,} rows"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, event: ProgressEvent) -> None:
        if self._bar is not None:
            task = self._tasks.get(event.phase)
            if task is None:
                task = self._bar.add_task(_PAST.get(event.phase, event.phase).ljust(10), total=_STEPS, rows=0)
                self._tasks[event.phase] = task
            done = int(event.fraction * _STEPS) if event.fraction is not None else None
            self._bar.update(task, completed=done, rows=event.done)
            return
        last = self._printed.get(event.phase)
        finished = event.total is not None and event.done >= event.total
        if finished and last == event.done:
            return
        if finished or event.done >= (last or 0) + self.every:
            self._printed[event.phase] = event.done
            ellipsis = "" if finished else "…"
            self.stream.write(f"{_PAST.get(event.phase, event.phase)} {event.done:,} rows{ellipsis}\n")
            self.stream.flush()


def write_report(report: ImportReport, stream: TextIO, *, tty: bool) -> None:
    """The per-row error report: line, SN, column, message; then the counts per kind."""
    out = stream.write
    encoding = f", {report.encoding}" if report.encoding else ""
    out(f"{report.source} ({report.fmt or '?'}{encoding}): ")
    out(
        f"{report.rows:,} rows, {report.valid_rows:,} valid, {report.invalid_rows:,} invalid"
        + (f", {report.blank_rows:,} blank rows skipped" if report.blank_rows else "")
        + "\n"
    )
    if report.ignored_columns:
        out(f"ignored columns (read-only in an export): {', '.join(report.ignored_columns)}\n")
    for problem in report.file_errors:
        where = f"line {problem.line}: " if problem.line else ""
        out(f"ERROR [{problem.code}] {where}{problem.message}\n")
    if report.errors:
        if tty:
            table = Table("line", "SN", "column", "problem", "code", show_lines=False)
            for error in report.errors:
                table.add_row(str(error.line), error.sn, error.column, error.message, error.code)
            Console(file=stream).print(table)
        else:
            out("line\tsn\tcolumn\tcode\tproblem\n")
            for error in report.errors:
                out(f"{error.line}\t{error.sn}\t{error.column}\t{error.code}\t{error.message}\n")
        if report.errors_truncated:
            listed, found = len(report.errors), report.error_counts.total()
            out(f"… only the first {listed:,} of {found:,} errors are listed.\n")
        counts = ", ".join(f"{code}: {n:,}" for code, n in sorted(report.error_counts.items()))
        out(f"errors by kind: {counts}\n")
