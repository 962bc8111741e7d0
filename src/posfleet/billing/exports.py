"""Exporting transactions as CSV, Excel or Parquet, streaming, in the reader's scope, audited once per export.

What the file holds is said here (``TRANSACTION_EXPORT``: the columns and their types); how it is written —
streaming in bounded memory, formula cells neutralised, the export id, the one audit row when the
stream ends (``transactions.exported``: ``success`` with the row count, or ``aborted`` with the rows
sent so far) — is the shared export of ``platform/exports.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from posfleet.audit.services import export_recorder
from posfleet.audit.vocabulary import EventType
from posfleet.billing.selectors import TRANSACTION_COLUMNS, TransactionSearch, find_transactions
from posfleet.iam.models import User
from posfleet.platform import exports
from posfleet.platform.context import Actor
from posfleet.platform.errors import PermissionDenied
from posfleet.platform.exports import ColumnType, ExportSpec

_INT, _DATE, _TIME = ColumnType.INTEGER, ColumnType.DATE, ColumnType.DATETIME

TRANSACTION_EXPORT = ExportSpec(
    name="transactions",
    id_prefix="TXE",
    formats=("csv", "xlsx", "parquet"),
    columns=TRANSACTION_COLUMNS,
    parquet_metadata=((b"posfleet.amounts", b"integer fen (1/100 CNY)"),),
)
HEADER = TRANSACTION_EXPORT.header
# format -> (content type, file extension), the formats the console offers
FORMATS = {
    name: (exports.FORMATS[name].content_type, exports.FORMATS[name].extension)
    for name in TRANSACTION_EXPORT.formats
}


def _user_of(actor: Actor) -> User:
    """People and tokens export what they may see (every role sees money in its own scope, as
    billing.view_money says per merchant), nothing more."""
    user = actor.scope_user
    if user is None or not user.is_active:
        raise PermissionDenied()
    return user


def _recorder(actor: Actor) -> exports.Recorder:
    return export_recorder(actor, EventType.TRANSACTIONS_EXPORTED)


def filename(fmt: str) -> str:
    return TRANSACTION_EXPORT.filename(fmt)


def parquet_schema() -> Any:
    return exports.parquet_schema(TRANSACTION_EXPORT)


def stream_transactions(*, actor: Actor, search: TransactionSearch, fmt: str) -> Iterator[bytes]:
    """The transactions the actor may see matching ``search``, oldest first, as ``fmt`` (csv, xlsx or
    parquet) bytes for a StreamingHttpResponse. Permission and format are checked before the first
    byte."""
    TRANSACTION_EXPORT.file_format(fmt)
    user = _user_of(actor)
    return exports.stream(
        TRANSACTION_EXPORT,
        fmt,
        exports.rows_of(find_transactions(user, search, sort="time"), TRANSACTION_EXPORT),
        record=_recorder(actor),
        filters=search,
        scope=user.get_username(),
    )
