"""Days given as filters: one way to read them and one rule for a range, for the API and the console.

- A filter day is written ``YYYY-MM-DD`` in ASCII digits and nothing else (``is_iso_day``): a number
  would otherwise be read as a Unix time and silently filter.
- A range (``check_range``) whose start comes after its end is refused: an empty answer would look like
  "nothing happened" when the question itself was wrong. Either end may be open.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from django.utils.translation import gettext as _

from posfleet.platform.errors import ValidationFailed

ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Ordered(Protocol):
    def __gt__(self, other: Any, /) -> bool: ...


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
