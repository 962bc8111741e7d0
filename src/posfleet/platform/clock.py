"""Time is an input: code asks this clock; tests move it with time-machine."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def today() -> date:
    """Today's date in the provider's zone (settings.TIME_ZONE, Asia/Shanghai)."""
    return timezone.localdate(timezone.now())
