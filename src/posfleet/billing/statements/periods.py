"""Calendar months, the period of a statement and of the cost comparison."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from django.utils.formats import date_format

_MONTH = re.compile(r"^(?P<year>\d{4})-(?P<month>\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 2000 <= self.year <= 2999:
            raise ValueError(f"not a month: {self.year}-{self.month}")

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def parse(cls, text: str) -> Month:
        """``2026-11`` -> Month(2026, 11); anything else raises ValueError."""
        found = _MONTH.match(text or "")
        if not found:
            raise ValueError(f"not a month: {text!r}")
        return cls(int(found.group("year")), int(found.group("month")))

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def plus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        """``2026年11月`` in Chinese, ``November 2026`` in English (the active language)."""
        return date_format(self.first_day, "YEAR_MONTH_FORMAT")

    @property
    def short_label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def months_between(first: Month, last: Month) -> Iterator[Month]:
    """``first`` to ``last`` inclusive, in order."""
    current = first
    while current <= last:
        yield current
        current = current.plus(1)
