"""Events per day for the dashboard's activity chart: days in the provider's time zone (Asia/Shanghai,
UTC+8), the window's ends respected, quiet days absent."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from posfleet.audit.selectors import daily_counts, events_about
from posfleet.audit.services import Entry, record_many
from posfleet.audit.vocabulary import EventType
from posfleet.platform.context import Actor

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=SH)


def test_each_event_counts_on_its_day_in_the_provider_time_zone():
    moments = [
        at(4, 23, 59, 59),  # before the window
        at(5, 0, 0, 0),  # the window's first moment: 16:00 UTC on the 4th, still the 5th in Shanghai
        at(5, 7, 59, 59),  # 23:59:59 UTC on the 4th
        at(5, 23, 59, 59),
        at(6, 0, 0, 0),
        at(7, 12, 0, 0),
        at(7, 12, 0, 1),  # after the window's end
    ]
    record_many(
        Actor.job("test"),
        [
            Entry(
                event_type=EventType.TERMINAL_ACTIVATED,
                subject_type="terminal",
                subject_id=f"SN-D-{i}",
                occurred_at=moment,
            )
            for i, moment in enumerate(moments)
        ],
    )
    counts = daily_counts(events_about("terminal"), at(5, 0), at(7, 12))
    assert counts == {date(2026, 12, 5): 3, date(2026, 12, 6): 1, date(2026, 12, 7): 1}
