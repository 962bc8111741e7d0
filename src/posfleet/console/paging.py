"""A paginator for lists over history (transactions: tens of millions of rows at a provider's scale),
whose exact total would cost a count of every matching row on every page load. It counts at most
``cap`` rows (one ``COUNT`` over a ``LIMIT``ed subquery: an index range read that stops), and says
"more than N" beyond; the pages past the cap are reached by narrowing the filter (a date range),
which the page tells the reader."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    def __init__(self, object_list: QuerySet[Any], per_page: int, cap: int = COUNT_CAP) -> None:
        super().__init__(object_list, per_page)
        self.rows = object_list
        self.cap = cap

    @cached_property
    def counted(self) -> int:
        """The matching rows up to ``cap + 1``: their ids only, in no order (any ``cap + 1`` of them
        answer "more than the cap?", so no sort and no annotation is computed for the count)."""
        return self.rows.order_by().values("pk")[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        """The matching rows, up to ``cap``."""
        return min(self.counted, self.cap)

    @cached_property
    def capped(self) -> bool:
        """Whether more rows match than the count says (``count`` is the cap)."""
        return self.counted > self.cap
