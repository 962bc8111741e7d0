"""The device list's search box: a part of an SN or TID (three characters or more: anywhere in it; one
or two: its start), through an index on every engine, and the order a search's matches are sorted by
(docs/adr/0034, 0035)."""

from __future__ import annotations

from django.db import connection
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
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


# Below this many characters a part matches too much to be worth an index (and trigrams need three):
# the search is for the start of an SN or TID.
ANYWHERE_FROM = 3


def sn_or_tid_starting(text: str) -> Q:
    """Terminals whose SN or TID starts with ``text`` (upper-cased)."""
    return starting_with("sn", text) | starting_with("tid", text)


def sn_or_tid_containing(text: str) -> Q:
    """Terminals whose SN or TID holds ``text`` (upper-cased) anywhere, from ``ANYWHERE_FROM``
    characters on — the last digits of an SN read off a device's label — else whose SN or TID starts
    with it. Through a trigram index on both engines (``fleet/migrations/0010``): PostgreSQL's
    ``pg_trgm`` GIN indexes answer ``LIKE '%X%'``; on SQLite an FTS5 trigram table kept by triggers
    answers a phrase query, which with that tokenizer is a substring match."""
    if len(text) < ANYWHERE_FROM:
        return sn_or_tid_starting(text)
    if connection.vendor == "postgresql":
        return Q(sn__contains=text) | Q(tid__contains=text)
    phrase = '"' + text.replace('"', '""') + '"'
    found = RawSQL("SELECT rowid FROM fleet_terminal_text WHERE fleet_terminal_text MATCH %s", (phrase,))
    return Q(pk__in=found)


def search_order(key: str, text: str) -> F | Upper:
    """What a list sorted by ``key`` is ordered by: the field, or for a search in SN or TID order the
    same order through an expression no index gives (SNs and TIDs are capitals: ``UPPER`` changes
    nothing). A prefix's matches lie together in SN order, and a planner that expects them spread
    walks the SN index from the start looking for them (PostgreSQL, 0.1 s per 100,000 terminals
    before the first match, bench/pages.py); through the expression, it fetches the matches by their
    indexes and sorts those."""
    return Upper(key) if text and key in ("sn", "tid") else F(key)
