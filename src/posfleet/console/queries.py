"""Read models of the console composed from the contexts' selectors: the dashboard's, and the device
list's search (the fleet's filters, billing's dormant rule, the person's selection)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from posfleet.audit import selectors as audit
from posfleet.audit.models import AuditEvent, AuditEventQuerySet
from posfleet.billing import selectors as money
from posfleet.console import selection
from posfleet.console.forms import DeviceListFilters
from posfleet.fleet import selectors as fleet
from posfleet.fleet.models import Terminal
from posfleet.iam.models import User
from posfleet.iam.selectors import scope_of
from posfleet.platform.clock import now, today


def terminal_events(user: User) -> AuditEventQuerySet:
    """Audit events about the terminals ``user`` may see (provider staff: all terminals)."""
    if scope_of(user) is None:
        return audit.events_about("terminal")
    return audit.events_about_any_of("terminal", fleet.terminals_visible_to(user).order_by(), "sn")


@dataclass(frozen=True)
class Activity:
    days: list[date]
    counts: list[int]
    latest: list[AuditEvent]

    @property
    def total(self) -> int:
        return sum(self.counts)


def terminal_activity(user: User, *, days: int = 30, latest: int = 10) -> Activity:
    """Events per day over the last ``days`` days (zeros included) and the ``latest`` events."""
    first = today() - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    events = terminal_events(user)
    per_day = audit.daily_counts(events, since, now())
    span = [first + timedelta(days=i) for i in range(days)]
    # The latest events are looked for in the window first (a range of the time index, however long
    # the history); only a quiet window sends the search further back. The chain is appended in time
    # order, so when the window holds ``latest`` events they are the latest of all.
    newest = list(events.filter(occurred_at__gte=since).order_by("-seq")[:latest])
    if len(newest) < latest:
        newest = list(events.order_by("-seq")[:latest])
    return Activity(days=span, counts=[per_day.get(day, 0) for day in span], latest=newest)


# -- the device list ---------------------------------------------------------------------------------


def device_list(user: User, filters: DeviceListFilters, sort: str = "sn") -> QuerySet[Terminal]:
    """The terminals ``user`` may see that match the device list's filters, in ``sort`` order: the
    fleet's search, then billing's dormant rule (no approved sale in the window), then the selection."""
    terminals = fleet.search_terminals(user, filters.fleet, sort)
    if filters.dormant_days:
        terminals = money.dormant(terminals, filters.dormant_days, now())
    if filters.selected_only:
        terminals = selection.only_selected(terminals, user)
    return terminals
