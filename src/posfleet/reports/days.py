"""The dashboards' terminal events per day (docs/adr/0038): each day that ended is counted once, per
agent, and stored (``reports.models.DayEnd``, ``EventsDay``: the scheduler's nightly job, like the
month ends of ADR 0037); a dashboard adds up the stored days its viewer may see and counts only today
— and any day not stored yet — live from the audit chain. At a provider's scale a month of events is
hundreds of thousands of rows; checking each against an agent's terminals took seconds per page view.

A stored day counts each event under the agent its terminal had when the day was stored; live, an
agent counts the events about the terminals it sees now. The two differ only for a terminal that
changed agent since, as the month-end figures do.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, cast

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery, Sum

from posfleet.audit.selectors import (
    AuditEventQuerySet,
    daily_counts,
    events_about,
    events_about_any_of,
    per_day,
)
from posfleet.fleet.selectors import Terminal, terminals_visible_to
from posfleet.iam.models import User
from posfleet.iam.selectors import scope_of
from posfleet.parties.selectors import by_visible_agent
from posfleet.platform.bulk import insert_rows
from posfleet.platform.clock import now, start_of, today
from posfleet.reports.models import DayEnd, EventsDay

DAYS_KEPT = 30  # the dashboards' window, today included: older days are neither stored nor shown


def terminal_events(user: User) -> AuditEventQuerySet:
    """Audit events about the terminals ``user`` may see (provider staff: all terminals)."""
    if scope_of(user) is None:
        return events_about("terminal")
    return events_about_any_of("terminal", terminals_visible_to(user).order_by(), "sn")


def events_per_day(viewer: User, days: list[date]) -> dict[date, int]:
    """How many events about the terminals ``viewer`` sees happened on each of ``days`` (ascending,
    in the provider's time zone): stored figures for the days that ended (one query), the rest live."""
    counts: dict[date, int] = {}
    mine = by_visible_agent(viewer, "events__agent_id")
    ended = [day for day in days if day < today()]
    if mine is not None and ended:
        stored = (
            DayEnd.objects.filter(day__in=ended)
            .order_by()
            .values("day")
            .annotate(n=Sum("events__events", filter=mine))
        )
        counts = {row["day"]: row["n"] or 0 for row in stored}
    live = [day for day in days if day not in counts]
    if live:
        found = daily_counts(terminal_events(viewer), start_of(live[0]), now())
        counts.update({day: found.get(day, 0) for day in live})
    return counts


def days_to_close(on: date) -> list[date]:
    """The ended days before ``on`` within the dashboards' window with no figures stored, oldest first."""
    ended = [on - timedelta(days=i) for i in range(DAYS_KEPT - 1, 0, -1)]  # today is counted live
    stored = set(DayEnd.objects.filter(day__in=ended).values_list("day", flat=True))
    return [day for day in ended if day not in stored]


def day_end_close(on: date | None = None) -> list[date]:
    """Store the terminal events of every day ``days_to_close``, per agent; returns the days stored.
    One pass over the days' events; each day in a transaction of its own, safe to run twice (a day is
    stored once: ``DayEnd.day`` is unique)."""
    on = on or today()
    days = days_to_close(on)
    if not days:
        return []
    at = now()
    agent = Subquery(Terminal.objects.filter(sn=OuterRef("subject_id")).order_by().values("agent_id")[:1])
    rows = (
        events_about("terminal")
        .filter(occurred_at__gte=start_of(days[0]), occurred_at__lt=start_of(days[-1] + timedelta(days=1)))
        .annotate(holder=agent)
        .order_by()
        .values("holder")
        .annotate(**per_day(days))
    )
    found = [cast(dict[str, Any], row) for row in rows]
    stored = []
    for i, day in enumerate(days):
        try:
            with transaction.atomic():
                record = DayEnd.objects.create(day=day, computed_at=at)
                insert_rows(
                    EventsDay,
                    ("agent", "events"),
                    ((row["holder"], row[f"d{i}"]) for row in found if row[f"d{i}"]),
                    day_end=record.pk,
                )
        except IntegrityError:  # stored meanwhile by another run: theirs stands
            continue
        stored.append(day)
    DayEnd.objects.filter(day__lte=on - timedelta(days=DAYS_KEPT)).delete()
    return stored
