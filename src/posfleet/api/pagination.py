"""Cursor pagination: keyset on a unique key, so pages never overlap or skip under concurrent inserts.

The cursor is opaque (signed, bound to its list): it holds the last key of the page. The next page is
``key > cursor`` in key order, so rows that existed when the walk started are each seen exactly once,
whatever is inserted or deleted meanwhile.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing
from django.db.models import F, Model, QuerySet
from django.db.models.expressions import BaseExpression
from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import Field

from posfleet.api.problems import InvalidCursor

_SALT = "posfleet.api.cursor"


class PageQuery(Schema):
    cursor: str | None = Field(None, description="`next_cursor` of the previous page; omit for the first.")
    limit: int = Field(
        settings.NINJA_PAGINATION_PER_PAGE,
        ge=1,
        le=settings.NINJA_PAGINATION_MAX_PER_PAGE_SIZE,
        description="Items per page.",
    )


def encode(list_name: str, value: Any) -> str:
    return signing.dumps([list_name, value], salt=_SALT, compress=True)


def decode(list_name: str, cursor: str) -> Any:
    try:
        name, value = signing.loads(cursor, salt=_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise InvalidCursor(
            _("The cursor is not valid; start again from the first page."), field="cursor"
        ) from exc
    if name != list_name:
        raise InvalidCursor(_("This cursor belongs to another list."), field="cursor")
    return value


def keyset[M: Model](
    qs: QuerySet[M],
    *,
    list_name: str,
    key: str,
    page: PageQuery,
    descending: bool = False,
    by: F | BaseExpression | None = None,
) -> tuple[list[M], str | None]:
    """One page of ``qs`` ordered by the unique field ``key``; returns (rows, next cursor or None).
    ``by`` orders instead of ``key`` when given: an expression in the very same order (a search's,
    ``fleet.search.search_order``)."""
    order = by if by is not None else F(key)
    qs = qs.order_by(order.desc() if descending else order.asc())
    if page.cursor:
        after = decode(list_name, page.cursor)
        qs = qs.filter(**{f"{key}__{'lt' if descending else 'gt'}": after})
    rows = list(qs[: page.limit + 1])
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    return rows, encode(list_name, getattr(rows[-1], key))
