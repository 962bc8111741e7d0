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
    def count(self) -> int:
        """The matching rows, up to ``cap``."""
        return min(self.rows[: self.cap + 1].count(), self.cap)

    @cached_property
    def capped(self) -> bool:
        """Whether more rows match than the count says (``count`` is the cap)."""
        return self.count == self.cap and self.rows[self.cap : self.cap + 1].exists()
