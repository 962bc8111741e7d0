"""Writing many rows at once, for the bulk writers (transaction ingest, settlement, expiry sweeps,
the outbox).

- ``insert_rows``: COPY on PostgreSQL for a large chunk, one ``INSERT … SELECT … FROM unnest(…)`` for
  a small one (the gateway's groups: COPY's three exchanges with the server, and the ids read from
  the sequence beforehand, cost more than the rows); one prepared ``executemany`` on SQLite.
- ``insert_returning``: the same, and the new rows' ids by a unique key of theirs, read back from
  the statement itself (``RETURNING``; ids taken from the sequence for a chunk COPY writes).
- ``add_rows``: an upsert that adds: a row whose unique key is there already has the new row's
  amounts added to it (``ON CONFLICT … DO UPDATE SET n = n + excluded.n``), one statement, ids back.

On PostgreSQL the small statements bind one array per column (``unnest``), so their SQL is the same
whatever the number of rows and is prepared once per connection; on SQLite a multi-row ``VALUES``
(in-process: nothing to save on the way to a server).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.db import connection
from django.db.models import DateField, DateTimeField, Field, JSONField, Model, UUIDField

COPY_FROM = 200  # rows: a PostgreSQL chunk this large goes by COPY, a smaller one by INSERT … unnest
CHUNK = 5000  # rows per COPY or executemany
SQLITE_PARAMS = 32766  # SQLite's limit on parameters a statement

Key = tuple[Any, ...]


def insert_rows(
    model: type[Model], varying: Sequence[str], rows: Iterable[Sequence[Any]], /, **constant: Any
) -> int:
    """INSERT many rows of ``model`` with one statement per few thousand rows. ``varying`` names the
    fields given per row (in that order), ``constant`` fields the same for all (the primary key only
    when named in ``varying``); every other field takes its default (a plain one worked out once per
    process, a callable one or an ``auto_now`` time per call, so a new field with a default needs no
    change here). Like ``bulk_create`` it sends no signals and runs no model validation; the database's
    constraints and triggers all apply. ``Model(...)`` + ``bulk_create`` cost about 100 µs a row in
    Django's per-field SQL compilation (bench/settlement.py), several times the insert itself.
    Returns the number of rows."""
    shape = _Shape(model, varying, constant)
    count = 0
    with connection.cursor() as cursor:
        for chunk in _chunked(rows, CHUNK):
            prepared = shape.rows(chunk)
            if connection.vendor != "postgresql":
                cursor.executemany(shape.sqlite_insert(1), [shape.flat(row) for row in prepared])
            elif len(prepared) >= COPY_FROM:
                shape.copy(cursor, prepared)
            else:
                cursor.execute(shape.c.pg_insert, shape.pg_params(prepared))
            count += len(prepared)
    return count


def insert_returning(
    model: type[Model],
    varying: Sequence[str],
    rows: Iterable[Sequence[Any]],
    key: Sequence[str],
    /,
    **constant: Any,
) -> dict[Key, int]:
    """``insert_rows``, returning the new rows' ids by ``key``: fields of ``varying`` whose values are
    unique among the rows (a natural key, a reference). Each id is read back with its key from the
    database's answer, not matched by position (SQLite returns ``RETURNING`` rows in no set order)."""
    if "id" in varying:
        raise ValueError("insert_returning takes the ids itself")
    shape = _Shape(model, varying, constant)
    at = [list(varying).index(name) for name in key]
    found: dict[Key, int] = {}
    with connection.cursor() as cursor:
        for chunk in _chunked(rows, CHUNK):
            prepared = shape.rows(chunk)
            if connection.vendor == "postgresql" and len(prepared) >= COPY_FROM:
                ids = _next_ids(cursor, model, len(prepared))
                shape.copy(cursor, prepared, ids)
                answered: Iterable[Sequence[Any]] = (
                    (pk, *(row[j] for j in at)) for pk, row in zip(ids, chunk, strict=True)
                )
            else:
                answered = shape.returning(cursor, prepared, key)
            written = shape.ids_by_key(answered, at)
            if len(written) != len(prepared):  # the database took them (no unique constraint): a bug
                raise ValueError(f"{model.__name__}: the rows' {', '.join(key)} are not unique")
            found.update(written)
    return found


def add_rows(
    model: type[Model],
    varying: Sequence[str],
    rows: Iterable[Sequence[Any]],
    key: Sequence[str],
    adding: Sequence[str],
) -> dict[Key, int]:
    """INSERT rows, each of which may meet a stored row with the same ``key`` (the fields of a unique
    constraint, all in ``varying``): that row then has this one's ``adding`` fields added to its own,
    and keeps the rest. One statement per chunk; returns the ids of the rows written or added to, by
    ``key``. The rows' keys must be distinct (two in one statement cannot add to the same row)."""
    shape = _Shape(model, varying, {})
    at = [list(varying).index(name) for name in key]
    found: dict[Key, int] = {}
    with connection.cursor() as cursor:
        for chunk in _chunked(rows, CHUNK):
            if len({shape.key([row[j] for j in at], at) for row in chunk}) != len(chunk):
                raise ValueError(f"{model.__name__}: two rows with the same {', '.join(key)}")
            found.update(shape.ids_by_key(shape.returning(cursor, shape.rows(chunk), key, adding=adding), at))
    return found


def _next_ids(cursor: Any, model: type[Model], n: int) -> list[int]:
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        [model._meta.db_table, n],
    )
    return [row[0] for row in cursor.fetchall()]


class _Shape:
    """The columns of an insert into ``model``: the varying ones from each row (adapted for the
    database), the others their constant or default value. What does not change from call to call
    (the fields, the SQL, the plain defaults) is worked out once per process (``_columns``)."""

    def __init__(self, model: type[Model], varying: Sequence[str], constant: dict[str, Any]) -> None:
        self.c = columns = _columns(model, tuple(varying), frozenset(constant), connection.vendor)
        self.base = columns.base.copy()
        template: Model | None = None
        for i in columns.dynamic:  # a given constant, a callable default, an ``auto_now`` time
            f = self.c.fields[i]
            if f.name in constant:
                value = constant[f.name]
            else:
                template = template or model()
                value = f.pre_save(template, add=True)
            self.base[i] = f.get_db_prep_save(value, connection)

    def rows(self, chunk: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """Each row's varying values adapted, in the order of ``varying``."""
        return [[adapt(value) for adapt, value in zip(self.c.adapters, row, strict=True)] for row in chunk]

    def flat(self, row: list[Any]) -> list[Any]:
        """A whole row: the constants with ``row``'s values in their places."""
        out = self.base.copy()
        for i, value in zip(self.c.slots, row, strict=True):
            out[i] = value
        return out

    def key(self, values: Sequence[Any], at: list[int]) -> Key:
        """Key values (of the fields at ``at`` in ``varying``) as Python values, whether given by a
        caller or returned by the database (SQLite's driver returns a date column as it was sent, or
        as a date, depending on how it is declared)."""
        return tuple(
            self.c.fields[self.c.slots[j]].to_python(value) for j, value in zip(at, values, strict=True)
        )

    def ids_by_key(self, answered: Iterable[Sequence[Any]], at: list[int]) -> dict[Key, int]:
        """``(id, *key values)`` rows as ids by key."""
        return {self.key(values, at): pk for pk, *values in answered}

    def column(self, name: str) -> str:
        return self.c.names[[f.name for f in self.c.fields].index(name)]

    def copy(self, cursor: Any, prepared: list[list[Any]], ids: list[int] | None = None) -> None:
        columns = self.c.columns if ids is None else f"{connection.ops.quote_name('id')}, {self.c.columns}"
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY {self.c.table} ({columns}) FROM STDIN") as copy,
        ):
            for n, row in enumerate(prepared):
                copy.write_row(self.flat(row) if ids is None else [ids[n], *self.flat(row)])

    def sqlite_insert(self, n: int) -> str:
        marks = "(" + ", ".join(["%s"] * len(self.c.fields)) + ")"
        return f"INSERT INTO {self.c.table} ({self.c.columns}) VALUES {', '.join([marks] * n)}"  # noqa: S608

    def pg_params(self, prepared: list[list[Any]]) -> list[Any]:
        """The constants (in the SELECT list, before the FROM), then one array per varying column."""
        return [
            *(self.base[i] for i in self.c.constants),
            *([row[n] for row in prepared] for n in range(len(self.c.slots))),
        ]

    def returning(
        self, cursor: Any, prepared: list[list[Any]], key: Sequence[str], adding: Sequence[str] = ()
    ) -> Iterator[Sequence[Any]]:
        """INSERT ``prepared`` (an upsert adding ``adding`` when given), yielding (id, *key) rows."""
        tail = ""
        if adding:
            target = ", ".join(self.column(name) for name in key)
            sums = ", ".join(
                f"{c} = {self.c.table}.{c} + excluded.{c}" for c in (self.column(name) for name in adding)
            )
            tail = f" ON CONFLICT ({target}) DO UPDATE SET {sums}"
        tail += (
            f" RETURNING {connection.ops.quote_name('id')}, {', '.join(self.column(name) for name in key)}"
        )
        if connection.vendor == "postgresql":
            cursor.execute(self.c.pg_insert + tail, self.pg_params(prepared))
            yield from cursor.fetchall()
            return
        per = max(1, SQLITE_PARAMS // len(self.c.fields))
        for start in range(0, len(prepared), per):
            part = prepared[start : start + per]
            cursor.execute(self.sqlite_insert(len(part)) + tail, [v for row in part for v in self.flat(row)])
            yield from cursor.fetchall()


class _Columns:
    """The call-independent part of a ``_Shape``."""

    def __init__(self, model: type[Model], varying: tuple[str, ...], constant: frozenset[str]) -> None:
        db = connection
        self.fields = [f for f in model._meta.concrete_fields if not f.primary_key or f.name in varying]
        names = [f.name for f in self.fields]
        self.slots = [names.index(name) for name in varying]
        self.constants = [i for i in range(len(self.fields)) if i not in set(self.slots)]
        self.adapters = [_adapter(self.fields[i]) for i in self.slots]
        self.base: list[Any] = [None] * len(self.fields)
        self.dynamic: list[int] = []
        for i in self.constants:
            f = self.fields[i]
            if (
                f.name in constant
                or callable(f.default)
                or getattr(f, "auto_now", False)
                or getattr(f, "auto_now_add", False)
            ):
                self.dynamic.append(i)
            else:
                self.base[i] = f.get_db_prep_save(f.get_default(), db)
        quote = db.ops.quote_name
        self.table = quote(model._meta.db_table)
        self.names = [quote(f.column or f.name) for f in self.fields]
        self.columns = ", ".join(self.names)
        self.pg_insert = ""
        if db.vendor == "postgresql":  # ``INSERT … SELECT`` the constants and an ``unnest`` of arrays
            place = {i: n for n, i in enumerate(self.slots)}
            arrays = ", ".join(f"%s::{self.fields[i].db_type(db)}[]" for i in self.slots)
            picks = ", ".join(
                f"u.v{place[i]}" if i in place else f"%s::{f.db_type(db)}" for i, f in enumerate(self.fields)
            )
            aliases = ", ".join(f"v{n}" for n in range(len(self.slots)))
            self.pg_insert = (
                f"INSERT INTO {self.table} ({self.columns}) "  # noqa: S608
                f"SELECT {picks} FROM unnest({arrays}) AS u({aliases})"
            )


@functools.lru_cache(maxsize=256)
def _columns(model: type[Model], varying: tuple[str, ...], constant: frozenset[str], vendor: str) -> _Columns:
    return _Columns(model, varying, constant)


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
