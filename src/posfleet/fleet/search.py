"""The device list's search box: the start of an SN or TID, through an index on every engine, and the
order a search's matches are sorted by (docs/adr/0034)."""

from __future__ import annotations

from django.db import connection
from django.db.models import F, Q
from django.db.models.functions import Upper


def starting_with(field: str, text: str) -> Q:
    """``field`` starts with ``text``, as a range the field's own index answers on every engine (SNs and
    TIDs are capitals, digits and dashes, and searches are upper-cased: the case needs no folding).
    SQLite's LIKE folds case, so it cannot use the index; the range can, and with its binary collation
    it is exact. PostgreSQL answers ``LIKE 'X%'`` from the ``varchar_pattern_ops`` index Django makes
    for indexed text columns, whatever the database's collation (a range would follow the collation)."""
    if connection.vendor == "postgresql":
        return Q(**{f"{field}__startswith": text})
    return Q(**{f"{field}__gte": text, f"{field}__lt": text + "\U0010ffff"})


def sn_or_tid_starting(text: str) -> Q:
    """Terminals whose SN or TID starts with ``text`` (upper-cased): the device list's search box. A
    prefix, not a part: a substring search reads every terminal (1,000,000 in 2 s, bench/pages.py)."""
    return starting_with("sn", text) | starting_with("tid", text)


def search_order(key: str, text: str) -> F | Upper:
    """What a list sorted by ``key`` is ordered by: the field, or for a search in SN or TID order the
    same order through an expression no index gives (SNs and TIDs are capitals: ``UPPER`` changes
    nothing). A prefix's matches lie together in SN order, and a planner that expects them spread
    walks the SN index from the start looking for them (PostgreSQL, 0.1 s per 100,000 terminals
    before the first match, bench/pages.py); through the expression, it fetches the matches by their
    indexes and sorts those."""
    return Upper(key) if text and key in ("sn", "tid") else F(key)
