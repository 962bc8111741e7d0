"""The demo's simulated clock: the real services run "then", not now.

posfleet asks one clock (``platform.clock``, which asks ``django.utils.timezone.now``); tests move it
with time-machine. The demo replays months of money through the real services (ingest, settlement,
service fees, plan changes) and each call must happen at its moment in the story: a settlement run at
03:00 the morning after its business day, an ingest at the close of the day. ``at(moment)`` sets the
clock for the duration of one call; every reading inside advances it by a microsecond, so events
written by one call keep their order and the audit chain stays in time order.

Single-threaded use only (``posfleet demo`` is one process): the patch is process-wide. See
docs/adr/0011-demo-money.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from unittest import mock

from django.utils import timezone


@contextmanager
def at(moment: datetime) -> Iterator[None]:
    """Within the block, ``now()`` is ``moment`` (+1 µs per reading); ``today()`` follows it."""
    if moment.utcoffset() is None:
        raise ValueError("the simulated clock needs an aware datetime")
    ticks = itertools.count()
    moment = moment.astimezone(UTC)  # as Django's own now() answers

    def now() -> datetime:
        return moment + timedelta(microseconds=next(ticks))

    with mock.patch.object(timezone, "now", now):
        yield
