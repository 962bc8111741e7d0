"""Reading terminal files row by row, in constant memory: CSV (UTF-8 with or without BOM, or
GB18030/GBK as Chinese Excel writes it) and XLSX (openpyxl in read-only mode).

Problems with the file as a whole raise ``FileProblem`` with a stable code and a message for people;
no traceback reaches the user.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from django.utils.translation import gettext as _

Source = str | os.PathLike[str] | IO[bytes]
Cells = list[Any] | tuple[Any, ...]

FORMATS = ("csv", "xlsx")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls
_SCAN_CHUNK = 1 << 20


class FileProblem(Exception):
    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


def source_name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return str(getattr(source, "name", "") or "upload")


@contextmanager
def open_binary(source: Source) -> Iterator[IO[bytes]]:
    """The file as a binary stream positioned at its start; a caller's stream is not closed."""
    if isinstance(source, str | os.PathLike):
        try:
            fh = open(source, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise FileProblem(
                "unreadable", _("The file cannot be opened: %(error)s") % {"error": exc}
            ) from exc
        with fh:
            yield fh
    else:
        source.seek(0)
        yield source


def detect_format(source: Source, fmt: str | None) -> str:
    """``fmt`` when given (checked against the file's content), else from the name, else sniffed."""
    with open_binary(source) as fh:
        magic = fh.read(8)
    if magic.startswith(_OLE_MAGIC):
        raise FileProblem(
            "old_excel", _("This is an old Excel 97-2003 (.xls) file. Save it as .xlsx or as CSV UTF-8.")
        )
    looks_zip = magic.startswith(_ZIP_MAGIC)
    if fmt is None:
        suffix = Path(source_name(source)).suffix.lower()
        fmt = "xlsx" if suffix in {".xlsx", ".xlsm"} or looks_zip else "csv"
    if fmt not in FORMATS:
        raise FileProblem("bad_format", _("Unknown format “%(fmt)s”: use csv or xlsx.") % {"fmt": fmt})
    if fmt == "csv" and looks_zip:
        raise FileProblem("bad_format", _("This is an Excel (.xlsx) file, not CSV: import it as xlsx."))
    if fmt == "xlsx" and not looks_zip:
        raise FileProblem("bad_format", _("This is not an Excel (.xlsx) file."))
    return fmt


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def detect_encoding(source: Source) -> str:
    """UTF-8 (with or without BOM) or GB18030 (a superset of GBK and GB2312). The whole file is
    decoded once, at C speed, so that a bad byte deep in the file is found before any row is read."""
    with open_binary(source) as fh:
        head = fh.read(4)
        if head.startswith(codecs.BOM_UTF8):
            candidates: tuple[str, ...] = ("utf-8-sig",)
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise FileProblem(
                "encoding",
                _("The file is UTF-16 text (Excel's “Unicode text”). Save it as “CSV UTF-8” instead."),
            )
        else:
            candidates = ("utf-8", "gb18030")
        first_bad_line = None
        for encoding in candidates:
            fh.seek(0)
            decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
            lines_before = 0
            try:
                while chunk := fh.read(_SCAN_CHUNK):
                    if b"\x00" in chunk:
                        raise FileProblem(
                            "encoding",
                            _("The file contains NUL bytes: it is binary or UTF-16, not a CSV text file."),
                            lines_before + _line_of(chunk, chunk.index(b"\x00")),
                        )
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        if first_bad_line is None:
                            first_bad_line = lines_before + _line_of(chunk, exc.start)
                        raise
                    lines_before += chunk.count(b"\n")
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                continue
            return encoding
    raise FileProblem(
        "encoding",
        _(
            "The file is neither UTF-8 nor GB18030/GBK text (first unreadable byte on line %(line)s). "
            "Save it from Excel as “CSV UTF-8”."
        )
        % {"line": first_bad_line},
        first_bad_line,
    )


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


Position = Callable[[], float | None]


@contextmanager
def csv_rows(source: Source, encoding: str) -> Iterator[tuple[Iterator[tuple[int, Cells]], Position]]:
    """(line, cells) for every record, and a function giving the share of the file read so far."""
    with open_binary(source) as fh:
        size = _size(fh)
        text = io.TextIOWrapper(fh, encoding=encoding, newline="")
        try:
            first = text.readline()
            reader = csv.reader(itertools.chain([first], text), delimiter=_sniff_delimiter(first))

            def rows() -> Iterator[tuple[int, Cells]]:
                try:
                    for cells in reader:
                        yield reader.line_num, cells
                except csv.Error as exc:
                    raise FileProblem(
                        "unreadable",
                        _("Line %(line)d cannot be read as CSV: %(error)s")
                        % {"line": reader.line_num, "error": exc},
                        reader.line_num,
                    ) from exc

            def position() -> float | None:
                return min(fh.tell() / size, 1.0) if size else None

            yield rows(), position
        finally:
            text.detach()  # leave the caller's stream open


@contextmanager
def xlsx_rows(source: Source) -> Iterator[tuple[Iterator[tuple[int, Cells]], int | None]]:
    """(row number, cells) for every row of the first sheet, and the sheet's row count if known."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    with open_binary(source) as fh:
        try:
            workbook = load_workbook(fh, read_only=True, data_only=False)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise FileProblem(
                "unreadable",
                _("The Excel file cannot be read (damaged or not .xlsx): %(error)s") % {"error": exc},
            ) from exc
        try:
            sheet = workbook.worksheets[0]
            total = sheet.max_row if isinstance(sheet.max_row, int) else None
            numbered = enumerate(sheet.iter_rows(values_only=True), start=1)
            yield ((number, cells) for number, cells in numbered), total
        finally:
            workbook.close()


def _size(fh: IO[bytes]) -> int:
    try:
        return os.fstat(fh.fileno()).st_size
    except (OSError, AttributeError, io.UnsupportedOperation):
        position = fh.tell()
        end = fh.seek(0, io.SEEK_END)
        fh.seek(position)
        return end
