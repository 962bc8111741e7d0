"""Time is an input: code asks this clock; tests move it with time-machine."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def today() -> date:
    """Today's date in the provider's zone (settings.TIME_ZONE, Asia/Shanghai)."""
    return timezone.localdate(timezone.now())


def start_of(day: date) -> datetime:
    """Midnight at the start of ``day`` in the provider's zone: where a day of counts and reports begins."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.get_current_timezone())
