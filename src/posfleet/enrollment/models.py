"""Service expiry milestones: each notice before expiry, the expiry itself and the suspension after the
grace period, recorded once per terminal and expiry date (the unique constraint is what makes a sweep
that runs twice send nothing twice)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Milestone(models.TextChoices):
    T30 = "t30", _("30 days before expiry")
    T7 = "t7", _("7 days before expiry")
    T1 = "t1", _("the day before expiry")
    EXPIRED = "expired", _("expired (grace period)")
    SUSPENDED = "suspended", _("suspended after the grace period")


class ExpiryMilestone(models.Model):
    # No index of its own: the unique constraint's index starts with it.
    terminal = models.ForeignKey(
        "fleet.Terminal", on_delete=models.PROTECT, related_name="expiry_milestones", db_index=False
    )
    expires_on = models.DateField(_("service expiry"))
    # "t<days>" for a notice that many days before (settings: POSFLEET_EXPIRY["NOTICE_DAYS"]), or one of
    # the Milestone values after it.
    milestone = models.CharField(_("milestone"), max_length=16)
    reached_on = models.DateField(_("reached on"))
    created_at = models.DateTimeField(_("recorded"))

    class Meta:
        ordering = ["reached_on", "id"]
        verbose_name = _("expiry milestone")
        verbose_name_plural = _("expiry milestones")
        constraints = [
            models.UniqueConstraint(
                fields=["terminal", "expires_on", "milestone"], name="expiry_milestone_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.milestone} of {self.expires_on} (terminal {self.terminal_id})"
