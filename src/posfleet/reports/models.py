"""A completed month's report figures, computed once after it ended (``reports/month_end.py``, docs/adr/
0037): the fleet at the month's end and the month's activity, per agent. The reports read these for
past months instead of the terminals' whole history (status periods, the audit chain), which at a
provider's scale is tens of millions of rows; the month in progress they read live."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class MonthEnd(models.Model):
    """A month whose figures are stored: its rows below are all there are (none for an agent: zero)."""

    month = models.DateField(_("month"), unique=True)  # its first day
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("month-end figures")
        verbose_name_plural = _("month-end figures")

    def __str__(self) -> str:
        return f"month end {self.month:%Y-%m}"


class FleetMonthEnd(models.Model):
    """How many terminals of a model were in a status at the end of the month, per agent (the
    terminal's agent when the month was computed; none: the provider's stock)."""

    month_end = models.ForeignKey(MonthEnd, on_delete=models.CASCADE, related_name="fleet")
    agent = models.ForeignKey(
        "parties.Agent", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    model = models.ForeignKey("fleet.TerminalModel", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=16)
    terminals = models.PositiveIntegerField(_("terminals"))

    class Meta:
        verbose_name = _("fleet at a month's end")
        verbose_name_plural = _("fleet at months' ends")
        indexes = [models.Index(fields=["month_end", "agent"], name="fleet_month_end_idx")]

    def __str__(self) -> str:
        return f"fleet {self.month_end_id} {self.agent_id} {self.model_id} {self.status}: {self.terminals}"


class ActivityMonth(models.Model):
    """How many terminals were activated, deactivated or deregistered in the month, by reason, per
    agent (the agent of the merchant the terminal was with, when the month was computed)."""

    month_end = models.ForeignKey(MonthEnd, on_delete=models.CASCADE, related_name="activity")
    agent = models.ForeignKey(
        "parties.Agent", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    event_type = models.CharField(_("event"), max_length=48)
    reason = models.CharField(_("reason"), max_length=48, blank=True)
    terminals = models.PositiveIntegerField(_("terminals"))

    class Meta:
        verbose_name = _("activity of a month")
        verbose_name_plural = _("activity by month")
        indexes = [models.Index(fields=["month_end", "agent"], name="activity_month_idx")]

    def __str__(self) -> str:
        return (
            f"activity {self.month_end_id} {self.agent_id} {self.event_type} {self.reason}: {self.terminals}"
        )


class DayEnd(models.Model):
    """A day whose terminal events are counted and stored (``reports/day_end.py``): its rows below are
    all there are (none for an agent: zero). The dashboards' events per day read these for the days
    that ended, and count only today live."""

    day = models.DateField(_("day"), unique=True)
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("day's figures")
        verbose_name_plural = _("days' figures")

    def __str__(self) -> str:
        return f"day end {self.day:%Y-%m-%d}"


class EventsDay(models.Model):
    """How many audit events about terminals there were on the day, per agent (the terminal's agent
    when the day was computed; none: the provider's stock or a terminal no longer there)."""

    day_end = models.ForeignKey(DayEnd, on_delete=models.CASCADE, related_name="events")
    agent = models.ForeignKey(
        "parties.Agent", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    events = models.PositiveIntegerField(_("events"))

    class Meta:
        verbose_name = _("terminal events of a day")
        verbose_name_plural = _("terminal events by day")
        indexes = [models.Index(fields=["day_end", "agent"], name="events_day_idx")]

    def __str__(self) -> str:
        return f"events {self.day_end_id} {self.agent_id}: {self.events}"
