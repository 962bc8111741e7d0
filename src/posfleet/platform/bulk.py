"""Writing many rows at once, for the bulk writers (transaction ingest, settlement, expiry sweeps,
the outbox): ``insert_rows`` is COPY on PostgreSQL and one prepared ``executemany`` elsewhere;
``next_ids`` takes ids from a PostgreSQL sequence for rows COPY writes with them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.db import connection
from django.db.models import DateField, DateTimeField, Field, JSONField, Model, UUIDField


def insert_rows(
    model: type[Model], varying: Sequence[str], rows: Iterable[Sequence[Any]], /, **constant: Any
) -> int:
    """INSERT many rows of ``model`` with one statement per few thousand rows: COPY on PostgreSQL,
    executemany elsewhere. ``varying`` names the fields given per row (in that order), ``constant``
    fields the same for all (the primary key only when named in ``varying``: ids taken from the
    sequence beforehand); every other field takes its default (prepared once from a template
    instance, so a new field with a default needs no change here). Like ``bulk_create`` it sends no
    signals and runs no model validation; the database's constraints and triggers all apply.
    ``Model(...)`` + ``bulk_create`` cost about 100 µs a row in Django's per-field SQL compilation
    (bench/settlement.py), several times the insert itself. Returns the number of rows."""
    db = connection
    fields = [f for f in model._meta.concrete_fields if not f.primary_key or f.name in varying]
    template = model()
    base: list[Any] = []
    for f in fields:
        if f.name in varying:
            base.append(None)
            continue
        value = constant[f.name] if f.name in constant else f.pre_save(template, add=True)
        base.append(f.get_db_prep_save(value, db))
    names = [f.name for f in fields]
    slots = [names.index(name) for name in varying]
    adapters = [_adapter(fields[i]) for i in slots]
    quote = db.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(f.column or f.name) for f in fields)
    count = 0
    with db.cursor() as cursor:
        for chunk in _chunked(rows, 5000):
            prepared = []
            for row in chunk:
                out = base.copy()
                for i, adapt, value in zip(slots, adapters, row, strict=True):
                    out[i] = adapt(value)
                prepared.append(out)
            if db.vendor == "postgresql":
                with (
                    db.wrap_database_errors,
                    cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
                ):
                    for out in prepared:
                        copy.write_row(out)
            else:
                marks = ", ".join(["%s"] * len(fields))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", prepared)  # noqa: S608
            count += len(prepared)
    return count


def next_ids(model: type[Model], n: int) -> list[int]:
    """``n`` ids from the PostgreSQL sequence of ``model``'s primary key, for rows ``insert_rows``
    writes with them (COPY returns nothing)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, n],
        )
        return [row[0] for row in cursor.fetchall()]


def _adapter(field: Field[Any, Any]) -> Callable[[Any], Any]:
    if isinstance(field, DateTimeField):
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, DateField):
        return connection.ops.adapt_datefield_value
    if isinstance(field, JSONField):  # JSON text: executemany binds it, COPY's text format parses it
        encoder = field.encoder
        return lambda value: json.dumps(value, cls=encoder)
    if isinstance(field, UUIDField) and not connection.features.has_native_uuid_field:
        return _uuid_hex  # how Django stores a UUID without a native type
    return _same


def _uuid_hex(value: Any) -> str:
    return value if isinstance(value, str) else value.hex


def _same(value: Any) -> Any:
    return value


def _chunked(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    chunk: list[Sequence[Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
