"""Queries the ORM builds once and the hot path runs many times.

The gateway reads a terminal and checks a message's natural key on every message. Building such a
query's SQL (filters, joins, compiler) costs the ORM 10–40× what the database takes to answer it on
this machine (bench/README "gateway"). ``Prepared`` keeps the query defined once, as a queryset, and
compiles it once per database connection; each call binds the new values and only runs it, with the
same converters Django applies (dates, UUIDs, booleans come back as Python values).

Strings and dates can be bound (a placeholder value stands in for each while the ORM compiles): an
equality on a text or date column, the gateway's cases. Nothing is cached but the SQL: every call
reads committed state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet

_CACHE = "_posfleet_prepared"


class Prepared:
    """``build(**values)`` returns a ``values_list`` queryset; ``rows(**values)`` runs it with these
    values bound (strings for ``names``, dates for ``dates``) and returns its rows as tuples."""

    def __init__(self, build: Callable[..., QuerySet[Any]], *names: str, dates: tuple[str, ...] = ()) -> None:
        self.build, self.names, self.dates = build, names + dates, dates
        # Values no caller passes (a NUL in a string, a date in the year 1).
        self.placeholders: dict[str, Any] = {name: f"\x00prepared:{name}\x00" for name in names}
        self.placeholders.update({name: date(1, 1, 1) + timedelta(days=i) for i, name in enumerate(dates)})

    def _compiled(self) -> tuple[Any, str, tuple[Any, ...], dict[int, str]]:
        connection = connections[DEFAULT_DB_ALIAS]  # each thread has its own
        cache: dict[int, tuple[Any, str, tuple[Any, ...], dict[int, str]]] = connection.__dict__.setdefault(
            _CACHE, {}
        )
        entry = cache.get(id(self))
        if entry is None:
            queryset = self.build(**self.placeholders)
            compiler = queryset.query.get_compiler(using=DEFAULT_DB_ALIAS)
            sql, params = compiler.as_sql()
            compiled = {
                name: self._adapt(connection, name, value) for name, value in self.placeholders.items()
            }
            slots = {
                i: name for i, value in enumerate(params) for name in self.names if value == compiled[name]
            }
            if sorted(slots.values()) != sorted(self.names):
                raise ImproperlyConfigured(f"each of {self.names} must be bound exactly once")
            entry = cache[id(self)] = (compiler, sql, tuple(params), slots)
        return entry

    def _adapt(self, connection: Any, name: str, value: Any) -> Any:
        return connection.ops.adapt_datefield_value(value) if name in self.dates else value

    def rows(self, **values: Any) -> list[tuple[Any, ...]]:
        compiler, sql, params, slots = self._compiled()
        adapt, connection = self._adapt, compiler.connection
        bound = [
            adapt(connection, slots[i], values[slots[i]]) if i in slots else v for i, v in enumerate(params)
        ]
        with compiler.connection.cursor() as cursor:
            cursor.execute(sql, bound)
            fetched = cursor.fetchall()
        return list(compiler.results_iter(results=[fetched], tuple_expected=True))
