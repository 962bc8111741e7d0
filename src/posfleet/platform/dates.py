"""Days given as filters: one way to read them and one rule for a range, for the API and the console;
and one way to write a day or a moment for a person (``day_text``, ``moment_text``: the active
language's ``DATE_FORMAT`` / ``DATETIME_FORMAT`` of ``config/formats``, in the console's time zone).

- A filter day is written ``YYYY-MM-DD`` in ASCII digits and nothing else (``is_iso_day``): a number
  would otherwise be read as a Unix time and silently filter.
- A range (``check_range``) whose start comes after its end is refused: an empty answer would look like
  "nothing happened" when the question itself was wrong. Either end may be open.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Protocol

from django.utils import formats, timezone
from django.utils.translation import gettext as _

from posfleet.platform.errors import ValidationFailed

ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Ordered(Protocol):
    def __gt__(self, other: Any, /) -> bool: ...


def day_text(day: date | None, empty: str = "—") -> str:
    """A day as a person reads it in the active language: "7 Dec 2026", "2026年12月7日"."""
    if day is None:
        return empty
    if isinstance(day, datetime):
        day = timezone.localtime(day).date() if timezone.is_aware(day) else day.date()
    return formats.date_format(day, "DATE_FORMAT")


def iso_day_text(value: str | None, empty: str = "—") -> str:
    """A day stored as ISO text (evidence, event parameters) as a person reads it (``day_text``); text
    that is not a day is shown as it is."""
    if not value:
        return empty
    try:
        return day_text(date.fromisoformat(value))
    except ValueError:
        return value


def moment_text(moment: datetime | None, empty: str = "—") -> str:
    """A moment as a person reads it in the active language, in the console's time zone:
    "7 Dec 2026 14:05", "2026年12月7日 14:05"."""
    if moment is None:
        return empty
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return formats.date_format(local, "DATETIME_FORMAT")


def is_iso_day(text: str) -> bool:
    return bool(ISO_DAY.fullmatch(text))


def check_range(start: Ordered | None, end: Ordered | None, *, field: str) -> None:
    """Refuse (``ValidationFailed`` on ``field``, the start's name) a range of days or months whose
    start comes after its end; equal ends and open ends are fine."""
    if start is not None and end is not None and start > end:
        raise ValidationFailed(
            _("The start of the range (%(start)s) is after its end (%(end)s).")
            % {"start": start, "end": end},
            field=field,
        )
