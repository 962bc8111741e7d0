"""The month-end figures (docs/adr/0037): for every month of the reports' reach (``MONTHS_MAX`` back)
that has ended and has none stored, compute the fleet at its end and its activity, per agent, and
store them (``reports.models``). The scheduler runs it every night; it is safe to run twice (a month
is stored once: ``MonthEnd.month`` is unique, and a month is written in one transaction). The
figures are those the reports compute live (``reports.history``), grouped by agent as well:

- the fleet: each terminal under its agent *now* (the status periods record no agent), its status at
  the month's end from its periods;
- the activity: each change under the agent, now, of the merchant the terminal was with then.

The past does not change (status periods end, the audit chain is append-only), so a stored month
stays right; the month in progress is always read live."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.db import IntegrityError, transaction
from django.db.models.fields.json import KT

from posfleet.fleet.selectors import Terminal
from posfleet.parties.selectors import Merchant
from posfleet.platform.bulk import insert_rows
from posfleet.platform.clock import now, today
from posfleet.reports.history import activity_events, fleet_at, month_moment, per_month
from posfleet.reports.models import ActivityMonth, FleetMonthEnd, MonthEnd
from posfleet.reports.scope import MONTHS_MAX, months_back


def months_to_close(on: date | None = None) -> list[date]:
    """The ended months within the reports' reach with no figures stored, oldest first."""
    ended = months_back(MONTHS_MAX + 1, on or today())[:-1]
    stored = set(MonthEnd.objects.filter(month__in=ended).values_list("month", flat=True))
    return [first for first in ended if first not in stored]


def month_end_close(on: date | None = None) -> list[date]:
    """Store the figures of every month ``months_to_close``; returns the months stored. One pass over
    the status periods and one over the audit chain's window for all of them together."""
    firsts = months_to_close(on)
    if not firsts:
        return []
    at = now()
    fleet: dict[tuple[date, int | None, int, str], int] = defaultdict(int)
    for i, (agent, model), status, n in fleet_at(
        Terminal.objects.all(), [month_moment(f) for f in firsts], ("agent_id", "model_id")
    ):
        fleet[(firsts[i], agent, model, status)] += n
    changes = (
        activity_events(firsts, at)
        .annotate(merchant=KT("before__merchant"))
        .order_by()
        .values("event_type", "reason", "merchant")
        .annotate(**per_month(firsts, at))
    )
    agent_of = dict(Merchant.objects.values_list("mid", "agent_id"))
    activity: dict[tuple[date, int | None, str, str], int] = defaultdict(int)
    for row in changes.iterator(chunk_size=5000):
        agent = agent_of.get(row["merchant"]) if row["merchant"] else None
        for i, first in enumerate(firsts):
            if row[f"m{i}"]:
                activity[(first, agent, row["event_type"], row["reason"] or "")] += row[f"m{i}"]
    stored = []
    for first in firsts:
        try:
            with transaction.atomic():
                record = MonthEnd.objects.create(month=first, computed_at=at)
                insert_rows(
                    FleetMonthEnd,
                    ("agent", "model", "status", "terminals"),
                    (
                        (agent, model, status, n)
                        for (f, agent, model, status), n in fleet.items()
                        if f == first
                    ),
                    month_end=record.pk,
                )
                insert_rows(
                    ActivityMonth,
                    ("agent", "event_type", "reason", "terminals"),
                    (
                        (agent, event, reason, n)
                        for (f, agent, event, reason), n in activity.items()
                        if f == first
                    ),
                    month_end=record.pk,
                )
        except IntegrityError:  # stored meanwhile by another run: theirs stands
            continue
        stored.append(first)
    return stored
