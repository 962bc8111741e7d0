"""Read models of the console composed from the contexts' selectors: the dashboard's, and the device
list's search (the fleet's filters, billing's dormant rule, the person's selection)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import QuerySet

from posfleet.audit.models import AuditEvent
from posfleet.billing import selectors as money
from posfleet.console import selection
from posfleet.console.forms import DeviceListFilters
from posfleet.fleet import selectors as fleet
from posfleet.fleet.models import Terminal
from posfleet.iam.models import User
from posfleet.platform.clock import now, today
from posfleet.reports import days as reports


@dataclass(frozen=True)
class Activity:
    days: list[date]
    counts: list[int]
    latest: list[AuditEvent]

    @property
    def total(self) -> int:
        return sum(self.counts)


def terminal_activity(user: User, *, days: int = reports.DAYS_KEPT, latest: int = 10) -> Activity:
    """Events per day over the last ``days`` days (zeros included: ``reports.days``, the ended days
    from their stored figures) and the ``latest`` events."""
    first = today() - timedelta(days=days - 1)
    span = [first + timedelta(days=i) for i in range(days)]
    per_day = reports.events_per_day(user, span)
    # The latest events, newest first by time: the time index read backwards from now, stopping at
    # the ``latest``-th (for an agent, the ``latest``-th of its terminals'), however long the history.
    events = reports.terminal_events(user)
    newest = list(events.order_by("-occurred_at", "-seq")[:latest])
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
