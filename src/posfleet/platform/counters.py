"""Named counters that never hand out the same value twice, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F


def next_values(name: str, count: int = 1) -> range:
    """Reserve ``count`` consecutive values of counter ``name`` and return them."""
    from posfleet.platform.models import Counter

    if count < 1:
        raise ValueError("count must be positive")
    with transaction.atomic():
        Counter.objects.get_or_create(name=name)
        Counter.objects.filter(name=name).update(value=F("value") + count)
        last = Counter.objects.values_list("value", flat=True).get(name=name)
    return range(last - count + 1, last + 1)
