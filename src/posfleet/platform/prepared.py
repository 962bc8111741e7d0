"""Queries the ORM builds once and the hot path runs many times.

The gateway reads a terminal and checks a message's natural key on every message, and its poster
records each group of approvals with a dozen fixed-shape queries. Building such a query's SQL
(filters, joins, compiler) costs the ORM 10–40× what the database takes to answer it on this machine
(bench/README "gateway"). ``Prepared`` keeps the query defined once, as a queryset, and compiles it
once per database connection (and, for lists, per size class of their lengths); each call binds the
new values and only runs it, with the same converters Django applies (dates, UUIDs, booleans come
back as Python values).

Each parameter is declared with its type: ``str``, ``int``, ``date`` or ``datetime`` (an equality,
a comparison), or a list of one of those or of a tuple of them (an ``IN`` list, an OR of keys). While
the ORM compiles, a placeholder value no caller passes stands in for each value (a NUL in a string, a
negative int, a date in the year 1), and each must come out as exactly one parameter of the SQL —
anything the ORM would rewrite (a ``contains``, a duplicate in a list) is refused when compiled. An
empty list, or lists longer than ``MAX_LISTED`` in all, run through the ORM itself (its answer to an
empty ``IN``; a large batch pays the compilation once anyway). Nothing is cached but the SQL: every
call reads committed state.

A list is a set: it filters (an ``IN``, an OR of keys), so naming a value twice matches the same rows.
Lists are compiled for lengths 1, 2, 4, 8 … ``MAX_LISTED`` and a call's list is padded to the next of
these by repeating its last value — a group of 37 postings runs the statement compiled for 64. Without
that, a poster whose groups take every size from 1 to 100 compiled each query 100 times and, past
``MAX_SHAPES``, started again (bench/README, 2026-12-07, "compiled again and again").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet

_CACHE = "_posfleet_prepared"
MAX_LISTED = 512  # list items bound at most (more: the ORM compiles that call); a power of two
MAX_SHAPES = 1024  # compiled statements kept per connection (more: the cache starts again)

Scalar = type[str] | type[int] | type[date] | type[datetime]
Spec = Scalar | list[Any]  # a scalar type, or [a scalar type] / [(scalar types…)]
Slot = tuple[str, int | None, int | None]  # (name, index in the list, position in the tuple)


class Prepared:
    """``build(**values)`` returns a ``values_list`` queryset; ``rows(**values)`` runs it with these
    values bound and returns its rows as tuples. ``params`` declare each value's type: ``tid=str``,
    ``since=date``, ``ids=[int]``, ``keys=[(str, str, str, date)]``."""

    def __init__(self, build: Callable[..., QuerySet[Any]], **params: Spec) -> None:
        self.build = build
        self.params = params
        self.lists = tuple(name for name, spec in params.items() if isinstance(spec, list))
        for name, spec in params.items():
            for kind in _element_kinds(spec):
                if kind not in (str, int, date, datetime):
                    raise ImproperlyConfigured(f"{name}: cannot bind a {kind!r}")

    def rows(self, **values: Any) -> list[tuple[Any, ...]]:
        return self._run(values)[0]

    def objects(self, **values: Any) -> list[Any]:
        """The rows as instances of the queryset's model, loaded as the ORM loads them
        (``Model.from_db``): for a ``values_list`` of the model's field attnames (``plan_id``, not
        ``plan``); fields not named are deferred."""
        rows, query = self._run(values)
        names = list(query.values_select)
        return [query.model.from_db(DEFAULT_DB_ALIAS, names, row) for row in rows]

    def _run(self, values: dict[str, Any]) -> tuple[list[tuple[Any, ...]], Any]:
        lengths = tuple(len(values[name]) for name in self.lists)
        if 0 in lengths or sum(lengths) > MAX_LISTED:
            queryset = self.build(**values)
            return list(queryset), queryset.query
        compiler, sql, params, slots = self._compiled(tuple(size_class(n) for n in lengths))
        connection = compiler.connection
        bound = list(params)
        for i, (name, index, position) in slots.items():
            value = values[name]
            if index is not None:
                value = value[min(index, len(value) - 1)]  # padded with the last value (a set)
            if position is not None:
                value = value[position]
            bound[i] = _adapt(connection, value)
        with connection.cursor() as cursor:
            cursor.execute(sql, bound)
            fetched = cursor.fetchall()
        return list(compiler.results_iter(results=[fetched], tuple_expected=True)), compiler.query

    def _compiled(self, lengths: tuple[int, ...]) -> tuple[Any, str, tuple[Any, ...], dict[int, Slot]]:
        connection = connections[DEFAULT_DB_ALIAS]  # each thread has its own
        cache: dict[tuple[int, tuple[int, ...]], Any] = connection.__dict__.setdefault(_CACHE, {})
        entry = cache.get((id(self), lengths))
        if entry is not None:
            return entry
        stand_ins: dict[Any, Slot] = {}
        counter = itertools.count()
        placeholders: dict[str, Any] = {}
        sizes = dict(zip(self.lists, lengths, strict=True))
        for name, spec in self.params.items():
            if not isinstance(spec, list):
                placeholders[name] = _stand_in(spec, next(counter))
                stand_ins[_adapt(connection, placeholders[name])] = (name, None, None)
                continue
            (element,) = spec
            items: list[Any] = []
            for index in range(sizes[name]):
                if isinstance(element, tuple):
                    item = tuple(_stand_in(kind, next(counter)) for kind in element)
                    for position, value in enumerate(item):
                        stand_ins[_adapt(connection, value)] = (name, index, position)
                else:
                    item = _stand_in(element, next(counter))
                    stand_ins[_adapt(connection, item)] = (name, index, None)
                items.append(item)
            placeholders[name] = items
        compiler = self.build(**placeholders).query.get_compiler(using=DEFAULT_DB_ALIAS)
        sql, params = compiler.as_sql()
        slots: dict[int, Slot] = {}
        for i, value in enumerate(params):
            slot = stand_ins.get(value) if isinstance(value, str | int | date) else None
            if slot is not None:
                slots[i] = slot
        if sorted(slots.values(), key=repr) != sorted(stand_ins.values(), key=repr):
            raise ImproperlyConfigured(f"each value of {tuple(self.params)} must be bound exactly once")
        if len(cache) >= MAX_SHAPES:
            cache.clear()
        entry = cache[(id(self), lengths)] = (compiler, sql, tuple(params), slots)
        return entry


def size_class(length: int) -> int:
    """The list length a statement is compiled for: the next power of two (1, 2, 4 … ``MAX_LISTED``)."""
    return 1 << max(length - 1, 0).bit_length()


def _element_kinds(spec: Spec) -> tuple[Any, ...]:
    if not isinstance(spec, list):
        return (spec,)
    if len(spec) != 1:
        raise ImproperlyConfigured("a list parameter names one element type: [int], [(str, date)]")
    (element,) = spec
    return element if isinstance(element, tuple) else (element,)


def _stand_in(kind: Any, n: int) -> Any:
    """The ``n``-th placeholder of ``kind``: a value no caller binds."""
    if kind is str:
        return f"\x00prepared:{n}\x00"
    if kind is int:
        return -2_000_000_000 + n  # in a 32-bit column's range: the ORM keeps it
    if kind is datetime:
        return datetime(2, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    return date(1, 1, 1) + timedelta(days=n)


def _adapt(connection: Any, value: Any) -> Any:
    """A value as the compiler passes it to the driver (dates and datetimes as the backend wants)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, date):
        return connection.ops.adapt_datefield_value(value)
    return value
