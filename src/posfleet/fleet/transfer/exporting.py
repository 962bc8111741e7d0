"""Exporting terminals to CSV or Excel, streaming, in the reader's scope, audited once per export.

What the file holds is said here (``TERMINAL_EXPORT``: ``EXPORT_COLUMNS`` and where each comes from); how it
is written — streaming in bounded memory, cells that a spreadsheet would run as a formula neutralised,
the export id, progress, the one ``terminals.exported`` audit row when the export ends — is the shared
export of ``platform/exports.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

from django.db.models import QuerySet

from posfleet.audit.services import export_recorder
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import Terminal
from posfleet.fleet.selectors import TerminalFilters, search_terminals
from posfleet.fleet.transfer.columns import EXPORT_COLUMNS
from posfleet.fleet.transfer.report import ProgressEvent
from posfleet.iam.models import User
from posfleet.platform import exports
from posfleet.platform.context import Actor
from posfleet.platform.errors import PermissionDenied
from posfleet.platform.exports import Column, ColumnType, ExportSpec, neutralise

__all__ = [
    "CSV_CONTENT_TYPE",
    "TERMINAL_EXPORT",
    "XLSX_CONTENT_TYPE",
    "export_queryset",
    "export_terminals",
    "neutralise",
    "stream_csv",
]

CSV_CONTENT_TYPE = exports.CSV.content_type
XLSX_CONTENT_TYPE = exports.XLSX.content_type

# Where each column of EXPORT_COLUMNS comes from, when not the terminal's field of the same name.
_SOURCES = {
    "model": "model__code",
    "agent": "agent__code",
    "merchant": "merchant__mid",
    "store": "store__code",
}
_TYPES = {"service_expires_on": ColumnType.DATE, "status_changed_at": ColumnType.DATETIME}

TERMINAL_EXPORT = ExportSpec(
    name="terminals",
    id_prefix="EXP",
    formats=("csv", "xlsx"),
    columns=tuple(
        Column(name, _SOURCES.get(name, name), _TYPES.get(name, ColumnType.TEXT)) for name in EXPORT_COLUMNS
    ),
)

Progress = Callable[[ProgressEvent], None]


def _scope(actor: Actor, user_or_none: User | None) -> User | None:
    """People and tokens export what they may see, nothing more; the system exports everything."""
    if not actor.is_system:
        if actor.user is None or (user_or_none is not None and user_or_none.pk != actor.user.pk):
            raise PermissionDenied()
        user_or_none = actor.user
    if user_or_none is not None and not user_or_none.has_perm("fleet.export_terminals"):
        raise PermissionDenied()
    return user_or_none


def export_queryset(user: User | None, filters: TerminalFilters) -> QuerySet[Terminal]:
    """The terminals ``user`` may see (all of them for ``None``, the system) matching ``filters``."""
    return search_terminals(user, filters, sort="sn")


def _recorder(actor: Actor) -> exports.Recorder:
    return export_recorder(actor, EventType.TERMINALS_EXPORTED)


def _progress(report: Progress | None) -> exports.Progress | None:
    """The shared export's progress as the fleet's ``ProgressEvent`` (the CLI's bar, the console's job)."""
    if report is None:
        return None
    return lambda event: report(ProgressEvent("export", event.done, event.total, event.fraction))


def stream_csv(
    *,
    actor: Actor,
    user_or_none: User | None,
    filters: TerminalFilters,
    progress: Progress | None = None,
) -> Iterator[bytes]:
    """CSV bytes (UTF-8 with BOM, so Excel shows Chinese correctly), for a StreamingHttpResponse.

    The export's audit event is written when the stream ends: ``success`` with the row count, or
    ``aborted`` (with the rows sent so far) when the client went away or an error stopped it.
    Scope and permission are checked before the first byte.
    """
    user = _scope(actor, user_or_none)
    queryset = export_queryset(user, filters)
    return exports.stream(
        TERMINAL_EXPORT,
        "csv",
        exports.rows_of(queryset, TERMINAL_EXPORT),
        record=_recorder(actor),
        filters=filters,
        scope=_scope_label(user),
        count=queryset.count,
        progress=_progress(progress),
    )


def export_terminals(
    *,
    actor: Actor,
    user_or_none: User | None,
    filters: TerminalFilters,
    fmt: str,
    out: IO[bytes],
    progress: Progress | None = None,
) -> int:
    """Write the terminals ``user_or_none`` may see (everything for the system) to ``out`` as CSV or
    XLSX. Returns the number of rows. One audit event (terminals.exported) per export."""
    TERMINAL_EXPORT.file_format(fmt)
    user = _scope(actor, user_or_none)
    queryset = export_queryset(user, filters)
    return exports.write(
        TERMINAL_EXPORT,
        fmt,
        exports.rows_of(queryset, TERMINAL_EXPORT),
        out,
        record=_recorder(actor),
        filters=filters,
        scope=_scope_label(user),
        count=queryset.count,
        progress=_progress(progress),
    )


def _scope_label(user: User | None) -> str:
    return user.get_username() if user is not None else "all"
